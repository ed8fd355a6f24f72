//! The closed set of Rust types a [`record!`](crate::record) field can have, and how each
//! maps to a field kind: `bool`, the integers and floats (scalars), `str[N]`
//! (`heapless::String<{4 * N}>`), and Rust arrays of primitives up to four levels deep.
//!
//! The traits are sealed: the set is exactly what the protocol can store.

use crate::schema::{Dims, Dtype, Kind, MAX_DIMS};
use crate::value::{ArrayRef, FieldValue, Value};

mod sealed {
    pub trait Sealed {}
}

macro_rules! sealed {
    ($($t:ty),*) => {$( impl sealed::Sealed for $t {} )*};
}
sealed!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);
impl<const B: usize> sealed::Sealed for heapless::String<B> {}
impl<A: ArrayPart, const N: usize> sealed::Sealed for [A; N] {}

/// A Rust type that can be one field of a record.
pub trait FieldType: sealed::Sealed {
    /// The field's schema kind.
    const KIND: Kind;
    /// The value for writing.
    fn to_value(&self) -> Value<'_>;
    /// Sets `self` from a decoded value.
    fn set_from(&mut self, v: FieldValue<'_>) -> Result<(), &'static str>;
    /// For a scalar type of the field's own dtype: the bits [`to_value`](Self::to_value)
    /// would store, little-endian in the low bytes. `None` (strings, arrays) means the
    /// value goes through the checked path.
    #[inline(always)]
    fn scalar_bits(&self) -> Option<u64> {
        None
    }
    /// For a scalar type: sets `self` from stored bits as [`set_from`](Self::set_from)
    /// would from the decoded value, and returns true; false for other types.
    #[inline(always)]
    fn set_scalar_bits(&mut self, _bits: u64) -> bool {
        false
    }
}

macro_rules! scalar_field {
    ($($t:ty => $d:ident, $v:ident, $fv:ident, $bits:ident, $from:ident);* $(;)?) => {$(
        impl FieldType for $t {
            const KIND: Kind = Kind::Scalar(Dtype::$d);
            fn to_value(&self) -> Value<'_> {
                Value::$v((*self).into())
            }
            #[inline(always)]
            fn scalar_bits(&self) -> Option<u64> {
                Some($bits!(*self))
            }
            #[inline(always)]
            fn set_scalar_bits(&mut self, bits: u64) -> bool {
                *self = $from!(bits, $t);
                true
            }
            #[allow(clippy::unnecessary_cast)]
            fn set_from(&mut self, v: FieldValue<'_>) -> Result<(), &'static str> {
                match v {
                    FieldValue::$fv(x) => {
                        *self = x as $t;
                        Ok(())
                    }
                    _ => Err("stored value has another type"),
                }
            }
        }
    )*};
}

// Stored bits of an integer: its two's complement, cut to its size by the store.
macro_rules! int_bits {
    ($x:expr) => {
        $x as u64
    };
}
// An integer from its stored bits (the low bytes of `bits`).
macro_rules! int_from {
    ($b:expr, $t:ty) => {
        $b as $t
    };
}
// f32 goes through f64 as in `Value::Float`, so the stored bits are the same.
macro_rules! f32_bits {
    ($x:expr) => {
        (($x as f64) as f32).to_bits() as u64
    };
}
macro_rules! f32_from {
    ($b:expr, $t:ty) => {
        (f32::from_bits($b as u32) as f64) as f32
    };
}
macro_rules! f64_bits {
    ($x:expr) => {
        $x.to_bits()
    };
}
macro_rules! f64_from {
    ($b:expr, $t:ty) => {
        f64::from_bits($b)
    };
}

scalar_field! {
    i8 => I8, Int, Int, int_bits, int_from; i16 => I16, Int, Int, int_bits, int_from;
    i32 => I32, Int, Int, int_bits, int_from; i64 => I64, Int, Int, int_bits, int_from;
    u8 => U8, UInt, UInt, int_bits, int_from; u16 => U16, UInt, UInt, int_bits, int_from;
    u32 => U32, UInt, UInt, int_bits, int_from; u64 => U64, UInt, UInt, int_bits, int_from;
    f32 => F32, Float, Float, f32_bits, f32_from; f64 => F64, Float, Float, f64_bits, f64_from;
}

impl FieldType for bool {
    const KIND: Kind = Kind::Scalar(Dtype::Bool);
    fn to_value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
    #[inline(always)]
    fn scalar_bits(&self) -> Option<u64> {
        Some(*self as u64)
    }
    #[inline(always)]
    fn set_scalar_bits(&mut self, bits: u64) -> bool {
        // Only 0 and 1 are bools (docs/PROTOCOL.md §8): anything else takes the checked
        // path, which reports the record corrupt.
        if bits > 1 {
            return false;
        }
        *self = bits != 0;
        true
    }
    fn set_from(&mut self, v: FieldValue<'_>) -> Result<(), &'static str> {
        match v {
            FieldValue::Bool(b) => {
                *self = b;
                Ok(())
            }
            _ => Err("stored value has another type"),
        }
    }
}

/// `str[N]` is a `heapless::String<{4 * N}>`: room for N code points of any script.
impl<const B: usize> FieldType for heapless::String<B> {
    const KIND: Kind = {
        assert!(
            B > 0 && B.is_multiple_of(4),
            "string fields are heapless::String<B> with B = 4 * code points"
        );
        Kind::str((B / 4) as u32)
    };
    fn to_value(&self) -> Value<'_> {
        Value::Str(self.as_str())
    }
    fn set_from(&mut self, v: FieldValue<'_>) -> Result<(), &'static str> {
        match v {
            FieldValue::Str(s) => {
                self.clear();
                self.push_str(s)
                    .map_err(|_| "string longer than its capacity")
            }
            _ => Err("stored value has another type"),
        }
    }
}

/// A primitive array element.
pub trait Element: sealed::Sealed + Copy + 'static {
    /// The element's dtype.
    const DTYPE: Dtype;
    /// Decodes one element from its little-endian bytes.
    fn from_le(b: &[u8]) -> Self;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
            #[inline(always)]
            fn from_le(b: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..core::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32,
    u64 => U64, f32 => F32, f64 => F64);

impl Element for bool {
    const DTYPE: Dtype = Dtype::Bool;
    fn from_le(b: &[u8]) -> Self {
        b[0] != 0
    }
}

/// A (possibly nested) Rust array of [`Element`]s, or a single element.
///
/// # Safety
///
/// `Self` must consist of exactly `ELEMS` values of `Leaf`, contiguous, without padding
/// (true of primitives and of nested arrays of them).
pub unsafe trait ArrayPart: sealed::Sealed {
    /// The element type.
    type Leaf: Element;
    /// Number of dimensions.
    const NDIM: usize;
    /// The dimensions (first `NDIM` used).
    const DIMS: [u32; MAX_DIMS];
    /// Number of elements.
    const ELEMS: usize;
}

macro_rules! leaf_part {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive is one element of itself.
        unsafe impl ArrayPart for $t {
            type Leaf = $t;
            const NDIM: usize = 0;
            const DIMS: [u32; MAX_DIMS] = [0; MAX_DIMS];
            const ELEMS: usize = 1;
        }
    )*};
}
leaf_part!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

const fn prepend(n: usize, dims: [u32; MAX_DIMS], ndim: usize) -> [u32; MAX_DIMS] {
    assert!(ndim < MAX_DIMS, "arrays have at most 4 dimensions");
    assert!(
        n > 0 && n <= crate::schema::MAX_EXTENT as usize,
        "array dimension out of range"
    );
    let mut out = [0u32; MAX_DIMS];
    out[0] = n as u32;
    let mut i = 0;
    while i < ndim {
        out[i + 1] = dims[i];
        i += 1;
    }
    out
}

// SAFETY: `[A; N]` is N contiguous `A`s without padding, each `A::ELEMS` leaves (by A's
// own contract), so N * A::ELEMS leaves in total.
unsafe impl<A: ArrayPart, const N: usize> ArrayPart for [A; N] {
    type Leaf = A::Leaf;
    const NDIM: usize = A::NDIM + 1;
    const DIMS: [u32; MAX_DIMS] = prepend(N, A::DIMS, A::NDIM);
    const ELEMS: usize = N * A::ELEMS;
}

fn flat<A: ArrayPart>(a: &A) -> &[A::Leaf] {
    // SAFETY: by ArrayPart's contract `A` is exactly ELEMS contiguous leaves.
    unsafe { core::slice::from_raw_parts(a as *const A as *const A::Leaf, A::ELEMS) }
}

fn flat_mut<A: ArrayPart>(a: &mut A) -> &mut [A::Leaf] {
    // SAFETY: as in `flat`, and the exclusive borrow covers all of `a`.
    unsafe { core::slice::from_raw_parts_mut(a as *mut A as *mut A::Leaf, A::ELEMS) }
}

/// Arrays `[T; N]`, `[[T; M]; N]`, ... of primitives: `dtype[N, M, ...]` fields.
impl<A: ArrayPart, const N: usize> FieldType for [A; N] {
    const KIND: Kind = match Dims::from_array(<[A; N]>::NDIM, <[A; N]>::DIMS) {
        Some(dims) => Kind::Array {
            dtype: A::Leaf::DTYPE,
            dims,
        },
        None => panic!("invalid array dimensions"),
    };
    fn to_value(&self) -> Value<'_> {
        let leaves = flat(self);
        // SAFETY: the leaves are primitives (no padding, every byte initialised); viewing
        // them as bytes is always valid.
        let bytes = unsafe {
            core::slice::from_raw_parts(
                leaves.as_ptr() as *const u8,
                core::mem::size_of_val(leaves),
            )
        };
        let mut shape = [0usize; MAX_DIMS];
        for (s, d) in shape.iter_mut().zip(<[A; N]>::DIMS) {
            *s = d as usize;
        }
        Value::Array(ArrayRef {
            dtype: A::Leaf::DTYPE,
            ndim: <[A; N]>::NDIM,
            shape,
            bytes,
        })
    }
    fn set_from(&mut self, v: FieldValue<'_>) -> Result<(), &'static str> {
        match v {
            FieldValue::Array { dtype, bytes, .. } if dtype == A::Leaf::DTYPE => {
                // The element size as a constant, so that the loop below compiles to a
                // copy rather than a loop over elements of a run-time size.
                let size = core::mem::size_of::<A::Leaf>();
                debug_assert_eq!(size, dtype.size() as usize);
                let leaves = flat_mut(self);
                if bytes.len() > core::mem::size_of_val(leaves) {
                    return Err("array longer than its capacity");
                }
                let stored = bytes.len() / size;
                for (e, b) in leaves.iter_mut().zip(bytes.chunks_exact(size)) {
                    *e = A::Leaf::from_le(b);
                }
                // Rows that were not stored read as zero.
                for e in &mut leaves[stored..] {
                    *e = A::Leaf::from_le(&[0u8; 8]);
                }
                Ok(())
            }
            _ => Err("stored value has another type"),
        }
    }
}
