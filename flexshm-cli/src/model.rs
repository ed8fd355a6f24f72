//! The CLI's own picture of a segment: schema, records, values, writer and file
//! state. Nothing here depends on flexshm-std; `source` fills these types in.

use std::cmp::Ordering;
use std::fmt;

/// Element type of a scalar or array field (flexshm's own).
pub use flexshm_std::Dtype;

/// Bytes per element of `d`.
pub fn elem_size(d: Dtype) -> usize {
    d.size() as usize
}

/// Decodes one little-endian element of `d`; `b` holds exactly `elem_size(d)` bytes.
pub fn decode_elem(d: Dtype, b: &[u8]) -> Scalar {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    let u = u64::from_le_bytes(w);
    match d {
        Dtype::Bool => Scalar::Bool(u & 0xff != 0),
        Dtype::I8 => Scalar::Int(u as u8 as i8 as i64),
        Dtype::I16 => Scalar::Int(u as u16 as i16 as i64),
        Dtype::I32 => Scalar::Int(u as u32 as i32 as i64),
        Dtype::I64 => Scalar::Int(u as i64),
        Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => Scalar::UInt(u),
        Dtype::F32 => Scalar::F32(f32::from_bits(u as u32)),
        Dtype::F64 => Scalar::F64(f64::from_bits(u)),
    }
}

/// The type of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Scalar(Dtype),
    /// Text of up to `chars` Unicode code points.
    Str {
        chars: u32,
    },
    /// C-order array; the first dimension may be partly filled.
    Array {
        dtype: Dtype,
        dims: Vec<u32>,
    },
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldKind::Scalar(d) => f.write_str(d.name()),
            FieldKind::Str { chars } => write!(f, "str[{chars}]"),
            FieldKind::Array { dtype, dims } => {
                write!(f, "{}[{}]", dtype.name(), join(dims, ","))
            }
        }
    }
}

/// `items` joined by `sep`.
pub fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// One field of the schema, where it lives in a record and how many bytes it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    pub kind: FieldKind,
    /// Byte offset of the value inside a record.
    pub offset: usize,
    /// Bytes reserved for the value (its capacity).
    pub size: usize,
}

/// Single-slot or FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Single,
    Fifo { slots: u32 },
}

impl Mode {
    /// "single" or "fifo".
    pub fn name(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Fifo { .. } => "fifo",
        }
    }

    /// Record slots: 1 in single-slot mode.
    pub fn slots(self) -> u32 {
        match self {
            Mode::Single => 1,
            Mode::Fifo { slots } => slots,
        }
    }

    pub fn is_fifo(self) -> bool {
        matches!(self, Mode::Fifo { .. })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Single => f.write_str("single"),
            Mode::Fifo { slots } => write!(f, "fifo {slots}"),
        }
    }
}

/// Who holds the writer role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// No process claims it (never written, or its writer closed cleanly).
    None,
    /// The claiming process is running.
    Alive { pid: u32 },
    /// The claiming process is gone (crashed or killed without closing).
    Dead { pid: u32 },
}

impl WriterState {
    pub fn state(self) -> &'static str {
        match self {
            WriterState::None => "none",
            WriterState::Alive { .. } => "alive",
            WriterState::Dead { .. } => "dead",
        }
    }

    pub fn pid(self) -> Option<u32> {
        match self {
            WriterState::None => None,
            WriterState::Alive { pid } | WriterState::Dead { pid } => Some(pid),
        }
    }
}

impl fmt::Display for WriterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid() {
            Some(pid) => write!(f, "{pid} {}", self.state()),
            None => f.write_str("none"),
        }
    }
}

/// Owner, permissions and size of the file behind a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`0o7777` at most).
    pub perms: u32,
    pub size: u64,
}

/// A scalar value, or one element of an array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    F32(f32),
    F64(f64),
}

impl Scalar {
    /// The value as a float, for statistics.
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::UInt(u) => u as f64,
            Scalar::F32(x) => x as f64,
            Scalar::F64(x) => x,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Floats print in their own precision, as the shortest text that reads back to
        // the same f32 (or f64), always with a '.' or an exponent, in scientific
        // notation when very large or small (`23.0`, `3.4028235e38`, `NaN`).
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::UInt(u) => write!(f, "{u}"),
            Scalar::F32(x) => write!(f, "{x:?}"),
            Scalar::F64(x) => write!(f, "{x:?}"),
        }
    }
}

/// The stored part of an array field.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayValue {
    pub dtype: Dtype,
    /// Stored shape: rows used, then the fixed trailing dimensions.
    pub shape: Vec<usize>,
    /// Declared shape.
    pub capacity: Vec<usize>,
    /// Little-endian elements, C order.
    pub data: Vec<u8>,
}

impl ArrayValue {
    pub fn len(&self) -> usize {
        self.data.len() / elem_size(self.dtype)
    }

    pub fn elements(&self) -> impl Iterator<Item = Scalar> + '_ {
        self.data
            .chunks_exact(elem_size(self.dtype))
            .map(|c| decode_elem(self.dtype, c))
    }

    /// Minimum, maximum (in the element type) and mean; `None` for an empty array.
    /// NaN elements are left out of min / max and make the mean NaN.
    pub fn stats(&self) -> Option<Stats> {
        let mut it = self.elements();
        let first = it.next()?;
        let mut st = Stats {
            min: first,
            max: first,
            mean: 0.0,
        };
        let mut sum = first.as_f64();
        let mut n = 1usize;
        for x in it {
            sum += x.as_f64();
            n += 1;
            if replaces(x, st.min, Ordering::Less) {
                st.min = x;
            }
            if replaces(x, st.max, Ordering::Greater) {
                st.max = x;
            }
        }
        st.mean = sum / n as f64;
        Some(st)
    }
}

/// Whether `x` takes the place of `cur` as the minimum (`want` = Less) or maximum
/// (`want` = Greater), comparing within one element type. A NaN never takes a place and
/// a NaN held is always replaced.
fn replaces(x: Scalar, cur: Scalar, want: Ordering) -> bool {
    let ord = match (x, cur) {
        (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(&b),
        (Scalar::Int(a), Scalar::Int(b)) => a.cmp(&b),
        (Scalar::UInt(a), Scalar::UInt(b)) => a.cmp(&b),
        (Scalar::F32(a), Scalar::F32(b)) if !a.is_nan() => {
            return b.is_nan() || a.partial_cmp(&b) == Some(want)
        }
        (Scalar::F64(a), Scalar::F64(b)) if !a.is_nan() => {
            return b.is_nan() || a.partial_cmp(&b) == Some(want)
        }
        _ => return false,
    };
    ord == want
}

/// Summary statistics of an array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub min: Scalar,
    pub max: Scalar,
    pub mean: f64,
}

/// A decoded field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Str(String),
    Array(ArrayValue),
}

/// The status flags of a field in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    pub written: bool,
    pub truncated: bool,
    pub modified: bool,
}

impl Status {
    /// "valid", "truncated" or "unwritten".
    pub fn name(self) -> &'static str {
        if !self.written {
            "unwritten"
        } else if self.truncated {
            "truncated"
        } else {
            "valid"
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if self.modified {
            f.write_str(", modified")?;
        }
        Ok(())
    }
}

/// One field of a record: its status and its value (or why it could not be decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSample {
    pub status: Status,
    pub value: Result<Value, String>,
}

/// A record as read from a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Commit number (0: the empty record of a single-slot segment never written).
    pub commit: u32,
    /// FIFO: records this reader lost to the writer lapping it, since its previous read.
    pub lost: u32,
    /// One per schema field, in schema order.
    pub fields: Vec<FieldSample>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(dtype: Dtype, elems: &[&[u8]]) -> ArrayValue {
        ArrayValue {
            dtype,
            shape: vec![elems.len()],
            capacity: vec![elems.len()],
            data: elems.concat(),
        }
    }

    #[test]
    fn stats_keep_the_element_type() {
        let a = array(
            Dtype::I16,
            &[
                &3i16.to_le_bytes(),
                &(-7i16).to_le_bytes(),
                &10i16.to_le_bytes(),
            ],
        );
        let s = a.stats().unwrap();
        assert_eq!((s.min, s.max), (Scalar::Int(-7), Scalar::Int(10)));
        assert_eq!(s.mean, 2.0);
        let u = array(Dtype::U64, &[&u64::MAX.to_le_bytes(), &1u64.to_le_bytes()]);
        assert_eq!(u.stats().unwrap().max, Scalar::UInt(u64::MAX));
        assert_eq!(array(Dtype::U8, &[]).stats(), None);
    }

    #[test]
    fn nan_is_left_out_of_min_and_max() {
        let a = array(
            Dtype::F32,
            &[
                &f32::NAN.to_le_bytes(),
                &2.5f32.to_le_bytes(),
                &f32::NAN.to_le_bytes(),
                &(-1.0f32).to_le_bytes(),
            ],
        );
        let s = a.stats().unwrap();
        assert_eq!((s.min, s.max), (Scalar::F32(-1.0), Scalar::F32(2.5)));
        assert!(s.mean.is_nan());
    }

    #[test]
    fn kinds_print_like_the_rest_of_flexshm() {
        assert_eq!(FieldKind::Scalar(Dtype::F64).to_string(), "float64");
        assert_eq!(FieldKind::Str { chars: 32 }.to_string(), "str[32]");
        let a = FieldKind::Array {
            dtype: Dtype::U8,
            dims: vec![480, 640, 3],
        };
        assert_eq!(a.to_string(), "uint8[480,640,3]");
        assert_eq!(Mode::Fifo { slots: 8 }.to_string(), "fifo 8");
    }

    #[test]
    fn floats_print_as_floats() {
        assert_eq!(Scalar::F64(23.0).to_string(), "23.0");
        assert_eq!(Scalar::F32(f32::MAX).to_string(), "3.4028235e38");
        assert_eq!(Scalar::F32(0.1).to_string(), "0.1");
        assert_eq!(Scalar::F64(1700000000.125).to_string(), "1700000000.125");
    }

    #[test]
    fn status_names() {
        let mut s = Status::default();
        assert_eq!(s.to_string(), "unwritten");
        s.written = true;
        s.modified = true;
        assert_eq!(s.to_string(), "valid, modified");
        s.truncated = true;
        s.modified = false;
        assert_eq!(s.to_string(), "truncated");
    }
}
