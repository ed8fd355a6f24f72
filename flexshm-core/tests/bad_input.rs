//! Every kind of bad input of issue 2 gives its typed error, naming what was wrong, and
//! leaves every byte of the region as it was.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Mode, Name, ReadOptions, Reader,
    Region, Value, Writer,
};

fn name(s: &str) -> Name {
    Name::new(s)
}

fn i16_bytes(v: &[i16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

/// Runs `bad` against a writer of a populated segment and checks the error and that no
/// byte changed, in both modes (FIFO also with a record already staged).
fn rejects(bad: &[(&str, Value<'_>)], expected: Error) {
    for (mode, stage_first) in [
        (Mode::Single, false),
        (Mode::Fifo { slots: 3 }, false),
        (Mode::Fifo { slots: 3 }, true),
    ] {
        let mem = Mem::for_schema(MIXED, mode);
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), MIXED, mode).unwrap();
        w.write_named(&[("f", Value::Float(1.0)), ("s", Value::Str("abc"))])
            .unwrap();
        w.finalize();
        if stage_first {
            w.write_named(&[("i", Value::Int(7))]).unwrap();
        }
        let before = mem.bytes();
        let err = w.write_named(bad).unwrap_err();
        assert_eq!(err, expected, "mode {mode:?}");
        assert_eq!(
            first_diff(&before, &mem.bytes()),
            None,
            "bytes changed: {err}"
        );
        // The message names the field (or value) at fault.
        let shown = err.to_string();
        match &expected {
            Error::UnknownField { name }
            | Error::WrongKind { field: name, .. }
            | Error::OutOfRange { field: name }
            | Error::ShapeMismatch { field: name }
            | Error::DuplicateField { field: name } => {
                assert!(shown.contains(name.as_str()), "{shown}")
            }
            _ => {}
        }
        // And the writer still works afterwards (single-slot: each write commits, and
        // `finalize` only reports the newest commit).
        w.write_named(&[("u8", Value::UInt(3))]).unwrap();
        assert_eq!(w.finalize(), 2);
    }
}

#[test]
fn unknown_field() {
    rejects(
        &[("f", Value::Float(2.0)), ("nope", Value::Int(1))],
        Error::UnknownField { name: name("nope") },
    );
    // A name longer than any field name is cut for the error, not rejected differently.
    let long = "x".repeat(80);
    rejects(
        &[(long.as_str(), Value::Int(1))],
        Error::UnknownField {
            name: name(&"x".repeat(44)),
        },
    );
}

#[test]
fn unknown_field_index() {
    let mem = Mem::for_schema(MIXED, Mode::Single);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), MIXED, Mode::Single).unwrap();
    let before = mem.bytes();
    let err = w
        .write_fields(&[(0, Value::Float(1.0)), (MIXED.len(), Value::Int(1))])
        .unwrap_err();
    assert!(matches!(err, Error::UnknownField { .. }), "{err:?}");
    assert_eq!(before, mem.bytes());
}

#[test]
fn wrong_kind() {
    let wk = |f: &str, k: Kind| Error::WrongKind {
        field: name(f),
        expected: k,
    };
    rejects(
        &[("f", Value::Str("hot"))],
        wk("f", Kind::Scalar(Dtype::F64)),
    );
    rejects(
        &[("i", Value::Float(1.5))],
        wk("i", Kind::Scalar(Dtype::I32)),
    );
    rejects(
        &[("flag", Value::Int(1))],
        wk("flag", Kind::Scalar(Dtype::Bool)),
    );
    rejects(&[("s", Value::Int(3))], wk("s", Kind::str(4)));
    rejects(
        &[("arr", Value::Float(0.0))],
        wk("arr", Kind::array(Dtype::I16, &[3, 2])),
    );
    let b = i16_bytes(&[1, 2]);
    rejects(
        &[
            ("u8", Value::UInt(1)),
            (
                "f",
                Value::Array(ArrayRef::new(Dtype::I16, &[1, 2], &b).unwrap()),
            ),
        ],
        wk("f", Kind::Scalar(Dtype::F64)),
    );
}

#[test]
fn out_of_range_integers() {
    let oor = |f: &str| Error::OutOfRange { field: name(f) };
    rejects(&[("i", Value::Int(1 << 31))], oor("i"));
    rejects(&[("i", Value::Int(-(1 << 31) - 1))], oor("i"));
    rejects(&[("i", Value::UInt(u32::MAX as u64))], oor("i"));
    rejects(&[("u8", Value::Int(-1))], oor("u8"));
    rejects(&[("u8", Value::UInt(256))], oor("u8"));
    rejects(
        &[("f", Value::Float(3.0)), ("i64", Value::UInt(u64::MAX))],
        oor("i64"),
    );
}

#[test]
fn in_range_edges_are_accepted() {
    let mem = Mem::for_schema(MIXED, Mode::Single);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), MIXED, Mode::Single).unwrap();
    w.write_named(&[
        ("i", Value::Int(i32::MIN as i64)),
        ("u8", Value::UInt(255)),
        ("i64", Value::UInt(i64::MAX as u64)),
    ])
    .unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), MIXED).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!(snap.get(1).unwrap(), FieldValue::Int(i32::MIN as i64));
    assert_eq!(snap.get(2).unwrap(), FieldValue::UInt(255));
    assert_eq!(snap.get(6).unwrap(), FieldValue::Int(i64::MAX));
}

#[test]
fn wrong_array_shape() {
    let sm = Error::ShapeMismatch { field: name("arr") };
    let four = i16_bytes(&[1, 2, 3, 4]);
    let six = i16_bytes(&[1, 2, 3, 4, 5, 6]);
    // Wrong trailing dimension.
    rejects(
        &[(
            "arr",
            Value::Array(ArrayRef::new(Dtype::I16, &[2, 3], &six).unwrap()),
        )],
        sm.clone(),
    );
    // Wrong number of dimensions.
    rejects(
        &[(
            "arr",
            Value::Array(ArrayRef::new(Dtype::I16, &[6], &six).unwrap()),
        )],
        sm.clone(),
    );
    // Wrong dtype.
    rejects(
        &[(
            "arr",
            Value::Array(ArrayRef::new(Dtype::U16, &[2, 2], &four).unwrap()),
        )],
        sm.clone(),
    );
    // Bytes that do not match the shape.
    rejects(
        &[(
            "arr",
            Value::Array(ArrayRef::new(Dtype::I16, &[3, 2], &four).unwrap()),
        )],
        sm,
    );
}

#[test]
fn duplicate_field() {
    rejects(
        &[("f", Value::Float(1.0)), ("f", Value::Float(2.0))],
        Error::DuplicateField { field: name("f") },
    );
}

/// A string or array that does not fit is not an error: it is cut and flagged truncated.
#[test]
fn too_long_values_are_truncated_and_flagged() {
    for mode in [Mode::Single, Mode::Fifo { slots: 2 }] {
        let mem = Mem::for_schema(MIXED, mode);
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), MIXED, mode).unwrap();
        let rows = i16_bytes(&[1, 2, 3, 4, 5, 6, 7, 8]);
        w.write_named(&[
            // 5 code points into str[4]; multi-byte characters keep whole code points.
            ("s", Value::Str("αβγδε")),
            (
                "arr",
                Value::Array(ArrayRef::new(Dtype::I16, &[4, 2], &rows).unwrap()),
            ),
        ])
        .unwrap();
        w.finalize();
        let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), MIXED).unwrap();
        let mut buf = vec![0u8; r.snapshot_len()];
        let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!(snap.get(4).unwrap(), FieldValue::Str("αβγδ"));
        let st = snap.status(4);
        assert!(st.written && st.truncated && !st.valid());
        match snap.get(5).unwrap() {
            FieldValue::Array { dtype, rows, bytes } => {
                assert_eq!((dtype, rows), (Dtype::I16, 3));
                assert_eq!(bytes, &i16_bytes(&[1, 2, 3, 4, 5, 6])[..]);
            }
            other => panic!("{other:?}"),
        }
        assert!(snap.status(5).truncated);
        // A value that fits clears the flag again.
        w.write_named(&[
            ("s", Value::Str("ab")),
            (
                "arr",
                Value::Array(ArrayRef::new(Dtype::I16, &[1, 2], &rows[..4]).unwrap()),
            ),
        ])
        .unwrap();
        w.finalize();
        let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!(snap.get(4).unwrap(), FieldValue::Str("ab"));
        assert!(snap.status(4).valid() && snap.status(5).valid());
        match snap.get(5).unwrap() {
            FieldValue::Array { rows, .. } => assert_eq!(rows, 1),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn schema_too_large_for_region() {
    let l = flexshm_core::Layout::new(MIXED).unwrap();
    let need = l.segment_size(3).unwrap();
    let mem = Mem::new(need - 4);
    for b in (0..mem.len()).step_by(4) {
        mem.set_u32(b, 0x5A5A_5A5A);
    }
    let before = mem.bytes();
    let err =
        Writer::<Dynamic<_>>::create(mem.region(), MIXED, Mode::Fifo { slots: 3 }).unwrap_err();
    assert_eq!(
        err,
        Error::RegionTooSmall {
            needed: need,
            available: need - 4
        }
    );
    assert_eq!(before, mem.bytes());
    // Enormous rings overflow the 32-bit sizes: TooLarge, nothing written.
    let err = Writer::<Dynamic<_>>::create(mem.region(), MIXED, Mode::Fifo { slots: 1 << 24 })
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge | Error::RegionTooSmall { .. }),
        "{err:?}"
    );
    assert_eq!(before, mem.bytes());
    // Zero slots is refused too.
    assert!(Writer::<Dynamic<_>>::create(mem.region(), MIXED, Mode::Fifo { slots: 0 }).is_err());
    assert_eq!(before, mem.bytes());
}

#[test]
fn invalid_schemas() {
    let mem = Mem::new(1 << 16);
    let before = mem.bytes();
    let many: Vec<FieldDef> = (0..65)
        .map(|i| FieldDef::new(&format!("f{i}"), Kind::Scalar(Dtype::U8)))
        .collect();
    let err =
        Writer::<Dynamic<_>>::create(mem.region(), many.as_slice(), Mode::Single).unwrap_err();
    assert_eq!(err, Error::TooManyFields { count: 65 });
    let dup = [
        FieldDef::new("a", Kind::Scalar(Dtype::U8)),
        FieldDef::new("a", Kind::Scalar(Dtype::U16)),
    ];
    let err = Writer::<Dynamic<_>>::create(mem.region(), &dup[..], Mode::Single).unwrap_err();
    assert!(
        matches!(err, Error::InvalidField { field, .. } if field == name("a")),
        "{err:?}"
    );
    let huge = [FieldDef::new(
        "img",
        Kind::array(Dtype::F64, &[1 << 20, 1 << 9]),
    )];
    let err = Writer::<Dynamic<_>>::create(mem.region(), &huge[..], Mode::Single).unwrap_err();
    assert!(
        matches!(err, Error::InvalidField { field, .. } if field == name("img")),
        "{err:?}"
    );
    assert_eq!(before, mem.bytes());
}

#[test]
fn region_too_small_or_misaligned() {
    let mem = Mem::new(4096);
    // Misaligned start: refused when the region is made.
    for skip in [1, 2, 4] {
        let err = mem.region_at(skip).unwrap_err();
        assert!(matches!(err, Error::Misaligned { .. }), "{err:?}");
    }
    let mut raw = [0u8; 64];
    let off = raw.as_ptr().align_offset(8) + 1;
    assert!(matches!(
        Region::new(&mut raw[off..]),
        Err(Error::Misaligned { .. })
    ));
    // A valid segment, then readers and an attaching writer over too short a region.
    {
        Writer::<Dynamic<_>>::create(mem.region(), MIXED, Mode::Single).unwrap();
    }
    let before = mem.bytes();
    let full = flexshm_core::Layout::new(MIXED)
        .unwrap()
        .segment_size(1)
        .unwrap();
    for len in [0, 4, 64, 128, 132, 200, full - 4] {
        let region = mem.prefix(len);
        let e1 = Reader::<Dynamic<_>>::open_with(region, MIXED).unwrap_err();
        let e2 = Writer::<Dynamic<_>>::attach(region, MIXED).unwrap_err();
        let e3 = flexshm_core::internal::read_schema(&region).unwrap_err();
        for e in [e1, e2, e3] {
            assert!(
                matches!(e, Error::RegionTooSmall { .. }),
                "len {len}: {e:?}"
            );
        }
        assert_eq!(before, mem.bytes());
    }
}

/// Header corruption: each gives its own typed error from every entry point, and no
/// entry point writes.
#[test]
fn corrupt_header() {
    let mem = Mem::for_schema(SENSOR, Mode::Fifo { slots: 2 });
    {
        let mut w =
            Writer::<Dynamic<_>>::create(mem.region(), SENSOR, Mode::Fifo { slots: 2 }).unwrap();
        w.write_fields(&[(0, Value::Float(1.0))]).unwrap();
        w.finalize();
    }
    let good = mem.bytes();
    type Check = fn(&Error) -> bool;
    let cases: Vec<(usize, u32, Check)> = vec![
        (0, 0, |e| matches!(e, Error::BadMagic { found: 0 })),
        (4, 2, |e| {
            matches!(
                e,
                Error::UnsupportedVersion {
                    found: 2,
                    supported: 1
                }
            )
        }),
        (8, 2, |e| {
            matches!(e, Error::CorruptHeader { what: "flags" })
        }),
        (12, 0, |e| {
            matches!(e, Error::CorruptHeader { what: "slot count" })
        }),
        (12, 3, |e| {
            matches!(e, Error::CorruptHeader { .. } | Error::ModeMismatch { .. })
        }),
        (16, 1, |e| matches!(e, Error::CorruptHeader { .. })),
        (24, 4, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "descriptor length"
                }
            )
        }),
        (28, 64, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "slots offset"
                }
            )
        }),
        (32, 8, |e| {
            matches!(e, Error::CorruptHeader { what: "slot size" })
        }),
        (36, 1 << 20, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "slot stride"
                }
            )
        }),
        (40, 1 << 30, |e| {
            matches!(e, Error::CorruptHeader { what: "total size" })
        }),
        (48, u32::MAX, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "head commit number"
                }
            )
        }),
        (128, 65, |e| matches!(e, Error::CorruptHeader { .. })),
        (128, 3, |e| {
            matches!(
                e,
                Error::CorruptHeader { .. } | Error::SchemaMismatch { .. }
            )
        }),
        // Field 0's entry: type code, name length, first name byte.
        (132, 99, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "schema field type code"
                }
            )
        }),
        (134, 0, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "schema field name length"
                }
            )
        }),
        (152, 0, |e| {
            matches!(
                e,
                Error::CorruptHeader {
                    what: "schema field name"
                }
            )
        }),
    ];
    for (off, v, ok) in cases {
        mem.set_bytes(&good);
        if off >= 132 {
            mem.set_u8(off, v as u8);
        } else {
            mem.set_u32(off, v);
        }
        let before = mem.bytes();
        let r = mem.region();
        let errs = [
            Reader::<Dynamic<_>>::open_with(r, SENSOR)
                .map(|_| ())
                .unwrap_err(),
            Writer::<Dynamic<_>>::attach(r, SENSOR)
                .map(|_| ())
                .unwrap_err(),
        ];
        for e in &errs {
            assert!(ok(e), "word {off} = {v}: unexpected {e:?}");
        }
        // Schema-less entry points fail too (some corruptions only show against a
        // known schema, e.g. a different but self-consistent field count).
        let e = Reader::<Dynamic>::open(r).map(|_| ()).unwrap_err();
        assert!(!e.to_string().is_empty());
        assert!(flexshm_core::internal::read_schema(&r).is_err());
        assert_eq!(first_diff(&before, &mem.bytes()), None, "word {off}");
    }
}

#[test]
fn schema_mismatch_names_the_difference() {
    let mem = Mem::for_schema(SENSOR, Mode::Single);
    Writer::<Dynamic<_>>::create(mem.region(), SENSOR, Mode::Single).unwrap();
    let before = mem.bytes();
    let mut other = SENSOR.to_vec();
    other[2] = FieldDef::new("time", Kind::Scalar(Dtype::F64));
    let err = Reader::<Dynamic<_>>::open_with(mem.region(), other.as_slice()).unwrap_err();
    assert_eq!(
        err,
        Error::SchemaMismatch {
            position: 2,
            expected: name("time"),
            found: name("timestamp"),
            what: "name"
        }
    );
    other[2] = FieldDef::new("timestamp", Kind::Scalar(Dtype::F32));
    let err = Writer::<Dynamic<_>>::attach(mem.region(), other.as_slice()).unwrap_err();
    assert!(matches!(
        err,
        Error::SchemaMismatch {
            position: 2,
            what: "type",
            ..
        }
    ));
    let err = Reader::<Dynamic<_>>::open_with(mem.region(), &SENSOR[..3]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SchemaMismatch {
                position: 3,
                what: "field count",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(before, mem.bytes());
}

#[test]
fn snapshot_buffer_too_small() {
    let mem = Mem::for_schema(SENSOR, Mode::Single);
    Writer::<Dynamic<_>>::create(mem.region(), SENSOR, Mode::Single).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; r.snapshot_len() - 1];
    let err = r.try_read(&mut buf, ReadOptions::default()).err().unwrap();
    assert_eq!(
        err,
        Error::BufferTooSmall {
            needed: r.snapshot_len()
        }
    );
}
