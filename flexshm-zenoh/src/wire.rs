//! The bridge's wire format (version 2): a schema message, a record message and a
//! record-batch message (several consecutive records of one publisher session).
//!
//! The format is independent of the shared-memory region layout (no offsets, no padding,
//! no slot metadata): a record carries, for each field, its status bits and — only when
//! the field is written — its value: scalars as little-endian bytes of their dtype,
//! strings as a byte length and UTF-8 bytes, arrays as a row count and the rows'
//! little-endian element bytes. docs/BRIDGE.md has the tables; this module is the
//! reference implementation.
//!
//! Decoding checks every byte against the schema and never panics, whatever the input:
//! a message that does not validate is an error and nothing of it is used.
//!
//! Versions: this build writes version 2 and reads versions 1 and 2. Version 1 had the
//! schema and record messages only, with the same bytes; the batch is new in version 2,
//! so a version-1 receiver drops every message of this build as "version 2 is not
//! supported" rather than taking part of a stream.
//!
//! ```
//! use flexshm_core::{Dtype, FieldDef, FieldStatus, FieldValue, Kind, Mode};
//! use flexshm_zenoh::wire::{self, RecordHeader, SchemaMsg, WireField};
//!
//! let fields = vec![
//!     FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
//!     FieldDef::new("status_msg", Kind::str(32)),
//! ];
//! let schema = SchemaMsg::new(0x1234, 0, Mode::Single, fields)?;
//! // The receiver learns the schema from its message alone.
//! let received = SchemaMsg::decode(&schema.encode())?;
//!
//! let written = FieldStatus { written: true, truncated: false, modified: true };
//! let values = [
//!     WireField { status: written, value: Some(FieldValue::Float(23.5)) },
//!     WireField::UNWRITTEN,
//! ];
//! let hdr = RecordHeader { session: 0x1234, seq: 1, commit: 1, schema_hash: schema.hash };
//! let mut msg = Vec::new();
//! wire::encode_record(&hdr, &schema.fields, &values, &mut msg)?;
//!
//! let mut out = Vec::new();
//! assert_eq!(wire::decode_record(&msg, &received, &mut out)?, hdr);
//! assert_eq!(out[0].value, Some(FieldValue::Float(23.5)));
//! assert!(out[1].status.unwritten());
//! // A damaged message is an error, never a panic.
//! assert!(wire::decode_record(&msg[..msg.len() - 1], &received, &mut out).is_err());
//! # Ok::<(), wire::WireError>(())
//! ```

use std::fmt;

use flexshm_core::internal::fnv1a64;
use flexshm_core::MAX_EXTENT;
use flexshm_core::{
    Dims, Dtype, FieldDef, FieldStatus, FieldValue, Kind, Layout, Mode, Name, MAX_DIMS, MAX_FIELDS,
    MAX_NAME_LEN, MAX_SLOTS,
};

/// First four bytes of every bridge message.
pub const MAGIC: [u8; 4] = *b"FXZB";
/// The wire-format version this build writes.
pub const VERSION: u8 = 2;
/// The oldest version this build reads (version 1: no batch messages).
pub const MIN_VERSION: u8 = 1;
/// Bytes of the preamble common to both messages (magic, version, kind, reserved).
pub const PREAMBLE_LEN: usize = 8;
/// Bytes of a schema message before its field entries.
pub const SCHEMA_HEADER_LEN: usize = 42;
/// Bytes of a record message before its fields.
pub const RECORD_HEADER_LEN: usize = 42;
/// Bytes of a batch message before its first record.
pub const BATCH_HEADER_LEN: usize = 36;
/// Most records one batch message may carry.
pub const MAX_BATCH: usize = u16::MAX as usize;

/// Message kind byte (offset 5).
const KIND_SCHEMA: u8 = 1;
const KIND_RECORD: u8 = 2;
const KIND_BATCH: u8 = 3;

/// Status bits of a field in a record message.
const ST_WRITTEN: u8 = 1;
const ST_TRUNCATED: u8 = 2;
const ST_MODIFIED: u8 = 4;

/// Field kind codes in a schema message.
const FK_SCALAR: u8 = 1;
const FK_STR: u8 = 2;
const FK_ARRAY: u8 = 3;

/// Mode codes in a schema message.
const MODE_SINGLE: u8 = 0;
const MODE_FIFO: u8 = 1;

/// Why a message was rejected (or could not be encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The message ends before `what`.
    Short {
        /// The part that is missing.
        what: &'static str,
    },
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// A version this build does not read.
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// A kind byte that is neither schema nor record (or not the one expected).
    UnexpectedKind {
        /// The kind byte found.
        found: u8,
    },
    /// A header value is out of range.
    Invalid {
        /// What is wrong.
        what: &'static str,
    },
    /// Field `index` is invalid.
    Field {
        /// Index of the field in the schema.
        index: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The schema it declares is not a valid flexshm schema.
    Schema {
        /// The core's reason.
        reason: String,
    },
    /// The record names another schema than the one it is decoded with.
    SchemaHash {
        /// The hash of the schema used for decoding.
        expected: u64,
        /// The hash in the record.
        found: u64,
    },
    /// Bytes left over after the last field.
    Trailing {
        /// How many.
        extra: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Short { what } => write!(f, "message too short: it ends before {what}"),
            WireError::BadMagic => f.write_str("not a flexshm bridge message (bad magic)"),
            WireError::UnsupportedVersion { found } => write!(
                f,
                "wire format version {found} is not supported (this build reads versions \
                 {MIN_VERSION} to {VERSION})"
            ),
            WireError::UnexpectedKind { found } => write!(f, "unexpected message kind {found}"),
            WireError::Invalid { what } => write!(f, "invalid message: {what}"),
            WireError::Field { index, what } => write!(f, "field {index}: {what}"),
            WireError::Schema { reason } => write!(f, "invalid schema: {reason}"),
            WireError::SchemaHash { expected, found } => write!(
                f,
                "record is for schema {found:016x}, expected {expected:016x}"
            ),
            WireError::Trailing { extra } => write!(f, "{extra} bytes after the last field"),
        }
    }
}

impl std::error::Error for WireError {}

/// Which message a byte string is, with the identifiers needed to route it before it is
/// decoded in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// A schema message from publisher session `session`.
    Schema {
        /// Publisher session id.
        session: u64,
    },
    /// A record message.
    Record(RecordHeader),
    /// A batch message.
    Batch(BatchHeader),
}

impl Peek {
    /// The publisher session a message belongs to.
    pub fn session(&self) -> u64 {
        match self {
            Peek::Schema { session } => *session,
            Peek::Record(h) => h.session,
            Peek::Batch(h) => h.session,
        }
    }
}

/// The header of a batch message: `count` records of one session with the consecutive
/// sequence numbers `first_seq ..= first_seq + count - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Publisher session id.
    pub session: u64,
    /// Sequence number of the first record.
    pub first_seq: u64,
    /// [`schema_hash`] of the records' schema.
    pub schema_hash: u64,
    /// Number of records, 1 ..= [`MAX_BATCH`].
    pub count: usize,
}

impl BatchHeader {
    /// The header record `i` of the batch would have as a record message.
    pub fn record(&self, i: usize, commit: u64) -> RecordHeader {
        RecordHeader {
            session: self.session,
            seq: self.first_seq + i as u64,
            commit,
            schema_hash: self.schema_hash,
        }
    }
}

/// The header of a record message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Random id of the publisher session (new on every publisher start and every time
    /// it reopens its segment).
    pub session: u64,
    /// Message number within the session: 1, 2, 3, ... A gap is network loss.
    pub seq: u64,
    /// The source segment's commit number, unwrapped to 64 bits (consecutive commits
    /// differ by 1 even where the segment's 32-bit commit numbers wrap).
    pub commit: u64,
    /// [`schema_hash`] of the record's schema.
    pub schema_hash: u64,
}

/// One field of a record: its status and, when written, its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireField<'a> {
    /// Written / truncated / modified. On the wire, `modified` means "written since the
    /// previous record message of the same session".
    pub status: FieldStatus,
    /// The value; `Some` exactly when `status.written`.
    pub value: Option<FieldValue<'a>>,
}

impl WireField<'static> {
    /// A field that was never written.
    pub const UNWRITTEN: WireField<'static> = WireField {
        status: FieldStatus {
            written: false,
            truncated: false,
            modified: false,
        },
        value: None,
    };
}

/// The schema of a published segment: what a receiver needs to decode its records and to
/// create a segment for them.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaMsg {
    /// Publisher session id (the same as in its records).
    pub session: u64,
    /// Identity of the source segment instance (0: unknown). Equal ids across sessions
    /// mean the same segment, whose commit numbers continue.
    pub source: u64,
    /// Mode and slot count of the source segment.
    pub mode: Mode,
    /// The fields.
    pub fields: Vec<FieldDef>,
    /// [`schema_hash`] of `fields`.
    pub hash: u64,
}

impl SchemaMsg {
    /// A schema message; the fields are checked as a segment would check them.
    pub fn new(
        session: u64,
        source: u64,
        mode: Mode,
        fields: Vec<FieldDef>,
    ) -> Result<SchemaMsg, WireError> {
        check_mode(mode)?;
        Layout::new(fields.as_slice()).map_err(|e| WireError::Schema {
            reason: e.to_string(),
        })?;
        let hash = schema_hash(&fields);
        Ok(SchemaMsg {
            session,
            source,
            mode,
            fields,
            hash,
        })
    }

    /// The message bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SCHEMA_HEADER_LEN + self.fields.len() * 24);
        out.extend_from_slice(&preamble(KIND_SCHEMA));
        out.extend_from_slice(&self.session.to_le_bytes());
        out.extend_from_slice(&self.source.to_le_bytes());
        out.extend_from_slice(&self.hash.to_le_bytes());
        let (code, slots) = match self.mode {
            Mode::Single => (MODE_SINGLE, 1),
            Mode::Fifo { slots } => (MODE_FIFO, slots),
        };
        out.extend_from_slice(&[code, 0, 0, 0]);
        out.extend_from_slice(&slots.to_le_bytes());
        encode_fields_block(&self.fields, &mut out);
        out
    }

    /// Decodes and validates a schema message.
    pub fn decode(bytes: &[u8]) -> Result<SchemaMsg, WireError> {
        let mut c = Cursor::new(bytes);
        check_preamble(&mut c, KIND_SCHEMA)?;
        let session = c.u64("session id")?;
        let source = c.u64("source id")?;
        let hash = c.u64("schema hash")?;
        let code = c.u8("mode")?;
        if c.take(3, "reserved bytes")?.iter().any(|&b| b != 0) {
            return Err(WireError::Invalid {
                what: "reserved bytes are not zero",
            });
        }
        let slots = c.u32("slot count")?;
        let mode = match code {
            MODE_SINGLE if slots == 1 => Mode::Single,
            MODE_SINGLE => {
                return Err(WireError::Invalid {
                    what: "single-slot mode with a slot count other than 1",
                })
            }
            MODE_FIFO => Mode::Fifo { slots },
            _ => return Err(WireError::Invalid { what: "mode code" }),
        };
        check_mode(mode)?;
        let block = c.rest();
        let fields = decode_fields_block(block)?;
        let computed = fnv1a64(block);
        if computed != hash {
            return Err(WireError::SchemaHash {
                expected: computed,
                found: hash,
            });
        }
        Layout::new(fields.as_slice()).map_err(|e| WireError::Schema {
            reason: e.to_string(),
        })?;
        Ok(SchemaMsg {
            session,
            source,
            mode,
            fields,
            hash,
        })
    }
}

fn check_mode(mode: Mode) -> Result<(), WireError> {
    match mode {
        Mode::Fifo { slots } if slots == 0 || slots > MAX_SLOTS => Err(WireError::Invalid {
            what: "FIFO slot count out of range",
        }),
        _ => Ok(()),
    }
}

/// The schema hash: FNV-1a 64 of the schema's field block as the schema message encodes
/// it (field count, then each field's name and kind). It identifies the record format on
/// the wire and does not depend on the mode or on the region layout.
pub fn schema_hash(fields: &[FieldDef]) -> u64 {
    let mut block = Vec::with_capacity(2 + fields.len() * 24);
    encode_fields_block(fields, &mut block);
    fnv1a64(&block)
}

fn preamble(kind: u8) -> [u8; PREAMBLE_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, kind, 0, 0]
}

fn encode_fields_block(fields: &[FieldDef], out: &mut Vec<u8>) {
    out.extend_from_slice(&(fields.len() as u16).to_le_bytes());
    for f in fields {
        let name = f.name.as_str().as_bytes();
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        match f.kind {
            Kind::Scalar(d) => out.extend_from_slice(&[FK_SCALAR, d.code()]),
            Kind::Str { chars } => {
                out.push(FK_STR);
                out.extend_from_slice(&chars.to_le_bytes());
            }
            Kind::Array { dtype, dims } => {
                out.extend_from_slice(&[FK_ARRAY, dtype.code(), dims.ndim() as u8]);
                for d in dims.as_slice() {
                    out.extend_from_slice(&d.to_le_bytes());
                }
            }
        }
    }
}

fn decode_fields_block(block: &[u8]) -> Result<Vec<FieldDef>, WireError> {
    let mut c = Cursor::new(block);
    let n = c.u16("field count")? as usize;
    if n > MAX_FIELDS {
        return Err(WireError::Invalid {
            what: "more fields than a segment can hold",
        });
    }
    let mut fields = Vec::with_capacity(n);
    for index in 0..n {
        let bad = |what| WireError::Field { index, what };
        let len = c.u8("field name length")? as usize;
        if len == 0 || len > MAX_NAME_LEN {
            return Err(bad("name length out of range"));
        }
        let raw = c.take(len, "field name")?;
        let name = std::str::from_utf8(raw)
            .ok()
            .and_then(Name::try_new)
            .ok_or(bad("name is not UTF-8 without NUL"))?;
        let kind = match c.u8("field kind")? {
            FK_SCALAR => Kind::Scalar(dtype_from(c.u8("dtype")?).ok_or(bad("dtype code"))?),
            FK_STR => {
                let chars = c.u32("string capacity")?;
                if chars == 0 || chars > MAX_EXTENT / 4 {
                    return Err(bad("string capacity out of range"));
                }
                Kind::Str { chars }
            }
            FK_ARRAY => {
                let dtype = dtype_from(c.u8("dtype")?).ok_or(bad("dtype code"))?;
                let ndim = c.u8("array rank")? as usize;
                if ndim == 0 || ndim > MAX_DIMS {
                    return Err(bad("array rank out of range"));
                }
                let mut dims = [0u32; MAX_DIMS];
                for d in dims.iter_mut().take(ndim) {
                    *d = c.u32("array dimension")?;
                }
                let dims = Dims::new(&dims[..ndim]).ok_or(bad("array dimension out of range"))?;
                let kind = Kind::Array { dtype, dims };
                if kind.data_size().is_none() {
                    return Err(bad("array too large"));
                }
                kind
            }
            _ => return Err(bad("field kind code")),
        };
        fields.push(FieldDef { name, kind });
    }
    if !c.rest().is_empty() {
        return Err(WireError::Trailing {
            extra: c.rest().len(),
        });
    }
    Ok(fields)
}

fn dtype_from(code: u8) -> Option<Dtype> {
    Dtype::from_code(code)
}

/// Bytes a record message for `values` will take (for preallocation).
pub fn record_len(fields: &[FieldDef], values: &[WireField<'_>]) -> usize {
    let mut n = RECORD_HEADER_LEN;
    for (f, v) in fields.iter().zip(values) {
        n += 1;
        if let Some(val) = &v.value {
            n += match (f.kind, val) {
                (Kind::Scalar(d), _) => d.size() as usize,
                (_, FieldValue::Str(s)) => 4 + s.len(),
                (_, FieldValue::Array { bytes, .. }) => 4 + bytes.len(),
                _ => 0,
            };
        }
    }
    n
}

/// Appends the record message for `values` (one per field of `fields`, in order) to
/// `out`. The values are checked against the schema as strictly as decoding checks them,
/// so a message this function produces always decodes.
pub fn encode_record(
    hdr: &RecordHeader,
    fields: &[FieldDef],
    values: &[WireField<'_>],
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    if values.len() != fields.len() {
        return Err(WireError::Invalid {
            what: "value count differs from the field count",
        });
    }
    let start = out.len();
    out.reserve(record_len(fields, values));
    out.extend_from_slice(&preamble(KIND_RECORD));
    out.extend_from_slice(&hdr.session.to_le_bytes());
    out.extend_from_slice(&hdr.seq.to_le_bytes());
    out.extend_from_slice(&hdr.commit.to_le_bytes());
    out.extend_from_slice(&hdr.schema_hash.to_le_bytes());
    out.extend_from_slice(&(fields.len() as u16).to_le_bytes());
    encode_fields(fields, values, out).inspect_err(|_| out.truncate(start))
}

/// Appends the status byte and value of every field; on error `out` may hold a part.
fn encode_fields(
    fields: &[FieldDef],
    values: &[WireField<'_>],
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    for (index, (f, v)) in fields.iter().zip(values).enumerate() {
        encode_field(index, f, v, out)?;
    }
    Ok(())
}

/// Builds a batch message record by record:
/// [`begin`](Self::begin), [`push`](Self::push) each record, [`finish`](Self::finish).
///
/// ```
/// use flexshm_core::{Dtype, FieldDef, FieldStatus, FieldValue, Kind, Mode};
/// use flexshm_zenoh::wire::{self, BatchEncoder, SchemaMsg, WireField};
///
/// let schema = SchemaMsg::new(7, 0, Mode::Fifo { slots: 8 },
///     vec![FieldDef::new("n", Kind::Scalar(Dtype::U32))])?;
/// let st = FieldStatus { written: true, truncated: false, modified: true };
/// let mut msg = Vec::new();
/// let mut batch = BatchEncoder::begin(&mut msg, &schema, 1);
/// for n in 1..=3u64 {
///     let v = [WireField { status: st, value: Some(FieldValue::UInt(n)) }];
///     batch.push(&mut msg, n, &schema.fields, &v)?;
/// }
/// assert_eq!(batch.finish(&mut msg), 3);
///
/// let (mut values, mut commits) = (Vec::new(), Vec::new());
/// let h = wire::decode_batch(&msg, &schema, &mut values, &mut commits)?;
/// assert_eq!((h.first_seq, h.count, commits), (1, 3, vec![1, 2, 3]));
/// assert_eq!(values[2].value, Some(FieldValue::UInt(3)));
/// # Ok::<(), wire::WireError>(())
/// ```
#[derive(Debug)]
pub struct BatchEncoder {
    start: usize,
    count: usize,
    last_commit: Option<u64>,
}

impl BatchEncoder {
    /// Appends the header of a batch of `schema`'s session whose first record gets
    /// sequence number `first_seq` (at least 1).
    pub fn begin(out: &mut Vec<u8>, schema: &SchemaMsg, first_seq: u64) -> BatchEncoder {
        let start = out.len();
        out.extend_from_slice(&preamble(KIND_BATCH));
        out.extend_from_slice(&schema.session.to_le_bytes());
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&schema.hash.to_le_bytes());
        out.extend_from_slice(&(schema.fields.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        BatchEncoder {
            start,
            count: 0,
            last_commit: None,
        }
    }

    /// Records in the batch so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True before the first [`push`](Self::push).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the message so far.
    pub fn bytes(&self, out: &[u8]) -> usize {
        out.len() - self.start
    }

    /// Appends the next record: its commit number (greater than the previous record's)
    /// and its values, checked as [`encode_record`] checks them. On error nothing is
    /// appended and the batch stays as it was.
    pub fn push(
        &mut self,
        out: &mut Vec<u8>,
        commit: u64,
        fields: &[FieldDef],
        values: &[WireField<'_>],
    ) -> Result<(), WireError> {
        if self.count >= MAX_BATCH {
            return Err(WireError::Invalid {
                what: "batch already holds the most records allowed",
            });
        }
        if values.len() != fields.len() {
            return Err(WireError::Invalid {
                what: "value count differs from the field count",
            });
        }
        if self.last_commit.is_some_and(|c| commit <= c) {
            return Err(WireError::Invalid {
                what: "commit numbers in a batch must grow",
            });
        }
        let at = out.len();
        out.extend_from_slice(&commit.to_le_bytes());
        encode_fields(fields, values, out).inspect_err(|_| out.truncate(at))?;
        self.count += 1;
        self.last_commit = Some(commit);
        Ok(())
    }

    /// Writes the record count into the header and returns it. A batch must hold at
    /// least one record to decode.
    pub fn finish(self, out: &mut [u8]) -> usize {
        let at = self.start + BATCH_HEADER_LEN - 2;
        out[at..at + 2].copy_from_slice(&(self.count as u16).to_le_bytes());
        self.count
    }
}

fn encode_field(
    index: usize,
    f: &FieldDef,
    v: &WireField<'_>,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let bad = |what| WireError::Field { index, what };
    let st = v.status;
    if (st.truncated || st.modified) && !st.written {
        return Err(bad("truncated or modified but not written"));
    }
    out.push(
        if st.written { ST_WRITTEN } else { 0 }
            | if st.truncated { ST_TRUNCATED } else { 0 }
            | if st.modified { ST_MODIFIED } else { 0 },
    );
    let value = match (st.written, v.value) {
        (false, None) => return Ok(()),
        (true, Some(value)) => value,
        (true, None) => return Err(bad("written but no value")),
        (false, Some(_)) => return Err(bad("a value for an unwritten field")),
    };
    match (f.kind, value) {
        (Kind::Scalar(_), _) if st.truncated => return Err(bad("a scalar cannot be truncated")),
        (Kind::Scalar(d), value) => {
            let (bytes, n) = scalar_le(d, value).ok_or(bad("value does not fit the dtype"))?;
            out.extend_from_slice(&bytes[..n]);
        }
        (Kind::Str { chars }, FieldValue::Str(s)) => {
            if s.len() > 4 * chars as usize || code_points_over(s, chars) {
                return Err(bad("string longer than its capacity"));
            }
            if st.truncated && s.chars().count() != chars as usize {
                return Err(bad("a truncated string must fill its capacity"));
            }
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        (
            Kind::Array { dtype, dims },
            FieldValue::Array {
                dtype: vd,
                rows,
                bytes,
            },
        ) => {
            if vd != dtype {
                return Err(bad("array dtype differs from the schema"));
            }
            if rows > dims.rows() as usize {
                return Err(bad("more rows than the first dimension"));
            }
            if st.truncated && rows != dims.rows() as usize {
                return Err(bad("a truncated array must fill its first dimension"));
            }
            if Some(bytes.len()) != row_bytes(dtype, dims).checked_mul(rows) {
                return Err(bad("array bytes do not match its row count"));
            }
            if dtype == Dtype::Bool && bytes.iter().any(|&b| b > 1) {
                return Err(bad("bool element other than 0 or 1"));
            }
            out.extend_from_slice(&(rows as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        _ => return Err(bad("value kind differs from the schema")),
    }
    Ok(())
}

/// Whether `s` has more than `chars` code points; counts them only when its byte length
/// allows that (a code point takes at least one byte).
fn code_points_over(s: &str, chars: u32) -> bool {
    s.len() > chars as usize && s.chars().count() > chars as usize
}

fn row_bytes(dtype: Dtype, dims: Dims) -> usize {
    dims.row_elems().unwrap_or(0) as usize * dtype.size() as usize
}

/// The little-endian bytes of a decoded scalar for dtype `d`, or `None` if the value is
/// of another kind or out of the dtype's range.
fn scalar_le(d: Dtype, v: FieldValue<'_>) -> Option<([u8; 8], usize)> {
    let n = d.size() as usize;
    let bits: u64 = match (d, v) {
        (Dtype::Bool, FieldValue::Bool(b)) => b as u64,
        (Dtype::I8, FieldValue::Int(i)) => i8::try_from(i).ok()? as u8 as u64,
        (Dtype::I16, FieldValue::Int(i)) => i16::try_from(i).ok()? as u16 as u64,
        (Dtype::I32, FieldValue::Int(i)) => i32::try_from(i).ok()? as u32 as u64,
        (Dtype::I64, FieldValue::Int(i)) => i as u64,
        (Dtype::U8, FieldValue::UInt(u)) => u8::try_from(u).ok()? as u64,
        (Dtype::U16, FieldValue::UInt(u)) => u16::try_from(u).ok()? as u64,
        (Dtype::U32, FieldValue::UInt(u)) => u32::try_from(u).ok()? as u64,
        (Dtype::U64, FieldValue::UInt(u)) => u,
        // A float field's value was widened from f32 by the reader: narrowing it back is
        // exact.
        (Dtype::F32, FieldValue::Float(x)) => (x as f32).to_bits() as u64,
        (Dtype::F64, FieldValue::Float(x)) => x.to_bits(),
        _ => return None,
    };
    Some((bits.to_le_bytes(), n))
}

/// Decodes a scalar from its little-endian bytes (`b.len() == d.size()`).
fn scalar_from_le(d: Dtype, b: &[u8]) -> Option<FieldValue<'static>> {
    let mut w = [0u8; 8];
    w.get_mut(..b.len())?.copy_from_slice(b);
    let u = u64::from_le_bytes(w);
    Some(match d {
        Dtype::Bool => match u {
            0 => FieldValue::Bool(false),
            1 => FieldValue::Bool(true),
            _ => return None,
        },
        Dtype::I8 => FieldValue::Int(u as u8 as i8 as i64),
        Dtype::I16 => FieldValue::Int(u as u16 as i16 as i64),
        Dtype::I32 => FieldValue::Int(u as u32 as i32 as i64),
        Dtype::I64 => FieldValue::Int(u as i64),
        Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => FieldValue::UInt(u),
        Dtype::F32 => FieldValue::Float(f32::from_bits(u as u32) as f64),
        Dtype::F64 => FieldValue::Float(f64::from_bits(u)),
    })
}

/// Reads the preamble and the identifiers of a message without decoding its body.
pub fn peek(bytes: &[u8]) -> Result<Peek, WireError> {
    let mut c = Cursor::new(bytes);
    let kind = check_preamble(&mut c, 0)?;
    match kind {
        KIND_SCHEMA => Ok(Peek::Schema {
            session: c.u64("session id")?,
        }),
        KIND_BATCH => Ok(Peek::Batch(batch_header(&mut c)?.0)),
        _ => Ok(Peek::Record(RecordHeader {
            session: c.u64("session id")?,
            seq: c.u64("sequence number")?,
            commit: c.u64("commit number")?,
            schema_hash: c.u64("schema hash")?,
        })),
    }
}

/// Reads a batch header after its preamble; returns it and the field count (which the
/// caller checks against the schema).
fn batch_header(c: &mut Cursor<'_>) -> Result<(BatchHeader, usize), WireError> {
    let session = c.u64("session id")?;
    let first_seq = c.u64("first sequence number")?;
    let schema_hash = c.u64("schema hash")?;
    let fields = c.u16("field count")? as usize;
    let count = c.u16("record count")? as usize;
    if first_seq == 0 {
        return Err(WireError::Invalid {
            what: "sequence number 0",
        });
    }
    if count == 0 {
        return Err(WireError::Invalid {
            what: "a batch without records",
        });
    }
    if first_seq.checked_add(count as u64 - 1).is_none() {
        return Err(WireError::Invalid {
            what: "sequence numbers overflow",
        });
    }
    let hdr = BatchHeader {
        session,
        first_seq,
        schema_hash,
        count,
    };
    Ok((hdr, fields))
}

/// Decodes and validates a batch message against `schema`: `commits` gets one commit
/// number per record, `out` the records' fields one after the other (record `i` is
/// `out[i * n .. (i + 1) * n]` for `n` fields), both borrowing `bytes`. Nothing of a
/// batch that fails is kept: on error both are left empty.
pub fn decode_batch<'a>(
    bytes: &'a [u8],
    schema: &SchemaMsg,
    out: &mut Vec<WireField<'a>>,
    commits: &mut Vec<u64>,
) -> Result<BatchHeader, WireError> {
    out.clear();
    commits.clear();
    let r = decode_batch_inner(bytes, schema, out, commits);
    if r.is_err() {
        out.clear();
        commits.clear();
    }
    r
}

fn decode_batch_inner<'a>(
    bytes: &'a [u8],
    schema: &SchemaMsg,
    out: &mut Vec<WireField<'a>>,
    commits: &mut Vec<u64>,
) -> Result<BatchHeader, WireError> {
    let mut c = Cursor::new(bytes);
    check_preamble(&mut c, KIND_BATCH)?;
    let (hdr, n) = batch_header(&mut c)?;
    if hdr.schema_hash != schema.hash {
        return Err(WireError::SchemaHash {
            expected: schema.hash,
            found: hdr.schema_hash,
        });
    }
    if n != schema.fields.len() {
        return Err(WireError::Invalid {
            what: "field count differs from the schema",
        });
    }
    // Each record takes at least its commit number and one status byte per field.
    let least = 8 + n;
    if hdr.count > c.rest().len() / least {
        return Err(WireError::Short {
            what: "the batch's records",
        });
    }
    out.reserve(hdr.count * n);
    commits.reserve(hdr.count);
    for _ in 0..hdr.count {
        let commit = c.u64("commit number")?;
        if commits.last().is_some_and(|&prev| commit <= prev) {
            return Err(WireError::Invalid {
                what: "commit numbers in a batch must grow",
            });
        }
        commits.push(commit);
        decode_fields(&mut c, schema, out)?;
    }
    if !c.rest().is_empty() {
        return Err(WireError::Trailing {
            extra: c.rest().len(),
        });
    }
    Ok(hdr)
}

/// Decodes and validates a record message against `schema`, filling `out` with one
/// [`WireField`] per field (borrowing `bytes`). On error `out` is left empty.
pub fn decode_record<'a>(
    bytes: &'a [u8],
    schema: &SchemaMsg,
    out: &mut Vec<WireField<'a>>,
) -> Result<RecordHeader, WireError> {
    out.clear();
    let r = decode_record_inner(bytes, schema, out);
    if r.is_err() {
        out.clear();
    }
    r
}

fn decode_record_inner<'a>(
    bytes: &'a [u8],
    schema: &SchemaMsg,
    out: &mut Vec<WireField<'a>>,
) -> Result<RecordHeader, WireError> {
    let mut c = Cursor::new(bytes);
    check_preamble(&mut c, KIND_RECORD)?;
    let hdr = RecordHeader {
        session: c.u64("session id")?,
        seq: c.u64("sequence number")?,
        commit: c.u64("commit number")?,
        schema_hash: c.u64("schema hash")?,
    };
    if hdr.schema_hash != schema.hash {
        return Err(WireError::SchemaHash {
            expected: schema.hash,
            found: hdr.schema_hash,
        });
    }
    if hdr.seq == 0 {
        return Err(WireError::Invalid {
            what: "sequence number 0",
        });
    }
    let n = c.u16("field count")? as usize;
    if n != schema.fields.len() {
        return Err(WireError::Invalid {
            what: "field count differs from the schema",
        });
    }
    decode_fields(&mut c, schema, out)?;
    if !c.rest().is_empty() {
        return Err(WireError::Trailing {
            extra: c.rest().len(),
        });
    }
    Ok(hdr)
}

/// Decodes one record's fields (status byte, then the value of a written field) and
/// appends them to `out`.
fn decode_fields<'a>(
    c: &mut Cursor<'a>,
    schema: &SchemaMsg,
    out: &mut Vec<WireField<'a>>,
) -> Result<(), WireError> {
    out.reserve(schema.fields.len());
    for (index, f) in schema.fields.iter().enumerate() {
        let bad = |what| WireError::Field { index, what };
        let st = c.u8("field status")?;
        if st & !(ST_WRITTEN | ST_TRUNCATED | ST_MODIFIED) != 0 {
            return Err(bad("unknown status bits"));
        }
        let status = FieldStatus {
            written: st & ST_WRITTEN != 0,
            truncated: st & ST_TRUNCATED != 0,
            modified: st & ST_MODIFIED != 0,
        };
        if !status.written {
            if st != 0 {
                return Err(bad("truncated or modified but not written"));
            }
            out.push(WireField::UNWRITTEN);
            continue;
        }
        let value = match f.kind {
            Kind::Scalar(_) if status.truncated => return Err(bad("a scalar cannot be truncated")),
            Kind::Scalar(d) => {
                let b = c.take(d.size() as usize, "scalar value")?;
                scalar_from_le(d, b).ok_or(bad("bool value other than 0 or 1"))?
            }
            Kind::Str { chars } => {
                let len = c.u32("string length")? as usize;
                if len > 4 * chars as usize {
                    return Err(bad("string longer than its capacity"));
                }
                let raw = c.take(len, "string bytes")?;
                let s = std::str::from_utf8(raw).map_err(|_| bad("string is not UTF-8"))?;
                if code_points_over(s, chars) {
                    return Err(bad("string has more code points than its capacity"));
                }
                if status.truncated && s.chars().count() != chars as usize {
                    return Err(bad("a truncated string must fill its capacity"));
                }
                FieldValue::Str(s)
            }
            Kind::Array { dtype, dims } => {
                let rows = c.u32("array row count")? as usize;
                if rows > dims.rows() as usize {
                    return Err(bad("more rows than the first dimension"));
                }
                if status.truncated && rows != dims.rows() as usize {
                    return Err(bad("a truncated array must fill its first dimension"));
                }
                // Cannot overflow: rows <= d0 and the whole array's size fits in u32.
                let len = row_bytes(dtype, dims) * rows;
                let raw = c.take(len, "array elements")?;
                if dtype == Dtype::Bool && raw.iter().any(|&b| b > 1) {
                    return Err(bad("bool element other than 0 or 1"));
                }
                FieldValue::Array {
                    dtype,
                    rows,
                    bytes: raw,
                }
            }
        };
        out.push(WireField {
            status,
            value: Some(value),
        });
    }
    Ok(())
}

/// Checks magic and version and returns the kind byte; `want` 0 accepts either kind.
fn check_preamble(c: &mut Cursor<'_>, want: u8) -> Result<u8, WireError> {
    if c.take(4, "magic")? != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = c.u8("version")?;
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(WireError::UnsupportedVersion { found: version });
    }
    let kind = c.u8("message kind")?;
    let known = match kind {
        KIND_SCHEMA | KIND_RECORD => true,
        // Batches came with version 2.
        KIND_BATCH => version >= 2,
        _ => false,
    };
    if !known || (want != 0 && kind != want) {
        return Err(WireError::UnexpectedKind { found: kind });
    }
    if c.take(2, "reserved bytes")? != [0, 0] {
        return Err(WireError::Invalid {
            what: "reserved bytes are not zero",
        });
    }
    Ok(kind)
}

/// A bounds-checked reader over a message.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.bytes.len() {
            return Err(WireError::Short { what });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
