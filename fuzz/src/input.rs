//! Reading a fuzz input as a stream of small decisions, and generating field values from
//! it. An exhausted input reads as zeros, so every prefix of an input is an input.

use flexshm_core::{ArrayRef, Dtype, FieldDef, Kind, Value};

/// A cursor over the fuzzer's bytes.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    /// True once every byte was taken.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte (0 when exhausted).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next little-endian u64.
    pub fn u64(&mut self) -> u64 {
        self.u32() as u64 | (self.u32() as u64) << 32
    }

    /// Up to `n` next bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    /// Everything not taken yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        self.pos = self.data.len();
        &self.data[start..]
    }

    /// A u32 that is often one of the values validation code compares against: edges of
    /// the 32-bit range and of the protocol's limits, or a value near `near` (a length or
    /// an offset the caller knows), else 32 raw bits.
    pub fn word(&mut self, near: u32) -> u32 {
        const EDGES: [u32; 16] = [
            0,
            1,
            2,
            3,
            4,
            63,
            64,
            0x3FFF_FFFF,
            0x4000_0000,
            0x7FFF_FFFF,
            0x8000_0000,
            0xC000_0000,
            1 << 24,
            (1 << 24) + 1,
            u32::MAX - 1,
            u32::MAX,
        ];
        let sel = self.u8();
        match sel & 3 {
            0 => EDGES[(sel >> 2) as usize % EDGES.len()],
            1 => near.wrapping_add((sel >> 2) as u32).wrapping_sub(32),
            2 => (sel >> 2) as u32,
            _ => self.u32(),
        }
    }
}

/// A field value that owns its text or elements.
#[derive(Debug, Clone)]
pub enum Owned {
    /// `Value::Bool`.
    Bool(bool),
    /// `Value::Int`.
    Int(i64),
    /// `Value::UInt`.
    UInt(u64),
    /// `Value::Float`.
    Float(f64),
    /// `Value::Str`.
    Str(String),
    /// `Value::Array`.
    Array {
        /// Element type.
        dtype: Dtype,
        /// Shape, first dimension = rows.
        shape: Vec<usize>,
        /// Elements, native byte order.
        bytes: Vec<u8>,
    },
}

impl Owned {
    /// The borrowed value a writer takes.
    pub fn value(&self) -> Value<'_> {
        match self {
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Int(i) => Value::Int(*i),
            Owned::UInt(u) => Value::UInt(*u),
            Owned::Float(x) => Value::Float(*x),
            Owned::Str(s) => Value::Str(s),
            Owned::Array {
                dtype,
                shape,
                bytes,
            } => Value::Array(ArrayRef::new(*dtype, shape, bytes).expect("1..=4 dimensions")),
        }
    }
}

/// A value for field `f`, chosen by the input, of the kind the field takes: integers in
/// the dtype's range, any float bits (f32 fields get f32 values), strings of any length
/// (longer ones are cut and flagged truncated), arrays of 0 to `d0 + 1` rows (one more
/// than fits is cut and flagged). Bool array elements are the input's bytes as they are:
/// the writer stores any non-zero byte as 1.
pub fn value_for(inp: &mut Input<'_>, f: &FieldDef) -> Owned {
    match f.kind {
        Kind::Scalar(d) => scalar_for(inp, d),
        Kind::Str { chars } => {
            let n = inp.u8() as usize % (4 * chars as usize + 6);
            Owned::Str(String::from_utf8_lossy(inp.bytes(n)).into_owned())
        }
        Kind::Array { dtype, dims } => {
            let d = dims.as_slice();
            let rows = inp.u8() as usize % (d[0] as usize + 2);
            let row_bytes: usize =
                d[1..].iter().map(|&x| x as usize).product::<usize>() * dtype.size() as usize;
            let mut bytes = inp.bytes(rows * row_bytes).to_vec();
            bytes.resize(rows * row_bytes, 0);
            let mut shape = vec![rows];
            shape.extend(d[1..].iter().map(|&x| x as usize));
            Owned::Array {
                dtype,
                shape,
                bytes,
            }
        }
    }
}

fn scalar_for(inp: &mut Input<'_>, d: Dtype) -> Owned {
    let bits = inp.u64();
    match d {
        Dtype::Bool => Owned::Bool(bits & 1 != 0),
        Dtype::I8 => Owned::Int(bits as i8 as i64),
        Dtype::I16 => Owned::Int(bits as i16 as i64),
        Dtype::I32 => Owned::Int(bits as i32 as i64),
        Dtype::I64 => Owned::Int(bits as i64),
        Dtype::U8 => Owned::UInt(bits as u8 as u64),
        Dtype::U16 => Owned::UInt(bits as u16 as u64),
        Dtype::U32 => Owned::UInt(bits as u32 as u64),
        Dtype::U64 => Owned::UInt(bits),
        Dtype::F32 => Owned::Float(f32::from_bits(bits as u32) as f64),
        Dtype::F64 => Owned::Float(f64::from_bits(bits)),
    }
}
