//! `flexshm watch NAME`: a live view, or a stream of JSON lines.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::model::{FieldInfo, Record};
use crate::render::record_json;
use crate::source::{ErrorKind, Segment};
use crate::Failure;

/// Follow a segment as records are committed.
///
/// In a terminal: a live view of every field's value and status, the commit rate, the
/// writer's liveness and, in FIFO mode, the records this viewer lost; q, Esc or Ctrl-C
/// quits and restores the terminal. With --json: one JSON object per record, one per
/// line (for `| jq`), until --count records or Ctrl-C.
///
/// Single-slot mode shows the newest record and then each new one (a record replaced
/// before it was read is not seen). In FIFO mode the watcher is an ordinary reader with
/// its own cursor: it starts at the newest record (or with --from-oldest the oldest still
/// in the ring) and then reads every record in order; others' cursors are not affected.
/// If the segment is removed and created again, the watcher follows the new one.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Segment name (`sensors`, `/sensors` or `/dev/shm/sensors`).
    pub name: String,
    /// Stream one JSON object per record instead of the live view.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many records (with --json).
    #[arg(long, value_name = "N", requires = "json", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Arrays whole in the JSON output, not summarised.
    #[arg(long, requires = "json")]
    pub full: bool,
    /// FIFO: start at the oldest record still in the ring instead of the newest.
    #[arg(long)]
    pub from_oldest: bool,
}

/// How long one wait for a record lasts before the watcher looks around (segment
/// replaced, Ctrl-C in the live view).
pub const POLL: Duration = Duration::from_millis(250);

pub fn run(args: Args) -> Result<(), Failure> {
    let seg = Segment::open(&args.name)?;
    if args.json {
        return stream(seg, &args);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure {
            code: 2,
            message: Some(
                "the live view needs a terminal; use --json for a stream of records".into(),
            ),
        });
    }
    crate::tui::run(seg, &args.name, args.from_oldest)
}

/// The first record to show: the newest, or with `from_oldest` (FIFO) the oldest.
/// `None` if nothing was committed yet.
pub fn first_record(seg: &mut Segment, from_oldest: bool) -> Result<Option<Record>, Failure> {
    let rec = if seg.mode().is_fifo() && from_oldest {
        seg.next(Duration::ZERO)?
    } else {
        seg.latest()?
    };
    // A single-slot segment never written reads as commit 0 with every field unwritten.
    Ok(rec.filter(|r| r.commit != 0 || seg.mode().is_fifo()))
}

/// If the segment's name now refers to another segment (removed and created again),
/// opens that one. Returns whether it did.
pub fn follow(seg: &mut Segment, name: &str) -> Result<bool, Failure> {
    if !seg.is_replaced() {
        return Ok(false);
    }
    match Segment::open(name) {
        Ok(s) => {
            *seg = s;
            Ok(true)
        }
        // Removed and not (yet) created again: keep the old one.
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn line(name: &str, fields: &[FieldInfo], rec: &Record, full: bool) -> String {
    let received = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut j = record_json(fields, rec, full);
    j["name"] = json!(name);
    j["received"] = json!(received);
    // Key order: name, commit, lost, received, fields.
    let mut o = serde_json::Map::new();
    for k in ["name", "commit", "lost", "received", "fields"] {
        o.insert(k.to_string(), j[k].take());
    }
    serde_json::Value::Object(o).to_string()
}

fn stream(mut seg: Segment, args: &Args) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    let done = |n: u64| args.count.is_some_and(|c| n >= c);
    let mut rec = first_record(&mut seg, args.from_oldest)?;
    loop {
        if let Some(r) = rec.take() {
            writeln!(out, "{}", line(seg.name(), seg.fields(), &r, args.full))?;
            out.flush()?;
            printed += 1;
            if done(printed) {
                return Ok(());
            }
        }
        rec = seg.next(POLL)?;
        if rec.is_none() && follow(&mut seg, &args.name)? {
            // A new segment: start at its oldest record (FIFO) or its current one.
            rec = first_record(&mut seg, true)?;
        }
    }
}
