//! `flexshm show NAME`: the schema and the latest record.

use std::io::Write;

use serde_json::json;

use super::table;
use crate::model::Value;
use crate::render::{
    array_full, clean, file_json, owner_text, perms_text, record_json, schema_json, value_text,
    writer_json,
};
use crate::source::{self, Segment};
use crate::Failure;

/// Show a segment's schema and its latest record.
///
/// The schema gives each field's type, offset and size inside a record; the record
/// gives each field's status (valid / truncated / unwritten, and whether it was
/// modified in that record) and value. Strings are quoted; arrays are summarised
/// (dtype, stored shape, min / max / mean, first values) unless --full. In FIFO mode
/// the latest record is the newest one committed; reading it takes nothing from other
/// readers.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Segment name (`sensors`, `/sensors` or `/dev/shm/sensors`).
    pub name: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print arrays whole instead of summarised.
    #[arg(long)]
    pub full: bool,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let mut seg = Segment::open(&args.name)?;
    let file = source::file_info(seg.name()).ok();
    let writer = seg.writer();
    let record = seg.latest()?;
    let head = seg.head();
    let fields = seg.fields();
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "name": seg.name(),
            "mode": seg.mode().name(),
            "slots": seg.mode().slots(),
            "size": file.as_ref().map(|f| f.size),
            "record_size": seg.record_size(),
            "owner": file.as_ref().map(file_json),
            "writer": writer_json(writer),
            "commit": head,
            "schema": schema_json(fields),
            "record": record.as_ref().map(|r| record_json(fields, r, args.full)),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )?;
        return Ok(());
    }
    let mut s = String::new();
    s += &format!("segment  {}\n", clean(seg.name()));
    s += &format!("mode     {}\n", seg.mode());
    s += &format!(
        "size     {} bytes, {} fields, record {} bytes\n",
        file.as_ref()
            .map_or("?".to_string(), |f| f.size.to_string()),
        fields.len(),
        seg.record_size()
    );
    s += &format!("writer   {writer}\n");
    s += &format!("commit   {head}\n");
    if let Some(f) = &file {
        s += &format!("owner    {} {}\n", owner_text(f), perms_text(f.perms));
    }
    s.push('\n');
    let headers = ["FIELD", "TYPE", "OFFSET", "SIZE", "STATUS", "VALUE"];
    let rows: Vec<_> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let sample = record.as_ref().map(|r| &r.fields[i]);
            (
                vec![
                    clean(&f.name).into_owned(),
                    f.kind.to_string(),
                    f.offset.to_string(),
                    f.size.to_string(),
                    sample.map_or("-".to_string(), |x| x.status.to_string()),
                    sample.map_or("-".to_string(), value_text),
                ],
                None,
            )
        })
        .collect();
    s += &table(&headers, &rows);
    match &record {
        None => s += "\nno record committed yet\n",
        Some(r) if seg.mode().is_fifo() => s += &format!("\nlatest record: commit {}\n", r.commit),
        Some(_) => {}
    }
    if args.full {
        for (f, sample) in fields.iter().zip(record.iter().flat_map(|r| &r.fields)) {
            if let (Ok(Value::Array(a)), true) = (&sample.value, sample.status.written) {
                s += &format!(
                    "\n{} ({}, stored shape [{}]) =\n{}\n",
                    clean(&f.name),
                    f.kind,
                    crate::model::join(&a.shape, ","),
                    array_full(a)
                );
            }
        }
    }
    out.write_all(s.as_bytes())?;
    Ok(())
}
