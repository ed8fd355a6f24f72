//! `flexshm ls`: every flexshm segment in /dev/shm.

use std::io::Write;

use serde_json::{json, Value as Json};

use super::{scan, table, Entry};
use crate::render::{clean, file_json, owner_text, perms_text, writer_json};
use crate::source::SHM_DIR;
use crate::Failure;

/// List the flexshm segments in /dev/shm.
///
/// Columns: name, mode (single, or fifo with its slot count), file size in bytes,
/// number of fields, writer (process id and alive / dead, or none), number of the last
/// committed record, owner and permissions. Files that are not flexshm segments are
/// skipped; a flexshm segment that cannot be read (corrupt, another protocol version,
/// permission denied) is listed with the reason.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only names matching this shell pattern (`*` and `?`), e.g. 'robot-*'.
    #[arg(long = "match", value_name = "GLOB")]
    pub pattern: Option<String>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let (entries, unreadable) = scan(args.pattern.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "dir": SHM_DIR,
            "segments": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "unreadable": unreadable,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(out, "no flexshm segments in {SHM_DIR}")?;
    } else {
        let rows: Vec<_> = entries.iter().map(entry_row).collect();
        let headers = [
            "NAME", "MODE", "SIZE", "FIELDS", "WRITER", "COMMIT", "OWNER", "PERMS",
        ];
        out.write_all(table(&headers, &rows).as_bytes())?;
    }
    if !unreadable.is_empty() {
        writeln!(
            out,
            "({} other file(s) in {SHM_DIR} could not be read: {})",
            unreadable.len(),
            clean(&unreadable.join(", "))
        )?;
    }
    Ok(())
}

fn entry_row(e: &Entry) -> (Vec<String>, Option<String>) {
    let dash = || "-".to_string();
    let (owner, perms, size) = match &e.file {
        Some(f) => (owner_text(f), perms_text(f.perms), f.size.to_string()),
        None => (dash(), dash(), dash()),
    };
    match &e.segment {
        Ok(s) => (
            vec![
                clean(&e.name).into_owned(),
                s.mode.to_string(),
                size,
                s.fields.to_string(),
                s.writer.to_string(),
                s.head.to_string(),
                owner,
                perms,
            ],
            None,
        ),
        Err(err) => (
            vec![
                clean(&e.name).into_owned(),
                dash(),
                size,
                dash(),
                dash(),
                dash(),
                owner,
                perms,
            ],
            Some(format!("  error: {}", clean(&err.reason))),
        ),
    }
}

pub fn entry_json(e: &Entry) -> Json {
    let file = e.file.as_ref();
    let mut j = json!({
        "name": e.name,
        "mode": null,
        "slots": null,
        "size": file.map(|f| f.size),
        "record_size": null,
        "fields": null,
        "writer": null,
        "commit": null,
        "owner": file.map(file_json),
        "error": null,
    });
    match &e.segment {
        Ok(s) => {
            j["mode"] = json!(s.mode.name());
            j["slots"] = json!(s.mode.slots());
            j["record_size"] = json!(s.record_size);
            j["fields"] = json!(s.fields);
            j["writer"] = writer_json(s.writer);
            j["commit"] = json!(s.head);
        }
        Err(err) => j["error"] = json!(err.reason),
    }
    j
}
