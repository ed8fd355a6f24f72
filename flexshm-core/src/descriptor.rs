//! The schema descriptor stored in every segment (docs/PROTOCOL.md §5, §6): one 64-byte
//! canonical entry per field, and the layout hash over them.

use crate::error::Error;
use crate::schema::{Dims, Dtype, FieldDef, Kind, Name, MAX_DIMS, MAX_EXTENT, MAX_NAME_LEN};

/// Bytes of one field entry in the schema descriptor.
pub const FIELD_ENTRY_LEN: usize = 64;
/// Bytes of the descriptor's preamble (the field count).
pub const DESCRIPTOR_PREAMBLE: usize = 4;
/// Descriptor code of a string field; dtype codes are 1..=11.
pub const STR_CODE: u8 = 12;

/// Bytes of the descriptor for `n` fields.
pub const fn descriptor_len(n: usize) -> usize {
    DESCRIPTOR_PREAMBLE + n * FIELD_ENTRY_LEN
}

/// Encodes one field entry into 64 bytes.
pub fn encode_entry(f: &FieldDef, e: &mut [u8]) {
    let (code, ndim, dims): (u8, u8, [u32; MAX_DIMS]) = match f.kind {
        Kind::Scalar(d) => (d.code(), 0, [0; MAX_DIMS]),
        Kind::Str { chars } => (STR_CODE, 0, [chars, 0, 0, 0]),
        Kind::Array { dtype, dims } => (dtype.code(), dims.len, dims.dims),
    };
    e[0] = code;
    e[1] = ndim;
    e[2] = f.name.len;
    e[3] = 0;
    for (k, d) in dims.iter().enumerate() {
        e[4 + 4 * k..8 + 4 * k].copy_from_slice(&d.to_le_bytes());
    }
    e[20..20 + MAX_NAME_LEN].copy_from_slice(&f.name.bytes);
}

/// Decodes one 64-byte field entry. Every byte is checked; a corrupt entry is an error.
pub fn decode_field_entry(e: &[u8; FIELD_ENTRY_LEN]) -> Result<FieldDef, Error> {
    let corrupt = |what| Error::CorruptHeader { what };
    let name_len = e[2] as usize;
    if name_len == 0 || name_len > MAX_NAME_LEN || e[3] != 0 {
        return Err(corrupt("schema field name length"));
    }
    let name_bytes = &e[20..20 + name_len];
    // What Name::try_new checks (the length is checked above), without copying through a
    // &str (and without `contains`, which links a memchr).
    if crate::utf8::to_str(name_bytes).is_none() || !name_bytes.iter().all(|&b| b != 0) {
        return Err(corrupt("schema field name"));
    }
    if e[20 + name_len..].iter().any(|&b| b != 0) {
        return Err(corrupt("schema field name padding"));
    }
    // The name bytes, then zero padding up to MAX_NAME_LEN (checked just above).
    let mut bytes = [0u8; MAX_NAME_LEN];
    bytes.copy_from_slice(&e[20..]);
    let name = Name {
        len: name_len as u8,
        bytes,
    };
    let mut dims = [0u32; MAX_DIMS];
    for (k, d) in dims.iter_mut().enumerate() {
        *d = u32::from_le_bytes([e[4 + 4 * k], e[5 + 4 * k], e[6 + 4 * k], e[7 + 4 * k]]);
    }
    let ndim = e[1] as usize;
    let kind = if e[0] == STR_CODE {
        if ndim != 0 || dims[1..].iter().any(|&d| d != 0) {
            return Err(corrupt("schema string entry"));
        }
        if dims[0] == 0 || dims[0] > MAX_EXTENT / 4 {
            return Err(corrupt("schema string capacity"));
        }
        Kind::Str { chars: dims[0] }
    } else {
        let dtype = Dtype::from_code(e[0]).ok_or(corrupt("schema field type code"))?;
        if ndim == 0 {
            if dims.iter().any(|&d| d != 0) {
                return Err(corrupt("schema scalar entry"));
            }
            Kind::Scalar(dtype)
        } else {
            if ndim > MAX_DIMS || dims[ndim..].iter().any(|&d| d != 0) {
                return Err(corrupt("schema array dimensions"));
            }
            let dims = Dims::new(&dims[..ndim]).ok_or(corrupt("schema array dimensions"))?;
            if (Kind::Array { dtype, dims }).data_size().is_none() {
                return Err(corrupt("schema array too large"));
            }
            Kind::Array { dtype, dims }
        }
    };
    Ok(FieldDef { name, kind })
}

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Feeds `bytes` into the FNV-1a 64 state `h`.
const fn fnv_feed(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// 64-bit FNV-1a hash; the layout hash is this hash of the schema descriptor.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv_feed(FNV_OFFSET, bytes)
}

/// The layout hash of a schema: FNV-1a 64 of its descriptor, computed without a buffer.
pub fn layout_hash(fields: &[FieldDef]) -> u64 {
    let mut h = fnv_feed(FNV_OFFSET, &(fields.len() as u32).to_le_bytes());
    let mut e = [0u8; FIELD_ENTRY_LEN];
    for f in fields {
        encode_entry(f, &mut e);
        h = fnv_feed(h, &e);
    }
    h
}

/// [`layout_hash`] at compile time (the typed API stores its schema's hash as a
/// constant, so firmware need not link the hash code).
pub(crate) const fn layout_hash_const(fields: &[FieldDef]) -> u64 {
    let mut h = fnv_feed(FNV_OFFSET, &(fields.len() as u32).to_le_bytes());
    let mut i = 0;
    while i < fields.len() {
        h = fnv_feed(h, &entry_bytes(&fields[i]));
        i += 1;
    }
    h
}

/// The 64-byte descriptor entry of one field exactly as [`encode_entry`] writes it, as a
/// const fn (for [`layout_hash_const`]; the unit test `entry_bytes_match_encode_entry`
/// keeps the two identical).
const fn entry_bytes(f: &FieldDef) -> [u8; FIELD_ENTRY_LEN] {
    let (code, ndim, dims): (u8, u8, [u32; MAX_DIMS]) = match f.kind {
        Kind::Scalar(d) => (d.code(), 0, [0; MAX_DIMS]),
        Kind::Str { chars } => (STR_CODE, 0, [chars, 0, 0, 0]),
        Kind::Array { dtype, dims } => (dtype.code(), dims.len, dims.dims),
    };
    let mut e = [0u8; FIELD_ENTRY_LEN];
    e[0] = code;
    e[1] = ndim;
    e[2] = f.name.len;
    // e[3] is reserved: 0.
    let mut k = 0;
    while k < MAX_DIMS {
        let b = dims[k].to_le_bytes();
        let mut j = 0;
        while j < 4 {
            e[4 + 4 * k + j] = b[j];
            j += 1;
        }
        k += 1;
    }
    let mut j = 0;
    while j < MAX_NAME_LEN {
        e[20 + j] = f.name.bytes[j];
        j += 1;
    }
    e
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    /// The const entry encoding (used for compile-time layout hashes) is byte for byte
    /// what `encode_entry` writes into segments.
    #[test]
    fn entry_bytes_match_encode_entry() {
        let fields = [
            FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
            FieldDef::new("b", Kind::Scalar(Dtype::Bool)),
            FieldDef::new("status_msg", Kind::str(32)),
            FieldDef::new("img", Kind::array(Dtype::U8, &[480, 640, 3])),
            FieldDef::new("v", Kind::array(Dtype::I16, &[7])),
            FieldDef::new(
                "a_name_of_exactly_forty_four_bytes_in_length",
                Kind::Scalar(Dtype::U64),
            ),
        ];
        for f in &fields {
            let mut e = [0xAAu8; FIELD_ENTRY_LEN];
            encode_entry(f, &mut e);
            assert_eq!(entry_bytes(f), e, "{f:?}");
        }
        assert_eq!(layout_hash_const(&fields), layout_hash(&fields));
        assert_eq!(layout_hash_const(&[]), layout_hash(&[]));
    }
}
