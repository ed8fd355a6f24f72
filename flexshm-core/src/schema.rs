//! Field types, field declarations and the schema descriptor stored in every segment.
//!
//! A schema is a slice of [`FieldDef`]. It can be written as a `const` (see
//! [`crate::record!`]) or built at run time (the Python frontend does); both give the same
//! layout because the layout is computed from the declarations alone.

use core::fmt;

/// Longest field name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 44;
/// Most dimensions an array field can have.
pub const MAX_DIMS: usize = 4;
/// The largest value a length (string bytes, array rows) or a capacity may take.
pub const MAX_EXTENT: u32 = (1 << 30) - 1;

/// Element types of scalars and arrays, with their descriptor codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Dtype {
    /// One byte, 0 or 1.
    Bool = 1,
    /// Signed 8-bit integer.
    I8 = 2,
    /// Signed 16-bit integer.
    I16 = 3,
    /// Signed 32-bit integer.
    I32 = 4,
    /// Signed 64-bit integer.
    I64 = 5,
    /// Unsigned 8-bit integer.
    U8 = 6,
    /// Unsigned 16-bit integer.
    U16 = 7,
    /// Unsigned 32-bit integer.
    U32 = 8,
    /// Unsigned 64-bit integer.
    U64 = 9,
    /// IEEE 754 binary32.
    F32 = 10,
    /// IEEE 754 binary64.
    F64 = 11,
}

impl Dtype {
    /// Every dtype, in code order.
    pub const ALL: [Dtype; 11] = [
        Dtype::Bool,
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
        Dtype::U8,
        Dtype::U16,
        Dtype::U32,
        Dtype::U64,
        Dtype::F32,
        Dtype::F64,
    ];

    /// Size in bytes, which is also the alignment.
    #[cfg_attr(target_os = "none", inline(never))]
    pub const fn size(self) -> u32 {
        match self {
            Dtype::Bool | Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    /// The descriptor code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The dtype for a descriptor code.
    pub const fn from_code(code: u8) -> Option<Dtype> {
        if code >= 1 && code <= 11 {
            Some(Dtype::ALL[code as usize - 1])
        } else {
            None
        }
    }

    /// The NumPy name (`"float32"`, `"uint8"`, `"bool"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::I8 => "int8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::U32 => "uint32",
            Dtype::U64 => "uint64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// The dtype for a NumPy name.
    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.iter().copied().find(|d| d.name() == name)
    }

    /// True for the integer dtypes.
    pub const fn is_integer(self) -> bool {
        !matches!(self, Dtype::Bool | Dtype::F32 | Dtype::F64)
    }

    /// True for f32 and f64.
    pub const fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64)
    }
}

/// The dimensions of an array field, C order, at most [`MAX_DIMS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dims {
    pub(crate) len: u8,
    pub(crate) dims: [u32; MAX_DIMS],
}

impl Dims {
    /// Dimensions from a slice; `None` if it is empty, longer than [`MAX_DIMS`], or holds
    /// a dimension of 0 or above [`MAX_EXTENT`].
    pub const fn new(dims: &[u32]) -> Option<Dims> {
        if dims.is_empty() || dims.len() > MAX_DIMS {
            return None;
        }
        let mut out = [0u32; MAX_DIMS];
        let mut i = 0;
        while i < dims.len() {
            if dims[i] == 0 || dims[i] > MAX_EXTENT {
                return None;
            }
            out[i] = dims[i];
            i += 1;
        }
        Some(Dims {
            len: dims.len() as u8,
            dims: out,
        })
    }

    /// Dimensions from a length and an array (const-friendly twin of [`Dims::new`]).
    pub const fn from_array(len: usize, dims: [u32; MAX_DIMS]) -> Option<Dims> {
        if len == 0 || len > MAX_DIMS {
            return None;
        }
        let mut i = 0;
        while i < MAX_DIMS {
            if (i < len && (dims[i] == 0 || dims[i] > MAX_EXTENT)) || (i >= len && dims[i] != 0) {
                return None;
            }
            i += 1;
        }
        Some(Dims {
            len: len as u8,
            dims,
        })
    }

    /// The dimensions as a slice.
    pub fn as_slice(&self) -> &[u32] {
        &self.dims[..self.len as usize]
    }

    /// Number of dimensions.
    pub const fn ndim(&self) -> usize {
        self.len as usize
    }

    /// The first dimension (the number of rows).
    pub const fn rows(&self) -> u32 {
        self.dims[0]
    }

    /// Elements in one row (product of all dimensions but the first), if it fits in u32.
    pub const fn row_elems(&self) -> Option<u32> {
        let mut n: u32 = 1;
        let mut i = 1;
        while i < self.len as usize {
            n = match n.checked_mul(self.dims[i]) {
                Some(v) => v,
                None => return None,
            };
            i += 1;
        }
        Some(n)
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The type of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// One value of a dtype.
    Scalar(Dtype),
    /// UTF-8 text of up to `chars` Unicode code points, stored in `4 * chars` bytes.
    Str {
        /// Capacity in code points.
        chars: u32,
    },
    /// A C-order array; the first dimension may be filled partially (its used length is
    /// stored with the value).
    Array {
        /// Element type.
        dtype: Dtype,
        /// Capacity in each dimension.
        dims: Dims,
    },
}

impl Kind {
    /// `self == other`, always inlined: with both kinds constant (a typed record's field
    /// and its Rust type's `KIND`) it folds to a constant, where the derived `eq` may
    /// stay a call.
    #[inline(always)]
    pub(crate) const fn same(&self, other: &Kind) -> bool {
        match (self, other) {
            (Kind::Scalar(a), Kind::Scalar(b)) => *a as u8 == *b as u8,
            (Kind::Str { chars: a }, Kind::Str { chars: b }) => *a == *b,
            (Kind::Array { dtype: a, dims: da }, Kind::Array { dtype: b, dims: db }) => {
                if *a as u8 != *b as u8 || da.len != db.len {
                    return false;
                }
                let mut k = 0;
                while k < MAX_DIMS {
                    if da.dims[k] != db.dims[k] {
                        return false;
                    }
                    k += 1;
                }
                true
            }
            _ => false,
        }
    }

    /// A string of up to `chars` code points; panics in const context if `chars` is 0 or
    /// too large.
    pub const fn str(chars: u32) -> Kind {
        assert!(
            chars > 0 && chars <= MAX_EXTENT / 4,
            "str capacity out of range"
        );
        Kind::Str { chars }
    }

    /// An array kind; panics in const context if the dimensions are invalid.
    pub const fn array(dtype: Dtype, dims: &[u32]) -> Kind {
        match Dims::new(dims) {
            Some(dims) => Kind::Array { dtype, dims },
            None => panic!("array dimensions must be 1..=4 values in 1..2^30"),
        }
    }

    /// Bytes the field's value occupies in a slot, or `None` on overflow / bad capacity.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub const fn data_size(&self) -> Option<u32> {
        match self {
            Kind::Scalar(d) => Some(d.size()),
            Kind::Str { chars } => {
                if *chars == 0 || *chars > MAX_EXTENT / 4 {
                    None
                } else {
                    Some(*chars * 4)
                }
            }
            Kind::Array { dtype, dims } => match dims.row_elems() {
                Some(r) => match r.checked_mul(dims.rows()) {
                    Some(n) => match n.checked_mul(dtype.size()) {
                        Some(b) if b <= MAX_EXTENT => Some(b),
                        _ => None,
                    },
                    None => None,
                },
                None => None,
            },
        }
    }

    /// Alignment of the field's value inside a slot.
    pub const fn align(&self) -> u32 {
        match self {
            Kind::Scalar(d) | Kind::Array { dtype: d, .. } => d.size(),
            Kind::Str { .. } => 1,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Scalar(d) => f.write_str(d.name()),
            Kind::Str { chars } => write!(f, "str[{chars}]"),
            Kind::Array { dtype, dims } => {
                write!(f, "{}[", dtype.name())?;
                for (i, d) in dims.as_slice().iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{d}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A field name: valid UTF-8, 1..=[`MAX_NAME_LEN`] bytes, no NUL. Stored inline so that
/// schemas and errors need no allocator.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    pub(crate) len: u8,
    pub(crate) bytes: [u8; MAX_NAME_LEN],
}

impl Name {
    /// The empty name (used in errors where there is no field).
    pub const EMPTY: Name = Name {
        len: 0,
        bytes: [0; MAX_NAME_LEN],
    };

    /// A name from a string; panics (at compile time in a `const`) if it is invalid.
    pub const fn new(name: &str) -> Name {
        match Name::try_new(name) {
            Some(n) => n,
            None => panic!("field names must be 1..=44 bytes without NUL"),
        }
    }

    /// A name from a string, or `None` if it is empty, too long or contains NUL.
    pub const fn try_new(name: &str) -> Option<Name> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > MAX_NAME_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_NAME_LEN];
        let mut i = 0;
        while i < b.len() {
            if b[i] == 0 {
                return None;
            }
            bytes[i] = b[i];
            i += 1;
        }
        Some(Name {
            len: b.len() as u8,
            bytes,
        })
    }

    /// A name for error messages: the string cut to at most [`MAX_NAME_LEN`] bytes at a
    /// character boundary (never fails).
    pub fn lossy(name: &str) -> Name {
        let mut end = name.len().min(MAX_NAME_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; MAX_NAME_LEN];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        Name {
            len: end as u8,
            bytes,
        }
    }

    /// Length in bytes (const-friendly).
    pub const fn len_const(&self) -> usize {
        self.len as usize
    }

    /// Byte `k` of the name (const-friendly).
    pub const fn byte(&self, k: usize) -> u8 {
        self.bytes[k]
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // Every constructor checks UTF-8 (try_new takes a &str, lossy cuts at a char
        // boundary, decode validates); fall back to "" rather than trusting that blindly.
        crate::utf8::to_str(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Name {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str())
    }
}

/// One declared field: a name and a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FieldDef {
    /// The field's name.
    pub name: Name,
    /// The field's type.
    pub kind: Kind,
}

impl FieldDef {
    /// A field declaration (const-friendly; panics at compile time on an invalid name).
    pub const fn new(name: &str, kind: Kind) -> FieldDef {
        FieldDef {
            name: Name::new(name),
            kind,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    /// `Kind::same` is `==` on every pair of a set that differs in each part of a kind.
    #[test]
    fn same_is_eq() {
        let mut kinds = [Kind::Scalar(Dtype::Bool); 40];
        let mut n = 0;
        for d in Dtype::ALL {
            kinds[n] = Kind::Scalar(d);
            n += 1;
        }
        for chars in [1, 2, 32] {
            kinds[n] = Kind::str(chars);
            n += 1;
        }
        let dims: [&[u32]; 7] = [
            &[3],
            &[4],
            &[3, 2],
            &[3, 3],
            &[3, 2, 1],
            &[3, 2, 1, 5],
            &[3, 2, 1, 6],
        ];
        for d in dims {
            for dtype in [Dtype::U8, Dtype::F32] {
                kinds[n] = Kind::Array {
                    dtype,
                    dims: Dims::new(d).unwrap(),
                };
                n += 1;
            }
        }
        for a in &kinds[..n] {
            for b in &kinds[..n] {
                assert_eq!(a.same(b), a == b, "{a:?} vs {b:?}");
            }
        }
        assert!(n > 25);
    }
}
