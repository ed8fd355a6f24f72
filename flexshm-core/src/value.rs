//! Values a writer stores and values a reader decodes, with the conversion rules.
//!
//! Validation ([`check`]) happens entirely before the region is touched, so a write whose
//! values do not all fit changes nothing.

use crate::error::Error;
use crate::layout::{INFO_TRUNCATED, INFO_WRITTEN};
use crate::schema::{Dtype, FieldDef, Kind, MAX_DIMS};

/// A value to write into one field.
///
/// Integers convert to any integer or float field when they are in range; floats convert
/// to f32 or f64 fields; booleans only fit bool fields; strings fit string fields
/// (truncated to the capacity in code points); arrays must match the field's dtype and
/// trailing dimensions exactly (a frontend converts first, e.g. with NumPy's same-kind
/// casting).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// Text.
    Str(&'a str),
    /// An array in C order.
    Array(ArrayRef<'a>),
}

/// A borrowed C-order array: dtype, shape (first dimension = rows) and the elements'
/// bytes in native byte order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrayRef<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Number of dimensions used in `shape`.
    pub ndim: usize,
    /// The shape; entries past `ndim` are ignored.
    pub shape: [usize; MAX_DIMS],
    /// The elements, native byte order, C order, `product(shape) * dtype.size()` bytes.
    pub bytes: &'a [u8],
}

impl<'a> ArrayRef<'a> {
    /// An array from a shape slice; `None` if it has more than [`MAX_DIMS`] dimensions.
    pub fn new(dtype: Dtype, shape: &[usize], bytes: &'a [u8]) -> Option<ArrayRef<'a>> {
        if shape.is_empty() || shape.len() > MAX_DIMS {
            return None;
        }
        let mut s = [0usize; MAX_DIMS];
        s[..shape.len()].copy_from_slice(shape);
        Some(ArrayRef {
            dtype,
            ndim: shape.len(),
            shape: s,
            bytes,
        })
    }
}

/// What `check` decided about one value: how much is stored and the info word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Bytes of the value stored (strings and arrays; scalars use their dtype size).
    pub used: usize,
    /// The field info word (written bit, truncated bit, used length).
    pub info: u32,
}

/// True if the integer `v` (an `Int` or `UInt` value) is in the range of the integer
/// dtype `d`. Shifts instead of 128-bit comparisons: no multi-word arithmetic on 32-bit
/// targets.
fn int_fits(d: Dtype, v: &Value<'_>) -> bool {
    let bits = d.size() * 8;
    let signed = matches!(d, Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64);
    // Bits a non-negative value may use: one fewer for the sign of a signed dtype.
    let pos_bits = bits - signed as u32;
    let (neg, mag) = match *v {
        Value::Int(i) if i < 0 => (true, !(i as u64)), // |i| - 1, the bits a negative uses
        Value::Int(i) => (false, i as u64),
        Value::UInt(u) => (false, u),
        _ => return false,
    };
    if neg && !signed {
        return false;
    }
    // A negative value fits in the same bits as its `|v| - 1`.
    pos_bits >= 64 || mag >> pos_bits == 0
}

/// Byte index where the first `chars` code points of `s` end, and whether `s` is longer.
pub(crate) fn cut_chars(s: &str, chars: usize) -> (usize, bool) {
    // Every code point takes at least one byte: a string of at most `chars` bytes fits
    // without counting (the common case, and a write checks each value twice).
    if s.len() <= chars {
        return (s.len(), false);
    }
    // In UTF-8 a code point starts at every byte that is not a continuation byte
    // (0b10xx_xxxx): the `chars`-th such byte is where the cut goes. (A byte loop is less
    // code than `char_indices`, which decodes every code point.)
    let mut n = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b & 0xC0 != 0x80 {
            if n == chars {
                return (i, true);
            }
            n += 1;
        }
    }
    (s.len(), false)
}

fn wrong_kind(f: &FieldDef) -> Error {
    Error::WrongKind {
        field: f.name,
        expected: f.kind,
    }
}

/// Validates `v` for field `f`; nothing is written.
pub(crate) fn check(f: &FieldDef, v: &Value<'_>) -> Result<Plan, Error> {
    let Kind::Scalar(d) = f.kind else {
        return check_sized(f, v);
    };
    match (d, v) {
        (Dtype::Bool, Value::Bool(_)) => {}
        (d, Value::Int(_) | Value::UInt(_)) if d.is_integer() => {
            if !int_fits(d, v) {
                return Err(Error::OutOfRange { field: f.name });
            }
        }
        (d, Value::Float(_) | Value::Int(_) | Value::UInt(_)) if d.is_float() => {}
        _ => return Err(wrong_kind(f)),
    }
    Ok(Plan {
        used: d.size() as usize,
        info: INFO_WRITTEN,
    })
}

/// [`check`] for a string or array field (a scalar field is `WrongKind`). Typed records
/// whose scalars are stored directly use only this half, so firmware that writes only
/// such records links no scalar conversion code.
pub(crate) fn check_sized(f: &FieldDef, v: &Value<'_>) -> Result<Plan, Error> {
    match (f.kind, v) {
        (Kind::Str { chars }, Value::Str(s)) => {
            let (end, trunc) = cut_chars(s, chars as usize);
            Ok(Plan {
                used: end,
                info: INFO_WRITTEN | if trunc { INFO_TRUNCATED } else { 0 } | end as u32,
            })
        }
        (Kind::Array { dtype, dims }, Value::Array(a)) => {
            let field_dims = dims.as_slice();
            if a.dtype != dtype || a.ndim != field_dims.len() {
                return Err(Error::ShapeMismatch { field: f.name });
            }
            if a.shape[1..a.ndim]
                .iter()
                .zip(&field_dims[1..])
                .any(|(&x, &y)| x != y as usize)
            {
                return Err(Error::ShapeMismatch { field: f.name });
            }
            let row_bytes = dims.row_elems().unwrap_or(0) as usize * dtype.size() as usize;
            let rows = a.shape[0];
            if rows.checked_mul(row_bytes) != Some(a.bytes.len()) {
                return Err(Error::ShapeMismatch { field: f.name });
            }
            let cap = dims.rows() as usize;
            let stored = rows.min(cap);
            Ok(Plan {
                used: stored * row_bytes,
                info: INFO_WRITTEN | if rows > cap { INFO_TRUNCATED } else { 0 } | stored as u32,
            })
        }
        _ => Err(wrong_kind(f)),
    }
}

/// The little-endian bytes of a scalar value converted to `d` (after `check`).
pub(crate) fn scalar_bytes(d: Dtype, v: &Value<'_>) -> ([u8; 8], usize) {
    let n = d.size() as usize;
    let out = match d {
        Dtype::F32 | Dtype::F64 => {
            let fl = match *v {
                Value::Bool(b) => b as u8 as f64,
                Value::Int(i) => i as f64,
                Value::UInt(u) => u as f64,
                Value::Float(x) => x,
                _ => 0.0,
            };
            if d == Dtype::F32 {
                (fl as f32).to_bits() as u64
            } else {
                fl.to_bits()
            }
        }
        // Bool and the integers: `check` let only values in range through, so the
        // two's-complement bits, cut to the dtype's size, are the stored value.
        _ => match *v {
            Value::Bool(b) => b as u64,
            Value::Int(i) => i as u64,
            Value::UInt(u) => u,
            _ => 0,
        },
    };
    (out.to_le_bytes(), n)
}

/// A decoded field value, borrowing a snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// A bool field.
    Bool(bool),
    /// Signed integer fields (i8..i64), widened.
    Int(i64),
    /// Unsigned integer fields (u8..u64), widened.
    UInt(u64),
    /// f32 and f64 fields, widened.
    Float(f64),
    /// A string field.
    Str(&'a str),
    /// An array field: `rows` rows are stored (the first dimension's used length);
    /// `bytes` holds them in little-endian element order, C order.
    Array {
        /// Element type.
        dtype: Dtype,
        /// Rows stored (<= the first dimension).
        rows: usize,
        /// The stored elements' bytes (little-endian).
        bytes: &'a [u8],
    },
}

/// The stored bytes of a scalar (1 to 8, little-endian) as the low bits of a `u64`.
#[inline]
pub(crate) fn le_bits(b: &[u8]) -> u64 {
    // On hosts one load per scalar size: a copy of a run-time length into a `[u8; 8]` is
    // a `memcpy` call per field there. Microcontrollers keep the byte loop (flash).
    #[cfg(not(target_os = "none"))]
    match *b {
        [b0] => b0 as u64,
        [b0, b1] => u16::from_le_bytes([b0, b1]) as u64,
        [b0, b1, b2, b3] => u32::from_le_bytes([b0, b1, b2, b3]) as u64,
        [b0, b1, b2, b3, b4, b5, b6, b7] => u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        _ => le_bytes(b),
    }
    #[cfg(target_os = "none")]
    le_bytes(b)
}

/// [`le_bits`] for any length up to 8, byte by byte.
#[inline]
fn le_bytes(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (w, &b) in w.iter_mut().zip(b) {
        *w = b;
    }
    u64::from_le_bytes(w)
}

/// Decodes a scalar from its little-endian bytes.
#[cfg_attr(not(target_os = "none"), inline(always))]
pub(crate) fn decode_scalar(d: Dtype, b: &[u8]) -> FieldValue<'static> {
    let u = le_bits(b);
    match d {
        Dtype::Bool => FieldValue::Bool(b[0] != 0),
        Dtype::I8 => FieldValue::Int(b[0] as i8 as i64),
        Dtype::I16 => FieldValue::Int(u as u16 as i16 as i64),
        Dtype::I32 => FieldValue::Int(u as u32 as i32 as i64),
        Dtype::I64 => FieldValue::Int(u as i64),
        Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => FieldValue::UInt(u),
        Dtype::F32 => FieldValue::Float(f32::from_bits(u as u32) as f64),
        Dtype::F64 => FieldValue::Float(f64::from_bits(u)),
    }
}
