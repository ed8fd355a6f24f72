//! A consistent copy of one record, with per-field status and decoding.

use crate::error::Error;
use crate::layout::{meta_offset, Layout, INFO_LEN_MASK};
use crate::record::{FieldIndex, Record, Schema};
use crate::schema::{Dtype, FieldDef, Kind, Name};
use crate::status::{FieldStatus, ReadInfo};
use crate::value::{decode_scalar, FieldValue};

/// A record copied out of a segment by a read, in a buffer the caller owns, with the
/// statuses the read computed.
pub struct Snapshot<'b, 'l, S: Schema> {
    bytes: &'b [u8],
    layout: &'l Layout<S::Fields>,
    info: ReadInfo,
    /// Set by a typed reader whose layout is its record's own compile-time layout
    /// (hosts only): `decode` then loads scalars at constant offsets.
    own: bool,
}

impl<S: Schema> Clone for Snapshot<'_, '_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Schema> Copy for Snapshot<'_, '_, S> {}

impl<S: Schema> core::fmt::Debug for Snapshot<'_, '_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Snapshot")
            .field("info", &self.info)
            .finish()
    }
}

impl<'b, 'l, S: Schema> Snapshot<'b, 'l, S> {
    /// A view of a record that a read left in `bytes` (at least the layout's slot size),
    /// with the [`ReadInfo`] that read returned: for frontends that keep the bytes of a
    /// read and decode fields later. Decoding checks every length again, so bytes from
    /// anywhere give errors, never out-of-bounds reads.
    pub fn new(bytes: &'b [u8], layout: &'l Layout<S::Fields>, info: ReadInfo) -> Self {
        Snapshot {
            bytes,
            layout,
            info,
            own: false,
        }
    }

    /// A snapshot from a typed reader whose layout is `S`'s compile-time layout.
    pub(crate) fn new_own(bytes: &'b [u8], layout: &'l Layout<S::Fields>, info: ReadInfo) -> Self {
        Snapshot {
            own: true,
            ..Snapshot::new(bytes, layout, info)
        }
    }

    /// Whether `decode` takes the constant-offset path (tests).
    #[cfg(test)]
    pub(crate) fn is_own(&self) -> bool {
        self.own
    }

    /// What the read returned: commit number, loss count, status masks.
    pub fn info(&self) -> ReadInfo {
        self.info
    }

    /// Commit number of the record.
    pub fn commit(&self) -> u32 {
        self.info.commit
    }

    /// FIFO: records lost to a lapping writer since this reader's previous read.
    pub fn lost(&self) -> u32 {
        self.info.lost
    }

    /// The record's bytes (the whole buffer copy, starting with its `seq` word).
    pub fn bytes(&self) -> &'b [u8] {
        self.bytes
    }

    /// The record layout.
    pub fn layout(&self) -> &'l Layout<S::Fields> {
        self.layout
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// True if the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// Declaration of field `i`.
    pub fn field(&self, i: usize) -> Option<&'l FieldDef> {
        self.layout.fields().get(i)
    }

    /// Index of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.layout.index_of(name)
    }

    /// Status of field `i` (an index, or a typed [`FieldId`](crate::FieldId)).
    pub fn status(&self, i: impl FieldIndex) -> FieldStatus {
        self.info.status(i)
    }

    /// The raw bytes of field `i`'s stored value (little-endian; strings and arrays cut
    /// to their stored length).
    pub fn raw(&self, i: impl FieldIndex) -> Result<&'b [u8], Error> {
        raw_field(self.bytes, self.layout, i.index())
    }

    /// Decodes field `i`. Unwritten fields decode as zero / empty.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn get(&self, i: impl FieldIndex) -> Result<FieldValue<'b>, Error> {
        decode_field(self.bytes, self.layout, i.index())
    }

    /// Decodes the field called `name`.
    pub fn get_named(&self, name: &str) -> Result<FieldValue<'b>, Error> {
        let i = self.index_of(name).ok_or(Error::UnknownField {
            name: Name::lossy(name),
        })?;
        self.get(i)
    }
}

impl<R: Record> Snapshot<'_, '_, R> {
    /// Decodes every field into `out` and returns what the read reported (so that a typed
    /// read is one line: `let info = reader.try_read(&mut buf, opts)?.decode(&mut out)?;`).
    /// Unwritten fields get zero / empty values, and array rows that were not stored read
    /// as zero.
    pub fn decode(&self, out: &mut R) -> Result<ReadInfo, Error> {
        let layout = self.layout;
        let buf = self.bytes;
        // Microcontrollers keep the loop over field indices: code per field costs flash.
        if R::VISITS_FIELDS && cfg!(not(target_os = "none")) {
            // The record's own layout: its bytes as one slice of the compile-time slot
            // size, checked once, so each scalar's offset and bounds check is a
            // constant.
            let fixed = match const { Layout::precomputed(R::FIELDS) } {
                Some(pre) if self.own => buf.get(..pre.slot_size()),
                _ => None,
            };
            let mut dec = DecodeVisited::<R> {
                buf,
                layout,
                next: 0,
                fixed,
            };
            out.visit_mut(&mut dec)?;
            if dec.next != R::FIELDS.len() {
                return Err(Error::InvalidField {
                    field: Name::EMPTY,
                    reason: crate::writer::NOT_VISITED,
                });
            }
            return Ok(self.info);
        }
        for (i, f) in R::FIELDS.iter().enumerate() {
            // Scalars: load the bits at their constant offset (a buffer too short gives
            // `raw_field`'s error). Anything else takes the general path.
            if let Kind::Scalar(d) = f.kind {
                let off = layout.offset(i);
                let raw = match buf.get(off..off + d.size() as usize) {
                    Some(raw) => raw,
                    None => raw_field(buf, layout, i)?,
                };
                if out.set_scalar_bits(i, crate::value::le_bits(raw)) {
                    continue;
                }
            }
            let v = decode_typed::<R>(buf, layout, i, f)?;
            out.set_field(i, v).map_err(|what| Error::CorruptRecord {
                field: f.name,
                what,
            })?;
        }
        Ok(self.info)
    }

    /// The record as a new value (see [`decode`](Self::decode)). A record with large
    /// arrays is better decoded into a value that is reused.
    pub fn record(&self) -> Result<R, Error>
    where
        R: Default,
    {
        let mut r = R::default();
        self.decode(&mut r)?;
        Ok(r)
    }
}

/// [`Snapshot::decode`] for a record that visits its fields: the same values and errors
/// as the loop over field indices, with each field's code specialised for its Rust type
/// (a scalar's size is a constant, so its bits are one load).
///
/// Errors name fields by `R::FIELDS`, as the loop does (a snapshot's layout is normally
/// `R`'s, but `Snapshot::new` and `Reader::open_layout` take any). Holds the record to its
/// `VISITS_FIELDS` promise like the writer's check pass.
struct DecodeVisited<'a, R: Record> {
    buf: &'a [u8],
    layout: &'a Layout<<R as Schema>::Fields>,
    /// The index the next visited field must have.
    next: usize,
    /// `buf` cut to the slot size of `R`'s compile-time layout, when that is the
    /// snapshot's layout.
    fixed: Option<&'a [u8]>,
}

impl<R: Record> crate::record::FieldVisitorMut for DecodeVisited<'_, R> {
    #[inline(always)]
    fn field<T: crate::FieldType>(&mut self, i: usize, x: &mut T) -> Result<(), Error> {
        let (buf, layout) = (self.buf, self.layout);
        let def = match R::FIELDS.get(i) {
            Some(f) if i == self.next && f.kind.same(&T::KIND) => f,
            f => {
                return Err(Error::InvalidField {
                    field: f.map_or(Name::EMPTY, |f| f.name),
                    reason: crate::writer::VISITED_WRONG,
                })
            }
        };
        self.next += 1;
        if let Kind::Scalar(d) = T::KIND {
            let loaded = match (self.fixed, const { Layout::precomputed(R::FIELDS) }) {
                (Some(rec), Some(pre)) => load_le(rec, pre.offset(i), d.size()),
                _ => load_le(buf, layout.offset(i), d.size()),
            };
            let bits = match loaded {
                Some(bits) => bits,
                None => crate::value::le_bits(raw_field(buf, layout, i)?),
            };
            if x.set_scalar_bits(bits) {
                return Ok(());
            }
        }
        let v = decode_typed::<R>(buf, layout, i, def)?;
        x.set_from(v).map_err(|what| Error::CorruptRecord {
            field: def.name,
            what,
        })
    }
}

/// Field `i` (`f`) of a typed record `R` that the scalar fast path did not take: a
/// string or array, or a scalar whose stored bits `set_scalar_bits` refused. Under
/// `R::DIRECT_SCALARS` such a scalar is corrupt (the promise leaves only a bool byte
/// other than 0 or 1 to refuse), and only strings and arrays are decoded here.
#[cfg_attr(not(target_os = "none"), inline(always))]
fn decode_typed<'b, R: Record>(
    buf: &'b [u8],
    layout: &Layout<<R as Schema>::Fields>,
    i: usize,
    f: &FieldDef,
) -> Result<FieldValue<'b>, Error> {
    if !R::DIRECT_SCALARS {
        return decode_field(buf, layout, i);
    }
    if let Kind::Scalar(d) = f.kind {
        return Err(Error::CorruptRecord {
            field: f.name,
            what: if d == Dtype::Bool {
                BAD_BOOL
            } else {
                "Record::set_scalar_bits refused a stored scalar"
            },
        });
    }
    decode_sized(buf, layout, i)
}

/// The little-endian scalar of `size` bytes (1, 2, 4 or 8) at `off`, or `None` if `buf`
/// is too short. With a constant `size` this is one bounds check and one load.
#[inline(always)]
fn load_le(buf: &[u8], off: usize, size: u32) -> Option<u64> {
    fn at<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
        buf.get(off..off.checked_add(N)?)?.try_into().ok()
    }
    Some(match size {
        1 => at::<1>(buf, off)?[0] as u64,
        2 => u16::from_le_bytes(at(buf, off)?) as u64,
        4 => u32::from_le_bytes(at(buf, off)?) as u64,
        _ => u64::from_le_bytes(at(buf, off)?),
    })
}

#[cfg_attr(not(target_os = "none"), inline)]
fn word(buf: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = buf.get(off..off + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

/// The stored bytes of field `i` in a snapshot buffer.
#[cfg_attr(not(target_os = "none"), inline)]
fn raw_field<'b, F: AsRef<[FieldDef]>>(
    bytes: &'b [u8],
    layout: &Layout<F>,
    i: usize,
) -> Result<&'b [u8], Error> {
    let f = layout
        .fields()
        .get(i)
        .ok_or(Error::UnknownField { name: Name::EMPTY })?;
    let len = word(bytes, meta_offset(i) + 4) & INFO_LEN_MASK;
    let used = match f.kind {
        Kind::Scalar(d) => d.size() as usize,
        Kind::Str { .. } => len as usize,
        // Checked: `len` is untrusted when the bytes did not come from a validated read,
        // and the product can overflow a 32-bit usize.
        Kind::Array { dtype, dims } => (len as usize)
            .saturating_mul(dims.row_elems().unwrap_or(0) as usize * dtype.size() as usize),
    };
    let off = layout.offset(i);
    let corrupt = Error::CorruptRecord {
        field: f.name,
        what: "stored length exceeds capacity",
    };
    if used > layout.size(i) {
        return Err(corrupt);
    }
    bytes.get(off..off + used).ok_or(corrupt)
}

const BAD_BOOL: &str = "bool byte other than 0 or 1";

/// A writer stores bools as 0 or 1 (docs/PROTOCOL.md §8); any other byte in a bool
/// scalar or array did not come from a writer of this protocol.
#[cfg_attr(not(target_os = "none"), inline)]
fn check_bools(f: &FieldDef, dtype: Dtype, raw: &[u8]) -> Result<(), Error> {
    if dtype == Dtype::Bool && raw.iter().any(|&b| b > 1) {
        return Err(Error::CorruptRecord {
            field: f.name,
            what: BAD_BOOL,
        });
    }
    Ok(())
}

/// Decodes field `i` of a snapshot buffer.
#[cfg_attr(not(target_os = "none"), inline)]
fn decode_field<'b, F: AsRef<[FieldDef]>>(
    bytes: &'b [u8],
    layout: &Layout<F>,
    i: usize,
) -> Result<FieldValue<'b>, Error> {
    if let Some(f) = layout.fields().get(i) {
        if let Kind::Scalar(d) = f.kind {
            let raw = raw_field(bytes, layout, i)?;
            check_bools(f, d, raw)?;
            return Ok(decode_scalar(d, raw));
        }
    }
    decode_sized(bytes, layout, i)
}

/// [`decode_field`] for a string or array field (typed records with direct scalars use
/// only this half). A scalar field decodes as a corrupt record; callers never ask.
fn decode_sized<'b, F: AsRef<[FieldDef]>>(
    bytes: &'b [u8],
    layout: &Layout<F>,
    i: usize,
) -> Result<FieldValue<'b>, Error> {
    let raw = raw_field(bytes, layout, i)?;
    let f = &layout.fields()[i];
    let corrupt = |what| Error::CorruptRecord {
        field: f.name,
        what,
    };
    match f.kind {
        Kind::Str { chars } => {
            let s = crate::utf8::to_str(raw).ok_or(corrupt("string is not valid UTF-8"))?;
            // A writer keeps at most `chars` code points (L <= 4N only bounds the bytes).
            if crate::value::cut_chars(s, chars as usize).1 {
                return Err(corrupt("string has more code points than its capacity"));
            }
            Ok(FieldValue::Str(s))
        }
        Kind::Array { dtype, dims } => {
            check_bools(f, dtype, raw)?;
            Ok(FieldValue::Array {
                dtype,
                rows: raw.len() / (dims.row_elems().unwrap_or(1) as usize * dtype.size() as usize),
                bytes: raw,
            })
        }
        Kind::Scalar(_) => Err(corrupt("scalar decoded as a string or array")),
    }
}
