//! # flexshm-vectors
//!
//! Golden byte vectors for the flexshm protocol: a few reference schemas, each with a
//! fixed sequence of writes. Running a case on any target must leave exactly the bytes
//! stored in `tests/vectors/<name>.bin` at the repository root; the host test
//! (`tests/golden.rs`) checks that, and firmware can run the same [`CASES`] on a
//! microcontroller and compare against the same files with `include_bytes!`. Beside
//! each `.bin`, `<name>.json` states the write sequence and what a reader decodes from
//! the bytes, for implementations in other languages (format: `tests/vectors/README.md`).
//!
//! `#![no_std]`, no allocator, no randomness, no clock: every value written is a
//! constant in this file.
//!
//! ## Running a case
//!
//! 1. Provide `region_len` bytes, aligned to [`flexshm_core::REGION_ALIGN`] (8; 64 is
//!    better for the slots), **every byte zero**. `Writer::create` zeroes only the
//!    segment it builds, and the vector covers exactly `region_len` bytes, which is the
//!    segment size, so the whole region must start zeroed for the bytes to compare.
//! 2. Make a [`Region`] over them and call `(case.run)(region)`. The case creates the
//!    segment (`fields`, `mode`) and performs its writes; it panics if the core rejects
//!    any of them, which would itself be a conformance failure.
//! 3. Compare the `region_len` bytes with `tests/vectors/<name>.bin`.
//!
//! ```
//! use flexshm_core::{AlignedBuf, Region};
//! let mut mem = AlignedBuf::<4096>::new();
//! for case in flexshm_vectors::CASES {
//!     mem.0.fill(0);
//!     let bytes = &mut mem.0[..case.region_len];
//!     (case.run)(Region::new(bytes).unwrap());
//!     // compare &mem.0[..case.region_len] with include_bytes!(".../<name>.bin")
//! }
//! ```
//!
//! ## Stability
//!
//! [`Case`] and [`CASES`] are a stable interface: fields are not renamed, cases are not
//! removed or reordered, and a case's write sequence never changes once its `.bin` is
//! committed. A deliberate protocol change regenerates the `.bin` files (`make vectors`)
//! and says so in its commit; new cases are appended at the end.
#![no_std]

use flexshm_core::internal::{descriptor_len, slot_size_of, DESCRIPTOR_OFFSET};
use flexshm_core::{ArrayRef, Mode, Region, Value, Writer};
use flexshm_core::{Dtype, Dynamic, FieldDef, Kind};

/// One golden vector: a schema, a mode, and a fixed sequence of writes.
pub struct Case {
    /// File stem of the expected bytes: `tests/vectors/<name>.bin`.
    pub name: &'static str,
    /// The schema.
    pub fields: &'static [FieldDef],
    /// Single-slot or FIFO (with its slot count).
    pub mode: Mode,
    /// Bytes the case covers: exactly the segment size of `fields` in `mode`. The region
    /// passed to `run` must be this long (or longer) and entirely zero.
    pub region_len: usize,
    /// Creates the segment in a zeroed region and performs the case's writes.
    pub run: fn(Region<'_>),
}

/// Every case, in a fixed order (new cases are appended).
pub const CASES: &[Case] = &[
    Case {
        name: "sensor_single",
        fields: SENSOR,
        mode: Mode::Single,
        region_len: segment_len(SENSOR, 1),
        run: sensor_single,
    },
    Case {
        name: "all_types",
        fields: ALL_TYPES,
        mode: Mode::Single,
        region_len: segment_len(ALL_TYPES, 1),
        run: all_types,
    },
    Case {
        name: "sensor_fifo",
        fields: SENSOR,
        mode: Mode::Fifo { slots: 4 },
        region_len: segment_len(SENSOR, 4),
        run: sensor_fifo,
    },
];

/// The seed's `SensorData` record.
pub const SENSOR: &[FieldDef] = &[
    FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
    FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
    FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
    FieldDef::new("status_msg", Kind::str(32)),
];

/// Every scalar dtype, a string, and arrays of several dtypes with 1 to 3 dimensions.
pub const ALL_TYPES: &[FieldDef] = &[
    FieldDef::new("flag", Kind::Scalar(Dtype::Bool)),
    FieldDef::new("i8", Kind::Scalar(Dtype::I8)),
    FieldDef::new("i16", Kind::Scalar(Dtype::I16)),
    FieldDef::new("i32", Kind::Scalar(Dtype::I32)),
    FieldDef::new("i64", Kind::Scalar(Dtype::I64)),
    FieldDef::new("u8", Kind::Scalar(Dtype::U8)),
    FieldDef::new("u16", Kind::Scalar(Dtype::U16)),
    FieldDef::new("u32", Kind::Scalar(Dtype::U32)),
    FieldDef::new("u64", Kind::Scalar(Dtype::U64)),
    FieldDef::new("f32", Kind::Scalar(Dtype::F32)),
    FieldDef::new("f64", Kind::Scalar(Dtype::F64)),
    FieldDef::new("name", Kind::str(5)),
    FieldDef::new("vec_f32", Kind::array(Dtype::F32, &[4])),
    FieldDef::new("mat_i16", Kind::array(Dtype::I16, &[3, 2])),
    FieldDef::new("cube_u8", Kind::array(Dtype::U8, &[2, 2, 3])),
    FieldDef::new("pair_u64", Kind::array(Dtype::U64, &[2])),
    FieldDef::new("bits", Kind::array(Dtype::Bool, &[5])),
    FieldDef::new("grid_i8", Kind::array(Dtype::I8, &[2, 2])),
];

/// Bytes of a segment of `fields` with `slots` record slots, as docs/PROTOCOL.md
/// computes it: header and descriptor padded to 64, then `slots + 1` buffers of the
/// slot size padded to 64. (The host test checks it against `Layout::segment_size`.)
pub const fn segment_len(fields: &[FieldDef], slots: u32) -> usize {
    const fn up64(x: usize) -> usize {
        (x + 63) & !63
    }
    let slots_offset = up64(DESCRIPTOR_OFFSET + descriptor_len(fields.len()));
    let stride = up64(slot_size_of(fields));
    slots_offset + (slots as usize + 1) * stride
}

/// Native-order bytes of up to 8 elements, for array values (no allocator).
struct Elems {
    bytes: [u8; 64],
    len: usize,
}

impl Elems {
    fn new() -> Elems {
        Elems {
            bytes: [0; 64],
            len: 0,
        }
    }
    fn push(mut self, b: &[u8]) -> Elems {
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        self
    }
    fn array<'a>(&'a self, dtype: Dtype, shape: &[usize]) -> Value<'a> {
        match ArrayRef::new(dtype, shape, &self.bytes[..self.len]) {
            Some(a) => Value::Array(a),
            None => panic!("bad vector array shape"),
        }
    }
}

fn must(r: Result<(), flexshm_core::Error>) {
    if let Err(e) = r {
        panic!("golden vector write rejected: {e}");
    }
}

fn sensor_single(region: Region<'_>) {
    let mut w = match Writer::<Dynamic<_>>::create(region, SENSOR, Mode::Single) {
        Ok(w) => w,
        Err(e) => panic!("sensor_single: {e}"),
    };
    // 1: every field.
    must(w.write_named(&[
        ("temperature", Value::Float(23.5)),
        ("pressure", Value::Float(1013.25)),
        ("timestamp", Value::Float(1_700_000_000.125)),
        ("status_msg", Value::Str("OK")),
    ]));
    // 2: a partial write; the other fields carry over.
    must(w.write_named(&[("temperature", Value::Float(-40.0625))]));
    // 3: a string longer than 32 code points: the first 32 are kept, flagged truncated.
    must(w.write_named(&[(
        "status_msg",
        Value::Str("sensor 7: pressure above limit, venting"),
    )]));
    // 4: multi-script text (26 code points, 46 bytes) and an integer into a float field.
    must(w.write_named(&[
        ("status_msg", Value::Str("Grüße 世界 Привет مرحبا 🌍 ok")),
        ("timestamp", Value::Int(1_700_000_001)),
    ]));
    // 5: pressure only; buffers now hold commits 4 and 5.
    must(w.write_named(&[("pressure", Value::Float(998.5))]));
}

fn all_types(region: Region<'_>) {
    let mut w = match Writer::<Dynamic<_>>::create(region, ALL_TYPES, Mode::Single) {
        Ok(w) => w,
        Err(e) => panic!("all_types: {e}"),
    };
    let v = Elems::new()
        .push(&1.5f32.to_ne_bytes())
        .push(&(-0.25f32).to_ne_bytes())
        .push(&f32::MAX.to_ne_bytes())
        .push(&f32::MIN_POSITIVE.to_ne_bytes());
    let m = Elems::new()
        .push(&1i16.to_ne_bytes())
        .push(&(-2i16).to_ne_bytes())
        .push(&300i16.to_ne_bytes())
        .push(&(-32768i16).to_ne_bytes())
        .push(&32767i16.to_ne_bytes())
        .push(&7i16.to_ne_bytes());
    let c = Elems::new().push(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let p = Elems::new()
        .push(&u64::MAX.to_ne_bytes())
        .push(&0x0123_4567_89AB_CDEFu64.to_ne_bytes());
    let bits = Elems::new().push(&[1, 0, 1, 1, 0]);
    let g = Elems::new().push(&[(-1i8) as u8, 2, (-3i8) as u8, 4]);
    // 1: every field, scalars at their range edges, arrays full.
    must(w.write_fields(&[
        (0, Value::Bool(true)),
        (1, Value::Int(-128)),
        (2, Value::Int(-32768)),
        (3, Value::Int(i32::MIN as i64)),
        (4, Value::Int(i64::MIN)),
        (5, Value::UInt(255)),
        (6, Value::UInt(65535)),
        (7, Value::UInt(u32::MAX as u64)),
        (8, Value::UInt(u64::MAX)),
        (9, Value::Float(-1.5)),
        (10, Value::Float(core::f64::consts::PI)),
        (11, Value::Str("héllo")),
        (12, v.array(Dtype::F32, &[4])),
        (13, m.array(Dtype::I16, &[3, 2])),
        (14, c.array(Dtype::U8, &[2, 2, 3])),
        (15, p.array(Dtype::U64, &[2])),
        (16, bits.array(Dtype::Bool, &[5])),
        (17, g.array(Dtype::I8, &[2, 2])),
    ]));
    // 2: partially filled first dimensions, a truncated array, a shorter string, and
    // scalars at the other range edges.
    let m2 = Elems::new()
        .push(&10i16.to_ne_bytes())
        .push(&11i16.to_ne_bytes());
    let c2 = Elems::new().push(&[0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5]);
    let p3 = Elems::new()
        .push(&1u64.to_ne_bytes())
        .push(&2u64.to_ne_bytes())
        .push(&3u64.to_ne_bytes());
    must(w.write_fields(&[
        (13, m2.array(Dtype::I16, &[1, 2])),
        (14, c2.array(Dtype::U8, &[1, 2, 3])),
        (15, p3.array(Dtype::U64, &[3])),
        (11, Value::Str("ab")),
        (1, Value::Int(127)),
        (3, Value::Int(i32::MAX as i64)),
        (4, Value::Int(i64::MAX)),
        (0, Value::Bool(false)),
    ]));
    // 3: a truncated string (6 code points into str[5]), an empty array, and an integer
    // into f32.
    let none = Elems::new();
    must(w.write_fields(&[
        (11, Value::Str("ñandú!")),
        (16, none.array(Dtype::Bool, &[0])),
        (9, Value::Int(-7)),
    ]));
}

fn sensor_fifo(region: Region<'_>) {
    let mut w = match Writer::<Dynamic<_>>::create(region, SENSOR, Mode::Fifo { slots: 4 }) {
        Ok(w) => w,
        Err(e) => panic!("sensor_fifo: {e}"),
    };
    // Seven commits into 5 buffers: the ring wraps (commits 5, 6, 7 reuse buffers 0, 1, 2).
    for k in 0..7u32 {
        match k {
            // A commit that writes nothing: every field carried over, none modified.
            3 => {}
            // Status only.
            5 => must(w.write_named(&[("status_msg", Value::Str("vent ✓"))])),
            _ => {
                must(w.write_named(&[
                    ("temperature", Value::Float(20.0 + k as f64 * 0.5)),
                    ("timestamp", Value::Float(1_700_000_000.0 + k as f64)),
                ]));
                if k == 0 {
                    must(w.write_named(&[
                        ("pressure", Value::Float(1013.25)),
                        ("status_msg", Value::Str("start")),
                    ]));
                }
            }
        }
        w.finalize();
    }
    // An eighth record is staged and left unfinalized: its buffer is mid-write (odd seq)
    // in the vector, exactly as a writer that stopped here leaves it.
    must(w.write_named(&[("pressure", Value::Float(0.5))]));
}
