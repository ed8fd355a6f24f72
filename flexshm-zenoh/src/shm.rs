//! The adapter between the bridge and flexshm-std: [`StdSource`] and [`StdSink`].
//!
//! This is the only module that touches the flexshm-std API (`Reader<Dynamic>`, which
//! maps a segment read-only, and `Writer<Dynamic>`). Everything else talks to the
//! [`SegmentSource`] / [`SegmentSink`] traits.

use std::time::Duration;

use flexshm_core::{ArrayRef, FieldDef, FieldValue, Kind, Mode, ReadOptions, Value};
use flexshm_std::{CreateOptions, Dynamic, Reader, Snapshot, Writer};

use crate::error::BridgeError;
use crate::mirror::SegmentSink;
use crate::publish::{SegmentSource, SourceRecord};
use crate::wire::{self, WireField};

fn seg_err(name: &str) -> impl Fn(flexshm_std::Error) -> BridgeError + '_ {
    move |e| BridgeError::Segment {
        name: name.to_string(),
        source: Box::new(e),
    }
}

/// The segment name without a leading `/` (how /dev/shm names the file).
fn bare(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// Where a FIFO publisher starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still in the ring: after a bridge restart, records committed
    /// while it was down are sent if the ring still holds them (a mirror drops those it
    /// already wrote, by commit number).
    #[default]
    Oldest,
    /// The newest record, then every later one.
    Newest,
}

/// A local segment read by the publishing bridge (a read-only `Reader<Dynamic>` with the
/// schema read from the segment).
#[derive(Debug)]
pub struct StdSource {
    name: String,
    reader: Reader<Dynamic>,
    fields: Vec<FieldDef>,
    buf: Vec<u8>,
    source_id: u64,
    last: Option<u32>,
    start: StartAt,
}

impl StdSource {
    /// Opens segment `name` for reading; the schema comes from the segment.
    pub fn open(name: &str, start: StartAt) -> Result<Self, BridgeError> {
        let reader = Reader::<Dynamic>::open(name).map_err(seg_err(name))?;
        // The segment's random id names this segment instance (a writer that takes it
        // over keeps it; a new segment under the name has another). 0 from a creator
        // that stored none: then every open looks like a new instance.
        let source_id = reader.segment_id();
        let fields = reader.layout().fields().to_vec();
        let buf = vec![0u8; reader.snapshot_len()];
        Ok(StdSource {
            name: bare(name).to_string(),
            reader,
            fields,
            buf,
            source_id,
            last: None,
            start,
        })
    }
}

impl SegmentSource for StdSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn fields(&self) -> &[FieldDef] {
        &self.fields
    }

    fn mode(&self) -> Mode {
        self.reader.mode()
    }

    fn source_id(&self) -> u64 {
        self.source_id
    }

    fn is_replaced(&self) -> bool {
        self.reader.is_replaced()
    }

    fn next_record(&mut self, timeout: Duration) -> Result<Option<SourceRecord<'_>>, BridgeError> {
        // `reset_modified`: a field is modified if written since this reader's previous
        // read, so skipped or lost commits do not hide a change from the mirror.
        let mut opts = ReadOptions {
            latest: false,
            reset_modified: true,
        };
        if self.reader.mode().is_fifo() {
            opts.latest = self.last.is_none() && self.start == StartAt::Newest;
        } else if (self.last.is_some() || self.reader.head() == 0)
            && !self.reader.wait(timeout).map_err(seg_err(&self.name))?
        {
            // Single-slot: nothing newer than the commit read last (or nothing at all).
            return Ok(None);
        }
        let info = match self.reader.read_into(&mut self.buf, opts, timeout) {
            Ok(info) => info,
            Err(flexshm_std::Error::Timeout { .. }) => return Ok(None),
            Err(e) => return Err(seg_err(&self.name)(e)),
        };
        if self.last == Some(info.commit) {
            return Ok(None);
        }
        self.last = Some(info.commit);
        let more = self.reader.mode().is_fifo() && self.reader.has_new();
        let snap = Snapshot::<Dynamic>::new(&self.buf, self.reader.layout(), info);
        let mut fields = Vec::with_capacity(self.fields.len());
        for i in 0..self.fields.len() {
            let status = info.status(i);
            let value = if status.written {
                Some(snap.get(i).map_err(|e| seg_err(&self.name)(e.into()))?)
            } else {
                None
            };
            fields.push(WireField { status, value });
        }
        Ok(Some(SourceRecord {
            commit: info.commit,
            lost: info.lost,
            fields,
            more,
        }))
    }
}

/// The local segment a mirror writes (a `Writer<Dynamic>`, created on the first record).
#[derive(Debug)]
pub struct StdSink {
    name: String,
    permissions: u32,
    writer: Option<Writer<Dynamic>>,
}

impl StdSink {
    /// A sink for segment `name`, created with `permissions` (file mode bits) if new.
    pub fn new(name: &str, permissions: u32) -> Self {
        StdSink {
            name: bare(name).to_string(),
            permissions,
            writer: None,
        }
    }
}

impl SegmentSink for StdSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&mut self, fields: &[FieldDef], mode: Mode) -> Result<u64, BridgeError> {
        let opts = CreateOptions {
            mode,
            permissions: self.permissions,
        };
        let w =
            Writer::<Dynamic>::create_with_fields(&self.name, fields, &opts).map_err(
                |e| match e {
                    flexshm_std::Error::LayoutMismatch { field, detail, .. } => {
                        BridgeError::Mismatch {
                            name: self.name.clone(),
                            detail: format!("field '{field}': {detail}"),
                        }
                    }
                    flexshm_std::Error::ModeMismatch {
                        expected, found, ..
                    } => BridgeError::Mismatch {
                        name: self.name.clone(),
                        detail: format!("mode: remote {expected:?}, local {found:?}"),
                    },
                    e => seg_err(&self.name)(e),
                },
            )?;
        // Fields an existing segment already has written (a restarted mirror).
        let written = match w.reader() {
            Ok(mut r) => {
                let opts = ReadOptions {
                    latest: true,
                    reset_modified: false,
                };
                r.try_read(opts).map(|s| s.info().written).unwrap_or(0)
            }
            Err(_) => 0,
        };
        self.writer = Some(w);
        Ok(written)
    }

    fn write_record(&mut self, fields: &[WireField<'_>], which: u64) -> Result<u32, BridgeError> {
        let name = &self.name;
        let w = self.writer.as_mut().ok_or_else(|| BridgeError::Segment {
            name: name.clone(),
            source: "write before prepare".into(),
        })?;
        let defs = w.layout().fields();
        if fields.len() != defs.len() {
            return Err(BridgeError::Wire(wire::WireError::Invalid {
                what: "field count differs from the local segment",
            }));
        }
        // Array bytes travel little-endian; `ArrayRef` wants native order.
        let mut own_bytes: Vec<Option<Vec<u8>>> = Vec::new();
        if cfg!(target_endian = "big") {
            own_bytes.resize(defs.len(), None);
            for (i, f) in fields.iter().enumerate() {
                if let (true, Some(FieldValue::Array { dtype, bytes, .. })) =
                    (which & (1 << i) != 0, f.value)
                {
                    let mut v = bytes.to_vec();
                    for e in v.chunks_exact_mut(dtype.size() as usize) {
                        e.reverse();
                    }
                    own_bytes[i] = Some(v);
                }
            }
        }
        // Truncated values are stored as they came, with their TRUNCATED status.
        let mut truncated = 0u64;
        let mut values: Vec<(usize, Value<'_>)> = Vec::with_capacity(defs.len());
        for (i, (f, d)) in fields.iter().zip(defs).enumerate() {
            if which & (1 << i) == 0 {
                continue;
            }
            let bad = |what| BridgeError::Wire(wire::WireError::Field { index: i, what });
            let v = f
                .value
                .ok_or(bad("selected for writing but has no value"))?;
            let value = match v {
                FieldValue::Bool(b) => Value::Bool(b),
                FieldValue::Int(x) => Value::Int(x),
                FieldValue::UInt(x) => Value::UInt(x),
                FieldValue::Float(x) => Value::Float(x),
                FieldValue::Str(s) => Value::Str(s),
                FieldValue::Array { dtype, rows, bytes } => {
                    let Kind::Array { dims, .. } = d.kind else {
                        return Err(bad("array value for a field that is not an array"));
                    };
                    let bytes = own_bytes.get(i).and_then(|b| b.as_deref()).unwrap_or(bytes);
                    let mut shape = [0usize; flexshm_core::MAX_DIMS];
                    let ds = dims.as_slice();
                    shape[0] = rows;
                    for (k, &dk) in ds.iter().enumerate().skip(1) {
                        shape[k] = dk as usize;
                    }
                    let a =
                        ArrayRef::new(dtype, &shape[..ds.len()], bytes).ok_or(bad("array rank"))?;
                    Value::Array(a)
                }
            };
            if f.status.truncated {
                truncated |= 1 << i;
            }
            values.push((i, value));
        }
        w.write_fields_truncated(&values, truncated)
            .map_err(seg_err(name))?;
        Ok(if w.mode().is_fifo() {
            w.finalize().map_err(seg_err(name))?
        } else {
            w.head()
        })
    }
}
