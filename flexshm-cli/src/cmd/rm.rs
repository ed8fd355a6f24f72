//! `flexshm rm`: remove segments by name, or every segment whose writer died.

use std::io::Write;

use super::scan;
use crate::model::WriterState;
use crate::render::clean;
use crate::source::{self, ErrorKind, Magic, Segment, SourceError};
use crate::Failure;

/// Remove segments: by name, or with --stale every segment whose writer process died.
///
/// Removing a name frees it at once; processes that have the segment open keep using
/// their mapping. A segment whose writer is alive is refused unless --force, and so is
/// a file that is not a flexshm segment. --stale removes exactly the flexshm segments
/// whose writer is dead (a crashed or killed writer); segments without a writer (their
/// writer closed cleanly) and corrupt ones are left alone.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["names", "stale"])))]
pub struct Args {
    /// Segment names (`sensors`, `/sensors` or `/dev/shm/sensors`).
    #[arg(value_name = "NAME", conflicts_with = "stale")]
    pub names: Vec<String>,
    /// Remove every segment whose writer is dead.
    #[arg(long)]
    pub stale: bool,
    /// With --stale: only names matching this shell pattern (`*` and `?`).
    #[arg(long = "match", value_name = "GLOB", requires = "stale")]
    pub pattern: Option<String>,
    /// Remove named segments even if their writer is alive or they are not flexshm.
    #[arg(short, long)]
    pub force: bool,
    /// Only print what would be removed.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    if args.stale {
        let (entries, _) = scan(args.pattern.as_deref())?;
        let mut any = false;
        let mut failed = false;
        for e in entries {
            let Ok(s) = &e.segment else { continue };
            if let WriterState::Dead { .. } = s.writer {
                any = true;
                failed |= !remove(
                    &mut out,
                    &e.name,
                    &format!("writer {}", s.writer),
                    args.dry_run,
                )?;
            }
        }
        if !any {
            writeln!(out, "no segment with a dead writer")?;
        }
        return if failed {
            Err(Failure::reported())
        } else {
            Ok(())
        };
    }
    let mut failed = false;
    let mut usage = false;
    for name in &args.names {
        match check(name, args.force) {
            Ok(why) => failed |= !remove(&mut out, source::bare_name(name), &why, args.dry_run)?,
            Err(e) => {
                eprintln!("flexshm: {}", clean(&e.to_string()));
                usage |= e.kind == ErrorKind::InvalidName;
                failed = true;
            }
        }
    }
    match (failed, usage) {
        (_, true) => Err(Failure {
            code: 2,
            message: None,
        }),
        (true, false) => Err(Failure::reported()),
        _ => Ok(()),
    }
}

/// Whether segment `name` may go; `Ok` with what to say about it.
fn check(name: &str, force: bool) -> Result<String, SourceError> {
    let bare = source::bare_name(name);
    source::file_info(name)?;
    let refuse = |reason: String| SourceError {
        name: bare.to_string(),
        kind: ErrorKind::Other,
        reason,
    };
    if source::magic(name) != Magic::Flexshm {
        if force {
            return Ok("not flexshm, --force".to_string());
        }
        return Err(SourceError {
            name: bare.to_string(),
            kind: ErrorKind::NotFlexshm,
            reason: "not a flexshm segment; use --force to remove it anyway".to_string(),
        });
    }
    match Segment::open(name) {
        Ok(seg) => match seg.writer() {
            WriterState::Alive { pid } if !force => Err(refuse(format!(
                "its writer, process {pid}, is alive; use --force to remove it anyway"
            ))),
            w @ WriterState::Alive { .. } => Ok(format!("writer {w}, --force")),
            w => Ok(format!("writer {w}")),
        },
        // A flexshm file that cannot be opened is a leftover to clean up.
        Err(e) if e.kind == ErrorKind::NotFlexshm => Ok(e.reason),
        Err(e) => Err(e),
    }
}

/// Removes (or with `dry_run` names) one segment; false if that failed (reported).
fn remove(out: &mut impl Write, name: &str, why: &str, dry_run: bool) -> Result<bool, Failure> {
    if dry_run {
        writeln!(out, "would remove {} ({})", clean(name), clean(why))?;
        return Ok(true);
    }
    match source::unlink(name) {
        Ok(()) => {
            writeln!(out, "removed {} ({})", clean(name), clean(why))?;
            Ok(true)
        }
        Err(e) => {
            eprintln!("flexshm: {}", clean(&e.to_string()));
            Ok(false)
        }
    }
}
