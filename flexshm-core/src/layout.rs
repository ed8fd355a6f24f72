//! Where every field lives inside a slot, and how large a whole segment is.
//!
//! Slot layout (offsets from the slot's start, all little-endian u32 words):
//!
//! ```text
//! 0   seq      seqlock counter: odd while the writer fills the slot
//! 4   commit   commit number of the record in this slot
//! 8   flags    bit 0: the slot holds a committed record
//! 12  reserved 0
//! 16  field meta, 8 bytes per field: [last-write commit u32][info u32]
//! ..  payload: field values in declaration order, each at its natural alignment
//! ```
//!
//! The payload starts 8-aligned; the slot size is rounded up to 4 bytes and the stride
//! between slots to 64 bytes. docs/PROTOCOL.md is the normative description.

use crate::error::Error;
use crate::schema::{FieldDef, Kind, Name};

/// Most fields a schema can have (the per-reader change tracking is a 64-bit mask).
pub const MAX_FIELDS: usize = 64;
/// Alignment of slots (and of the slot area) in bytes.
pub const SLOT_ALIGN: usize = 64;
/// Bytes of the fixed slot header before the field metadata.
pub const SLOT_HEADER_LEN: usize = 16;
/// Bytes of metadata per field.
pub const FIELD_META_LEN: usize = 8;

/// Buffer flag: the buffer holds a committed record.
pub const FLAG_COMMITTED: u32 = 1;

/// Field info word: bit 31 = truncated, bit 30 = written, bits 0..=29 = used length
/// (bytes for strings, rows for arrays, 0 for scalars).
pub const INFO_TRUNCATED: u32 = 1 << 31;
/// Field info word: the field has been written.
pub const INFO_WRITTEN: u32 = 1 << 30;
/// Field info word: the used length.
pub const INFO_LEN_MASK: u32 = (1 << 30) - 1;

const fn align_up(x: usize, a: usize) -> usize {
    (x + a - 1) & !(a - 1)
}

/// Offset of field `i`'s metadata inside a slot.
pub const fn meta_offset(i: usize) -> usize {
    SLOT_HEADER_LEN + i * FIELD_META_LEN
}

/// Result of the const layout computation: payload offsets and the slot size.
#[derive(Clone, Copy)]
struct Computed {
    offsets: [u32; MAX_FIELDS],
    slot_size: usize,
}

/// Computes offsets in a `const`-evaluable way. Errors are reported as static strings so
/// that [`slot_size_of`] can turn them into compile-time panics.
const fn compute(fields: &[FieldDef]) -> Result<Computed, (usize, &'static str)> {
    if fields.len() > MAX_FIELDS {
        return Err((usize::MAX, "too many fields"));
    }
    let mut offsets = [0u32; MAX_FIELDS];
    let mut off = align_up(SLOT_HEADER_LEN + fields.len() * FIELD_META_LEN, 8);
    let mut i = 0;
    while i < fields.len() {
        let size = match fields[i].kind.data_size() {
            Some(s) => s as usize,
            None => return Err((i, "field is too large or has an invalid capacity")),
        };
        off = align_up(off, fields[i].kind.align() as usize);
        offsets[i] = off as u32;
        off += size;
        if off > u32::MAX as usize / 2 {
            return Err((i, "record exceeds 2 GiB"));
        }
        i += 1;
    }
    Ok(Computed {
        offsets,
        slot_size: align_up(off, 4),
    })
}

/// The size of one record's snapshot (a slot without its padding to 64 bytes), computed at
/// compile time for the typed API. Panics (a compile error in a `const`) on an invalid
/// schema.
pub const fn slot_size_of(fields: &[FieldDef]) -> usize {
    match compute(fields) {
        Ok(c) => c.slot_size,
        Err(_) => panic!("invalid flexshm schema"),
    }
}

/// A validated schema with its computed slot layout.
///
/// `S` is whatever holds the field declarations: `&'static [FieldDef]` for a const schema,
/// or a [`SchemaBuf`](crate::SchemaBuf) for a schema given at run time or read from a
/// segment.
#[derive(Clone)]
pub struct Layout<S> {
    fields: S,
    offsets: [u32; MAX_FIELDS],
    slot_size: usize,
    /// The layout hash as (low, high) words, computed once (u32s keep the struct
    /// 4-aligned on 32-bit targets).
    hash: [u32; 2],
}

/// True if no name is empty and no two are equal (const twin of the checks in
/// [`Layout::new`]).
const fn names_ok(fields: &[FieldDef]) -> bool {
    let mut i = 0;
    while i < fields.len() {
        let a = &fields[i].name;
        if a.len_const() == 0 {
            return false;
        }
        let mut j = 0;
        while j < i {
            let b = &fields[j].name;
            if a.len_const() == b.len_const() {
                let mut k = 0;
                while k < a.len_const() && a.byte(k) == b.byte(k) {
                    k += 1;
                }
                if k == a.len_const() {
                    return false;
                }
            }
            j += 1;
        }
        i += 1;
    }
    true
}

impl Layout<&'static [FieldDef]> {
    /// The layout of a const schema, for evaluation at compile time (the typed API does):
    /// the same layout [`Layout::new`] computes, or `None` where `new` returns an error
    /// (then `new` reports it). Leaves the run-time layout code out of small firmware.
    pub(crate) const fn precomputed(fields: &'static [FieldDef]) -> Option<Self> {
        if !names_ok(fields) {
            return None;
        }
        match compute(fields) {
            Ok(c) => {
                let h = crate::descriptor::layout_hash_const(fields);
                Some(Layout {
                    fields,
                    offsets: c.offsets,
                    slot_size: c.slot_size,
                    hash: [h as u32, (h >> 32) as u32],
                })
            }
            Err(_) => None,
        }
    }
}

impl<S: AsRef<[FieldDef]>> Layout<S> {
    /// Validates the declarations (count, names, capacities, duplicates) and computes the
    /// layout.
    pub fn new(fields: S) -> Result<Self, Error> {
        let defs = fields.as_ref();
        if defs.len() > MAX_FIELDS {
            return Err(Error::TooManyFields { count: defs.len() });
        }
        for (i, f) in defs.iter().enumerate() {
            if f.name.as_str().is_empty() {
                return Err(Error::InvalidField {
                    field: f.name,
                    reason: "empty name",
                });
            }
            if defs[..i].iter().any(|g| g.name == f.name) {
                return Err(Error::InvalidField {
                    field: f.name,
                    reason: "duplicate field name",
                });
            }
        }
        let c = match compute(defs) {
            Ok(c) => c,
            Err((i, reason)) => {
                return Err(Error::InvalidField {
                    field: defs.get(i).map(|f| f.name).unwrap_or(Name::EMPTY),
                    reason,
                })
            }
        };
        let h = crate::descriptor::layout_hash(defs);
        Ok(Layout {
            fields,
            offsets: c.offsets,
            slot_size: c.slot_size,
            hash: [h as u32, (h >> 32) as u32],
        })
    }

    /// The field declarations.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn fields(&self) -> &[FieldDef] {
        self.fields.as_ref()
    }

    /// The field holder this layout was built from.
    pub fn into_fields(self) -> S {
        self.fields
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.as_ref().len()
    }

    /// True if the schema has no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| f.name.as_str() == name)
    }

    /// Offset of field `i`'s value inside a slot.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn offset(&self, i: usize) -> usize {
        self.offsets[i] as usize
    }

    /// Bytes of field `i`'s value.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn size(&self, i: usize) -> usize {
        // Validated in `new`.
        self.fields()[i].kind.data_size().unwrap_or(0) as usize
    }

    /// Bytes of one record (slot without padding); a snapshot buffer needs this many.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Distance between slots in the segment (slot size rounded up to 64).
    pub fn slot_stride(&self) -> usize {
        align_up(self.slot_size, SLOT_ALIGN)
    }

    /// The layout hash stored in the header.
    pub fn hash(&self) -> u64 {
        self.hash[0] as u64 | (self.hash[1] as u64) << 32
    }

    /// Offset of the slot area: header, descriptor, padded to 64.
    pub fn slots_offset(&self) -> usize {
        align_up(
            crate::header::DESCRIPTOR_OFFSET + crate::descriptor::descriptor_len(self.len()),
            SLOT_ALIGN,
        )
    }

    /// Total bytes of a segment with `slots` record slots (FIFO capacity; 1 for
    /// single-slot mode). The segment holds `slots + 1` buffers so that the writer always
    /// fills one that no reader is directed to.
    pub fn segment_size(&self, slots: u32) -> Result<usize, Error> {
        let bufs = (slots as usize).checked_add(1).ok_or(Error::TooLarge)?;
        let total = self
            .slot_stride()
            .checked_mul(bufs)
            .and_then(|s| s.checked_add(self.slots_offset()))
            .ok_or(Error::TooLarge)?;
        if total > u32::MAX as usize {
            return Err(Error::TooLarge);
        }
        Ok(total)
    }
}

/// Number of buffers for a ring of `slots` FIFO slots.
pub(crate) fn buffers(slots: u32) -> u32 {
    slots + 1
}

/// The commit-number modulus for `nbuf` buffers: the largest multiple of `nbuf` that is
/// at most `u32::MAX`. Commit numbers run in `0..modulus`, so `commit % nbuf` stays
/// continuous across the wrap and `u32::MAX` is never a commit number.
pub fn modulus(nbuf: u32) -> u32 {
    (u32::MAX / nbuf) * nbuf
}

/// Kind helpers used when validating snapshots.
pub(crate) fn capacity_len(kind: &Kind) -> u32 {
    match kind {
        Kind::Scalar(_) => 0,
        Kind::Str { chars } => chars * 4,
        Kind::Array { dims, .. } => dims.rows(),
    }
}

#[cfg(test)]
mod precomputed_tests {
    use super::*;
    use crate::schema::{Dtype, Name};

    /// The compile-time layout is the layout `Layout::new` computes.
    #[test]
    fn precomputed_matches_new() {
        const SCHEMAS: &[&[FieldDef]] = &[
            &[],
            &[
                FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
                FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
                FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
                FieldDef::new("status_msg", Kind::str(32)),
            ],
            &[
                FieldDef::new("flag", Kind::Scalar(Dtype::Bool)),
                FieldDef::new("s", Kind::str(3)),
                FieldDef::new("v", Kind::array(Dtype::U16, &[5, 3])),
                FieldDef::new("x", Kind::Scalar(Dtype::I64)),
                FieldDef::new("f", Kind::Scalar(Dtype::F32)),
            ],
        ];
        for &fields in SCHEMAS {
            let p = Layout::precomputed(fields).expect("valid schema");
            let n = Layout::new(fields).unwrap();
            assert_eq!(p.fields(), n.fields());
            assert_eq!(p.offsets, n.offsets);
            assert_eq!(p.slot_size(), n.slot_size());
            assert_eq!(p.hash(), n.hash());
            assert_eq!(p.hash(), crate::descriptor::layout_hash(fields));
        }
    }

    /// Where `Layout::new` rejects a schema, the compile-time layout is `None` (and the
    /// typed API falls back to `new` for the error).
    #[test]
    fn precomputed_rejects_what_new_rejects() {
        const F: Kind = Kind::Scalar(Dtype::F64);
        const DUP: &[FieldDef] = &[FieldDef::new("a", F), FieldDef::new("a", F)];
        const EMPTY: &[FieldDef] = &[FieldDef {
            name: Name::EMPTY,
            kind: Kind::Scalar(Dtype::U8),
        }];
        for fields in [DUP, EMPTY] {
            assert!(Layout::precomputed(fields).is_none());
            assert!(Layout::new(fields).is_err());
        }
        // Names that differ only in length are not duplicates.
        const PREFIX: &[FieldDef] = &[FieldDef::new("a", F), FieldDef::new("ab", F)];
        assert!(Layout::precomputed(PREFIX).is_some());
        assert!(Layout::new(PREFIX).is_ok());
    }
}
