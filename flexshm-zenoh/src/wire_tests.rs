//! Tests of the wire format: round trips of every type and status, every rejection, and
//! random and mutated messages (decoding never panics; what decodes re-encodes to the
//! same record).

use super::*;
use flexshm_core::FieldStatus;

fn st(written: bool, truncated: bool, modified: bool) -> FieldStatus {
    FieldStatus {
        written,
        truncated,
        modified,
    }
}

fn w(value: FieldValue<'_>) -> WireField<'_> {
    WireField {
        status: st(true, false, true),
        value: Some(value),
    }
}

fn every_kind_schema() -> Vec<FieldDef> {
    let mut f: Vec<FieldDef> = Dtype::ALL
        .iter()
        .map(|d| FieldDef::new(&format!("s_{}", d.name()), Kind::Scalar(*d)))
        .collect();
    f.push(FieldDef::new("msg", Kind::str(8)));
    f.push(FieldDef::new("img", Kind::array(Dtype::U8, &[4, 3, 2])));
    f.push(FieldDef::new("v", Kind::array(Dtype::F32, &[5])));
    f.push(FieldDef::new("m", Kind::array(Dtype::I16, &[2, 2, 2, 2])));
    f.push(FieldDef::new("flags", Kind::array(Dtype::Bool, &[3])));
    f
}

fn hdr(schema: &SchemaMsg) -> RecordHeader {
    RecordHeader {
        session: schema.session,
        seq: 7,
        commit: 1 << 40,
        schema_hash: schema.hash,
    }
}

fn roundtrip(schema: &SchemaMsg, values: &[WireField<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(&hdr(schema), &schema.fields, values, &mut out).unwrap();
    assert_eq!(out.len(), record_len(&schema.fields, values));
    let mut back = Vec::new();
    let h = decode_record(&out, schema, &mut back).unwrap();
    assert_eq!(h, hdr(schema));
    assert_eq!(back.len(), values.len());
    for (a, b) in values.iter().zip(&back) {
        assert!(same_field(a, b), "{a:?} != {b:?}");
    }
    out
}

/// Equal, comparing floats by their bits (so NaN compares).
fn same_field(a: &WireField<'_>, b: &WireField<'_>) -> bool {
    a.status == b.status
        && match (a.value, b.value) {
            (Some(FieldValue::Float(x)), Some(FieldValue::Float(y))) => x.to_bits() == y.to_bits(),
            (x, y) => x == y,
        }
}

#[test]
fn schema_round_trip_every_kind_and_mode() {
    for mode in [
        Mode::Single,
        Mode::Fifo { slots: 1 },
        Mode::Fifo { slots: 1000 },
    ] {
        let s = SchemaMsg::new(42, 7, mode, every_kind_schema()).unwrap();
        let bytes = s.encode();
        assert_eq!(&bytes[..4], b"FXZB");
        assert_eq!(bytes[4], VERSION);
        let back = SchemaMsg::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.hash, schema_hash(&every_kind_schema()));
        assert_eq!(peek(&bytes).unwrap(), Peek::Schema { session: 42 });
    }
}

#[test]
fn schema_hash_depends_on_fields_only() {
    let a = SchemaMsg::new(1, 0, Mode::Single, every_kind_schema()).unwrap();
    let b = SchemaMsg::new(2, 9, Mode::Fifo { slots: 4 }, every_kind_schema()).unwrap();
    assert_eq!(a.hash, b.hash);
    let mut other = every_kind_schema();
    other[0].name = Name::new("renamed");
    assert_ne!(schema_hash(&other), a.hash);
    let mut other = every_kind_schema();
    other[11] = FieldDef::new("msg", Kind::str(9));
    assert_ne!(schema_hash(&other), a.hash);
}

#[test]
fn schema_rejects_invalid_schemas() {
    let dup = vec![
        FieldDef::new("x", Kind::Scalar(Dtype::U8)),
        FieldDef::new("x", Kind::Scalar(Dtype::U8)),
    ];
    assert!(matches!(
        SchemaMsg::new(1, 0, Mode::Single, dup.clone()),
        Err(WireError::Schema { .. })
    ));
    assert!(matches!(
        SchemaMsg::new(1, 0, Mode::Fifo { slots: 0 }, vec![]),
        Err(WireError::Invalid { .. })
    ));
    // A decoder given a duplicate-name schema (hash and all correct) rejects it too.
    let good = SchemaMsg::new(1, 0, Mode::Single, dup[..1].to_vec()).unwrap();
    let mut bytes = good.encode();
    let block_start = SCHEMA_HEADER_LEN - 2;
    let mut block = Vec::new();
    encode_fields_block(&dup, &mut block);
    bytes.truncate(block_start);
    bytes.extend_from_slice(&block);
    bytes[24..32].copy_from_slice(&fnv1a64(&block).to_le_bytes());
    assert!(matches!(
        SchemaMsg::decode(&bytes),
        Err(WireError::Schema { .. })
    ));
}

#[test]
fn schema_decode_rejections() {
    let s = SchemaMsg::new(1, 0, Mode::Fifo { slots: 3 }, every_kind_schema()).unwrap();
    let good = s.encode();
    let with = |at: usize, b: u8| {
        let mut m = good.clone();
        m[at] = b;
        m
    };
    assert_eq!(SchemaMsg::decode(&with(0, b'X')), Err(WireError::BadMagic));
    assert_eq!(
        SchemaMsg::decode(&with(4, 3)),
        Err(WireError::UnsupportedVersion { found: 3 })
    );
    assert_eq!(
        SchemaMsg::decode(&with(4, 0)),
        Err(WireError::UnsupportedVersion { found: 0 })
    );
    // A version-1 schema message has the same bytes.
    assert_eq!(SchemaMsg::decode(&with(4, 1)).unwrap(), s);
    assert_eq!(
        SchemaMsg::decode(&with(5, KIND_RECORD)),
        Err(WireError::UnexpectedKind { found: KIND_RECORD })
    );
    assert!(matches!(
        SchemaMsg::decode(&with(6, 1)),
        Err(WireError::Invalid { .. })
    ));
    assert!(matches!(
        SchemaMsg::decode(&with(32, 7)),
        Err(WireError::Invalid { .. })
    ));
    // Single-slot with 3 slots.
    assert!(matches!(
        SchemaMsg::decode(&with(32, MODE_SINGLE)),
        Err(WireError::Invalid { .. })
    ));
    // A changed field block no longer matches its hash.
    let last = good.len() - 1;
    assert!(matches!(
        SchemaMsg::decode(&with(last, good[last] ^ 1)),
        Err(WireError::SchemaHash { .. })
    ));
    let mut long = good.clone();
    long.push(0);
    assert!(SchemaMsg::decode(&long).is_err());
    for n in 0..good.len() {
        assert!(SchemaMsg::decode(&good[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn record_round_trip_scalar_extremes() {
    let schema = SchemaMsg::new(5, 0, Mode::Single, every_kind_schema()).unwrap();
    let n = schema.fields.len();
    let cases: Vec<Vec<FieldValue<'static>>> = vec![
        vec![
            FieldValue::Bool(true),
            FieldValue::Int(i8::MIN as i64),
            FieldValue::Int(i16::MIN as i64),
            FieldValue::Int(i32::MIN as i64),
            FieldValue::Int(i64::MIN),
            FieldValue::UInt(u8::MAX as u64),
            FieldValue::UInt(u16::MAX as u64),
            FieldValue::UInt(u32::MAX as u64),
            FieldValue::UInt(u64::MAX),
            FieldValue::Float(f32::MIN_POSITIVE as f64),
            FieldValue::Float(f64::MAX),
        ],
        vec![
            FieldValue::Bool(false),
            FieldValue::Int(i8::MAX as i64),
            FieldValue::Int(i16::MAX as i64),
            FieldValue::Int(i32::MAX as i64),
            FieldValue::Int(i64::MAX),
            FieldValue::UInt(0),
            FieldValue::UInt(0),
            FieldValue::UInt(0),
            FieldValue::UInt(0),
            FieldValue::Float(f32::NAN as f64),
            FieldValue::Float(-0.0),
        ],
    ];
    for scalars in cases {
        let mut values: Vec<WireField<'_>> = scalars.into_iter().map(w).collect();
        values.resize(n, WireField::UNWRITTEN);
        roundtrip(&schema, &values);
    }
}

#[test]
fn record_round_trip_strings_arrays_statuses() {
    let schema = SchemaMsg::new(5, 0, Mode::Fifo { slots: 8 }, every_kind_schema()).unwrap();
    let img: Vec<u8> = (0..24).collect();
    let v: Vec<u8> = [1.5f32, -2.0, 3.25]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let m: Vec<u8> = (0..16i16).flat_map(|x| (x - 8).to_le_bytes()).collect();
    let base: Vec<WireField<'_>> = vec![WireField::UNWRITTEN; 11];
    let cases: Vec<Vec<WireField<'_>>> = vec![
        // Everything unwritten.
        vec![WireField::UNWRITTEN; 5],
        // Multi-byte string, partial arrays, written but not modified.
        vec![
            WireField {
                status: st(true, false, false),
                value: Some(FieldValue::Str("héllo✓")),
            },
            w(FieldValue::Array {
                dtype: Dtype::U8,
                rows: 2,
                bytes: &img[..12],
            }),
            w(FieldValue::Array {
                dtype: Dtype::F32,
                rows: 3,
                bytes: &v,
            }),
            w(FieldValue::Array {
                dtype: Dtype::I16,
                rows: 2,
                bytes: &m,
            }),
            w(FieldValue::Array {
                dtype: Dtype::Bool,
                rows: 0,
                bytes: &[],
            }),
        ],
        // Truncated string and array fill their capacity; empty string.
        vec![
            WireField {
                status: st(true, true, true),
                value: Some(FieldValue::Str("ü2345678")),
            },
            WireField {
                status: st(true, true, false),
                value: Some(FieldValue::Array {
                    dtype: Dtype::U8,
                    rows: 4,
                    bytes: &img,
                }),
            },
            w(FieldValue::Array {
                dtype: Dtype::F32,
                rows: 0,
                bytes: &[],
            }),
            WireField::UNWRITTEN,
            w(FieldValue::Array {
                dtype: Dtype::Bool,
                rows: 3,
                bytes: &[1, 0, 1],
            }),
        ],
        vec![
            w(FieldValue::Str("")),
            WireField::UNWRITTEN,
            WireField::UNWRITTEN,
            WireField::UNWRITTEN,
            WireField::UNWRITTEN,
        ],
    ];
    for tail in cases {
        let mut values = base.clone();
        values.extend(tail);
        roundtrip(&schema, &values);
    }
}

#[test]
fn record_layout_is_as_documented() {
    let fields = vec![
        FieldDef::new("t", Kind::Scalar(Dtype::F64)),
        FieldDef::new("s", Kind::str(4)),
        FieldDef::new("a", Kind::array(Dtype::U16, &[3])),
        FieldDef::new("u", Kind::Scalar(Dtype::I8)),
    ];
    let schema = SchemaMsg::new(0x1122334455667788, 0, Mode::Single, fields).unwrap();
    let values = [
        w(FieldValue::Float(1.0)),
        WireField {
            status: st(true, false, false),
            value: Some(FieldValue::Str("ab")),
        },
        w(FieldValue::Array {
            dtype: Dtype::U16,
            rows: 1,
            bytes: &[0x34, 0x12],
        }),
        WireField::UNWRITTEN,
    ];
    let bytes = roundtrip(&schema, &values);
    let mut want = Vec::new();
    want.extend_from_slice(b"FXZB\x02\x02\x00\x00");
    want.extend_from_slice(&0x1122334455667788u64.to_le_bytes());
    want.extend_from_slice(&7u64.to_le_bytes());
    want.extend_from_slice(&(1u64 << 40).to_le_bytes());
    want.extend_from_slice(&schema.hash.to_le_bytes());
    want.extend_from_slice(&4u16.to_le_bytes());
    want.push(0b101);
    want.extend_from_slice(&1.0f64.to_le_bytes());
    want.push(0b001);
    want.extend_from_slice(&2u32.to_le_bytes());
    want.extend_from_slice(b"ab");
    want.push(0b101);
    want.extend_from_slice(&1u32.to_le_bytes());
    want.extend_from_slice(&[0x34, 0x12]);
    want.push(0);
    assert_eq!(bytes, want);
}

#[test]
fn encode_rejects_values_that_do_not_fit() {
    let fields = vec![
        FieldDef::new("i", Kind::Scalar(Dtype::I8)),
        FieldDef::new("s", Kind::str(2)),
        FieldDef::new("a", Kind::array(Dtype::U16, &[2, 2])),
    ];
    let schema = SchemaMsg::new(1, 0, Mode::Single, fields).unwrap();
    let ok = [
        w(FieldValue::Int(1)),
        w(FieldValue::Str("ab")),
        w(FieldValue::Array {
            dtype: Dtype::U16,
            rows: 1,
            bytes: &[0; 4],
        }),
    ];
    let mut out = vec![9u8];
    encode_record(&hdr(&schema), &schema.fields, &ok, &mut out).unwrap();
    assert_eq!(out[0], 9, "appends");
    let bad: Vec<(usize, WireField<'_>)> = vec![
        (0, w(FieldValue::Int(128))),
        (0, w(FieldValue::UInt(1))),
        (0, w(FieldValue::Float(1.0))),
        (
            0,
            WireField {
                status: st(true, true, true),
                value: Some(FieldValue::Int(1)),
            },
        ),
        (
            0,
            WireField {
                status: st(true, false, false),
                value: None,
            },
        ),
        (
            0,
            WireField {
                status: st(false, false, false),
                value: Some(FieldValue::Int(1)),
            },
        ),
        (
            0,
            WireField {
                status: st(false, false, true),
                value: None,
            },
        ),
        (1, w(FieldValue::Str("abc"))),
        (
            1,
            WireField {
                status: st(true, true, true),
                value: Some(FieldValue::Str("a")),
            },
        ),
        (
            2,
            w(FieldValue::Array {
                dtype: Dtype::U16,
                rows: 3,
                bytes: &[0; 12],
            }),
        ),
        (
            2,
            w(FieldValue::Array {
                dtype: Dtype::I16,
                rows: 1,
                bytes: &[0; 4],
            }),
        ),
        (
            2,
            w(FieldValue::Array {
                dtype: Dtype::U16,
                rows: 1,
                bytes: &[0; 3],
            }),
        ),
        (
            2,
            WireField {
                status: st(true, true, true),
                value: Some(FieldValue::Array {
                    dtype: Dtype::U16,
                    rows: 1,
                    bytes: &[0; 4],
                }),
            },
        ),
    ];
    for (i, f) in bad {
        let mut values = ok.to_vec();
        values[i] = f;
        let mut out = vec![9u8];
        let r = encode_record(&hdr(&schema), &schema.fields, &values, &mut out);
        assert!(
            matches!(r, Err(WireError::Field { index, .. }) if index == i),
            "{f:?}: {r:?}"
        );
        assert_eq!(out, [9], "nothing appended on error");
    }
    assert!(encode_record(&hdr(&schema), &schema.fields, &ok[..2], &mut out).is_err());
}

#[test]
fn decode_rejections() {
    let fields = vec![
        FieldDef::new("b", Kind::Scalar(Dtype::Bool)),
        FieldDef::new("s", Kind::str(2)),
        FieldDef::new("a", Kind::array(Dtype::Bool, &[2])),
    ];
    let schema = SchemaMsg::new(1, 0, Mode::Single, fields).unwrap();
    let values = [
        w(FieldValue::Bool(true)),
        w(FieldValue::Str("ab")),
        w(FieldValue::Array {
            dtype: Dtype::Bool,
            rows: 1,
            bytes: &[1],
        }),
    ];
    let mut good = Vec::new();
    encode_record(&hdr(&schema), &schema.fields, &values, &mut good).unwrap();
    // Offsets: header 42; b: status 42, value 43; s: status 44, len 45..49, bytes 49..51;
    // a: status 51, rows 52..56, element 56.
    assert_eq!(good.len(), 57);
    let with = |at: usize, b: u8| {
        let mut m = good.clone();
        m[at] = b;
        m
    };
    let dec = |m: &[u8]| {
        let mut out = vec![WireField::UNWRITTEN];
        let r = decode_record(m, &schema, &mut out);
        assert!(r.is_ok() || out.is_empty(), "out cleared on error");
        r
    };
    assert!(dec(&good).is_ok());
    // Version 1 wrote record messages with the same bytes: still read.
    assert!(dec(&with(4, 1)).is_ok());
    assert_eq!(
        dec(&with(4, 3)),
        Err(WireError::UnsupportedVersion { found: 3 })
    );
    assert_eq!(dec(&with(0, 0)), Err(WireError::BadMagic));
    assert_eq!(
        dec(&with(4, 0)),
        Err(WireError::UnsupportedVersion { found: 0 })
    );
    assert_eq!(
        dec(&with(5, KIND_SCHEMA)),
        Err(WireError::UnexpectedKind { found: KIND_SCHEMA })
    );
    assert!(matches!(dec(&with(7, 1)), Err(WireError::Invalid { .. })));
    // seq 0
    let mut m = good.clone();
    m[16..24].fill(0);
    assert!(matches!(dec(&m), Err(WireError::Invalid { .. })));
    assert!(matches!(
        dec(&with(32, good[32] ^ 1)),
        Err(WireError::SchemaHash { .. })
    ));
    assert!(matches!(dec(&with(40, 4)), Err(WireError::Invalid { .. })));
    let field = |r: Result<RecordHeader, WireError>| match r {
        Err(WireError::Field { index, .. }) => index,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(dec(&with(42, 8))), 0, "unknown status bit");
    assert_eq!(
        field(dec(&with(42, ST_MODIFIED))),
        0,
        "modified, not written"
    );
    assert_eq!(field(dec(&with(43, 2))), 0, "bool 2");
    assert_eq!(
        field(dec(&with(42, ST_WRITTEN | ST_TRUNCATED))),
        0,
        "truncated scalar"
    );
    assert_eq!(field(dec(&with(45, 9))), 1, "string over 4*N bytes");
    assert_eq!(field(dec(&with(49, 0xff))), 1, "not UTF-8");
    assert_eq!(field(dec(&with(52, 3))), 2, "rows over d0");
    assert_eq!(field(dec(&with(56, 7))), 2, "bool element 7");
    assert_eq!(
        field(dec(&with(51, ST_WRITTEN | ST_TRUNCATED))),
        2,
        "truncated array not full"
    );
    // Three code points in 3 bytes, capacity 2.
    let mut m = good.clone();
    m[45..49].copy_from_slice(&3u32.to_le_bytes());
    m.splice(49..51, *b"abc");
    assert_eq!(field(dec(&m)), 1);
    // A truncated string must fill its capacity: "a" with the truncated bit.
    let mut m = good.clone();
    m[44] = ST_WRITTEN | ST_TRUNCATED;
    m[45..49].copy_from_slice(&1u32.to_le_bytes());
    m.remove(50);
    assert_eq!(field(dec(&m)), 1);
    let mut long = good.clone();
    long.push(0);
    assert_eq!(dec(&long), Err(WireError::Trailing { extra: 1 }));
    for n in 0..good.len() {
        assert!(
            matches!(dec(&good[..n]), Err(WireError::Short { .. })),
            "prefix {n}"
        );
    }
    // Peek reads the header of a record without the schema.
    assert_eq!(peek(&good).unwrap(), Peek::Record(hdr(&schema)));
}

// ---- Batch messages (version 2) --------------------------------------------------------

fn batch_schema() -> SchemaMsg {
    let fields = vec![
        FieldDef::new("n", Kind::Scalar(Dtype::U16)),
        FieldDef::new("s", Kind::str(2)),
    ];
    SchemaMsg::new(0x0102030405060708, 0, Mode::Fifo { slots: 4 }, fields).unwrap()
}

/// A batch of `commits.len()` records, record `i` with `n = i` and `s = "ab"` (unwritten
/// for odd `i`).
fn batch_of(schema: &SchemaMsg, first_seq: u64, commits: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = BatchEncoder::begin(&mut out, schema, first_seq);
    for (i, &c) in commits.iter().enumerate() {
        let s = if i % 2 == 0 {
            w(FieldValue::Str("ab"))
        } else {
            WireField::UNWRITTEN
        };
        b.push(
            &mut out,
            c,
            &schema.fields,
            &[w(FieldValue::UInt(i as u64)), s],
        )
        .unwrap();
    }
    assert_eq!(b.finish(&mut out), commits.len());
    out
}

#[test]
fn batch_layout_is_as_documented() {
    let schema = batch_schema();
    let bytes = batch_of(&schema, 5, &[9, 11]);
    let mut want = Vec::new();
    want.extend_from_slice(b"FXZB\x02\x03\x00\x00");
    want.extend_from_slice(&0x0102030405060708u64.to_le_bytes());
    want.extend_from_slice(&5u64.to_le_bytes());
    want.extend_from_slice(&schema.hash.to_le_bytes());
    want.extend_from_slice(&2u16.to_le_bytes()); // fields
    want.extend_from_slice(&2u16.to_le_bytes()); // records
    assert_eq!(want.len(), BATCH_HEADER_LEN);
    // Record 0: commit 9, n = 0, s = "ab".
    want.extend_from_slice(&9u64.to_le_bytes());
    want.push(0b101);
    want.extend_from_slice(&0u16.to_le_bytes());
    want.push(0b101);
    want.extend_from_slice(&2u32.to_le_bytes());
    want.extend_from_slice(b"ab");
    // Record 1: commit 11, n = 1, s unwritten.
    want.extend_from_slice(&11u64.to_le_bytes());
    want.push(0b101);
    want.extend_from_slice(&1u16.to_le_bytes());
    want.push(0);
    assert_eq!(bytes, want);

    let (mut vals, mut commits) = (Vec::new(), Vec::new());
    let h = decode_batch(&bytes, &schema, &mut vals, &mut commits).unwrap();
    let expect = BatchHeader {
        session: schema.session,
        first_seq: 5,
        schema_hash: schema.hash,
        count: 2,
    };
    assert_eq!(h, expect);
    assert_eq!(peek(&bytes).unwrap(), Peek::Batch(expect));
    assert_eq!(peek(&bytes).unwrap().session(), schema.session);
    assert_eq!(commits, [9, 11]);
    assert_eq!(vals.len(), 4);
    assert_eq!(vals[2].value, Some(FieldValue::UInt(1)));
    assert!(vals[3].status.unwritten());
    assert_eq!(h.record(1, 11).seq, 6);
}

#[test]
fn batch_encoder_refuses_what_would_not_decode() {
    let schema = batch_schema();
    let mut out = vec![7];
    let mut b = BatchEncoder::begin(&mut out, &schema, 1);
    let ok = [w(FieldValue::UInt(1)), WireField::UNWRITTEN];
    b.push(&mut out, 10, &schema.fields, &ok).unwrap();
    let len = out.len();
    // Commits must grow; the value must fit; one value per field.
    assert!(b.push(&mut out, 10, &schema.fields, &ok).is_err());
    let big = [w(FieldValue::UInt(1 << 20)), WireField::UNWRITTEN];
    assert!(b.push(&mut out, 11, &schema.fields, &big).is_err());
    assert!(b.push(&mut out, 11, &schema.fields, &ok[..1]).is_err());
    assert_eq!(
        out.len(),
        len,
        "a refused record leaves the batch as it was"
    );
    assert_eq!(b.len(), 1);
    assert_eq!(b.bytes(&out), len - 1);
    b.finish(&mut out);
    let (mut vals, mut commits) = (Vec::new(), Vec::new());
    assert!(decode_batch(&out[1..], &schema, &mut vals, &mut commits).is_ok());
}

#[test]
fn batch_rejections() {
    let schema = batch_schema();
    let good = batch_of(&schema, 1, &[3, 4, 8]);
    let with = |at: usize, b: u8| {
        let mut m = good.clone();
        m[at] = b;
        m
    };
    let dec = |m: &[u8]| {
        let (mut vals, mut commits) = (vec![WireField::UNWRITTEN], vec![1]);
        let r = decode_batch(m, &schema, &mut vals, &mut commits);
        assert!(r.is_ok() || (vals.is_empty() && commits.is_empty()));
        r
    };
    assert!(dec(&good).is_ok());
    // Batches are new in version 2: a "version 1 batch" does not exist.
    assert_eq!(
        dec(&with(4, 1)),
        Err(WireError::UnexpectedKind { found: KIND_BATCH })
    );
    assert_eq!(
        peek(&with(4, 1)),
        Err(WireError::UnexpectedKind { found: 3 })
    );
    assert_eq!(
        dec(&with(4, 3)),
        Err(WireError::UnsupportedVersion { found: 3 })
    );
    assert_eq!(
        dec(&with(5, KIND_RECORD)),
        Err(WireError::UnexpectedKind { found: KIND_RECORD })
    );
    assert!(matches!(dec(&with(6, 1)), Err(WireError::Invalid { .. })));
    // First seq 0.
    let mut m = good.clone();
    m[16..24].fill(0);
    assert!(matches!(dec(&m), Err(WireError::Invalid { .. })));
    // Sequence numbers that would overflow.
    let mut m = good.clone();
    m[16..24].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    assert!(matches!(dec(&m), Err(WireError::Invalid { .. })));
    assert!(matches!(
        dec(&with(24, good[24] ^ 1)),
        Err(WireError::SchemaHash { .. })
    ));
    assert!(matches!(dec(&with(32, 3)), Err(WireError::Invalid { .. })));
    // Record count 0; a count larger than the records present.
    assert!(matches!(dec(&with(34, 0)), Err(WireError::Invalid { .. })));
    assert!(matches!(dec(&with(34, 4)), Err(WireError::Short { .. })));
    assert!(matches!(dec(&with(34, 2)), Err(WireError::Trailing { .. })));
    let mut m = good.clone();
    m[34..36].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(dec(&m), Err(WireError::Short { .. })));
    // The second record's commit not above the first's. Record 0 takes 8 (commit) + 3
    // (n) + 7 (s = "ab") bytes after the header.
    let second = BATCH_HEADER_LEN + 8 + 3 + 7;
    assert_eq!(good[second..second + 8], 4u64.to_le_bytes());
    let mut m = good.clone();
    m[second..second + 8].copy_from_slice(&3u64.to_le_bytes());
    assert!(matches!(dec(&m), Err(WireError::Invalid { .. })));
    // A bad field in the last record rejects the whole batch (its `s` status byte is
    // followed by a 4-byte length and "ab").
    let last_status = good.len() - 7;
    assert_eq!(good[last_status], 0b101);
    assert!(matches!(
        dec(&with(last_status, 0b1000_0101)),
        Err(WireError::Field { index: 1, .. })
    ));
    let mut long = good.clone();
    long.push(0);
    assert_eq!(dec(&long), Err(WireError::Trailing { extra: 1 }));
    for n in 0..good.len() {
        assert!(dec(&good[..n]).is_err(), "prefix {n}");
    }
    // A record decoder does not take a batch, nor a batch decoder a record.
    let mut vals = Vec::new();
    assert_eq!(
        decode_record(&good, &schema, &mut vals),
        Err(WireError::UnexpectedKind { found: KIND_BATCH })
    );
}

// ---- Random schemas and records -------------------------------------------------------

/// A small deterministic generator (xorshift64*), driven by a test's seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn gen_kind(g: &mut Gen) -> Kind {
    let d = Dtype::ALL[g.below(11) as usize];
    match g.below(3) {
        0 => Kind::Scalar(d),
        1 => Kind::Str {
            chars: 1 + g.below(12) as u32,
        },
        _ => {
            let ndim = 1 + g.below(4) as usize;
            let dims: Vec<u32> = (0..ndim).map(|_| 1 + g.below(4) as u32).collect();
            Kind::array(d, &dims)
        }
    }
}

fn gen_schema(g: &mut Gen) -> SchemaMsg {
    let n = g.below(9) as usize;
    let fields = (0..n)
        .map(|i| FieldDef::new(&format!("f{i}"), gen_kind(g)))
        .collect();
    let mode = if g.chance(50) {
        Mode::Single
    } else {
        Mode::Fifo {
            slots: 1 + g.below(100) as u32,
        }
    };
    SchemaMsg::new(g.next(), g.next(), mode, fields).unwrap()
}

#[derive(Debug, Clone)]
enum Owned {
    Unwritten,
    Scalar(FieldValue<'static>, FieldStatus),
    Str(String, FieldStatus),
    Arr(Dtype, usize, Vec<u8>, FieldStatus),
}

const ALPHABET: [char; 6] = ['a', 'é', '✓', '𝄞', ' ', 'Z'];

fn gen_value(g: &mut Gen, kind: Kind) -> Owned {
    if g.chance(20) {
        return Owned::Unwritten;
    }
    let mut status = st(true, false, g.chance(50));
    match kind {
        Kind::Scalar(d) => {
            let bits = g.next();
            let v = match d {
                Dtype::Bool => FieldValue::Bool(bits & 1 == 1),
                Dtype::I8 => FieldValue::Int(bits as i8 as i64),
                Dtype::I16 => FieldValue::Int(bits as i16 as i64),
                Dtype::I32 => FieldValue::Int(bits as i32 as i64),
                Dtype::I64 => FieldValue::Int(bits as i64),
                Dtype::U8 => FieldValue::UInt(bits as u8 as u64),
                Dtype::U16 => FieldValue::UInt(bits as u16 as u64),
                Dtype::U32 => FieldValue::UInt(bits as u32 as u64),
                Dtype::U64 => FieldValue::UInt(bits),
                Dtype::F32 => FieldValue::Float(f32::from_bits(bits as u32) as f64),
                Dtype::F64 => FieldValue::Float(f64::from_bits(bits)),
            };
            Owned::Scalar(v, status)
        }
        Kind::Str { chars } => {
            status.truncated = g.chance(20);
            let n = if status.truncated {
                chars as usize
            } else {
                g.below(chars as u64 + 1) as usize
            };
            let s = (0..n)
                .map(|_| ALPHABET[g.below(ALPHABET.len() as u64) as usize])
                .collect();
            Owned::Str(s, status)
        }
        Kind::Array { dtype, dims } => {
            status.truncated = g.chance(20);
            let rows = if status.truncated {
                dims.rows() as usize
            } else {
                g.below(dims.rows() as u64 + 1) as usize
            };
            let len = rows * dims.row_elems().unwrap() as usize * dtype.size() as usize;
            let bytes = (0..len)
                .map(|_| {
                    let b = g.next() as u8;
                    if dtype == Dtype::Bool {
                        b & 1
                    } else {
                        b
                    }
                })
                .collect();
            Owned::Arr(dtype, rows, bytes, status)
        }
    }
}

fn borrow(o: &Owned) -> WireField<'_> {
    match o {
        Owned::Unwritten => WireField::UNWRITTEN,
        Owned::Scalar(v, s) => WireField {
            status: *s,
            value: Some(*v),
        },
        Owned::Str(v, s) => WireField {
            status: *s,
            value: Some(FieldValue::Str(v)),
        },
        Owned::Arr(dtype, rows, bytes, s) => WireField {
            status: *s,
            value: Some(FieldValue::Array {
                dtype: *dtype,
                rows: *rows,
                bytes,
            }),
        },
    }
}

/// A random schema and an encoded record of it.
fn gen_message(seed: u64) -> (SchemaMsg, Vec<u8>) {
    let mut g = Gen(seed | 1);
    let schema = gen_schema(&mut g);
    let owned: Vec<Owned> = schema
        .fields
        .iter()
        .map(|f| gen_value(&mut g, f.kind))
        .collect();
    let values: Vec<WireField<'_>> = owned.iter().map(borrow).collect();
    let h = RecordHeader {
        session: schema.session,
        seq: 1 + g.below(1000),
        commit: g.next(),
        schema_hash: schema.hash,
    };
    let mut out = Vec::new();
    encode_record(&h, &schema.fields, &values, &mut out).unwrap();
    let mut back = Vec::new();
    decode_record(&out, &schema, &mut back).unwrap();
    for (a, b) in values.iter().zip(&back) {
        assert!(same_field(a, b), "{a:?} != {b:?}");
    }
    (schema, out)
}

/// A random schema and a batch of 1 to 8 random records of it.
fn gen_batch(seed: u64) -> (SchemaMsg, Vec<u8>) {
    let mut g = Gen(seed | 1);
    let schema = gen_schema(&mut g);
    let count = 1 + g.below(8) as usize;
    let records: Vec<Vec<Owned>> = (0..count)
        .map(|_| {
            schema
                .fields
                .iter()
                .map(|f| gen_value(&mut g, f.kind))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let mut b = BatchEncoder::begin(&mut out, &schema, 1 + g.below(1000));
    let mut commit = g.below(1 << 40);
    for r in &records {
        commit += 1 + g.below(3);
        let values: Vec<WireField<'_>> = r.iter().map(borrow).collect();
        b.push(&mut out, commit, &schema.fields, &values).unwrap();
    }
    b.finish(&mut out);
    (schema, out)
}

/// If `bytes` decodes as a batch, re-encoding what it decoded to gives the same bytes.
fn check_batch_canonical(bytes: &[u8], schema: &SchemaMsg) {
    let (mut vals, mut commits) = (Vec::new(), Vec::new());
    let Ok(h) = decode_batch(bytes, schema, &mut vals, &mut commits) else {
        return;
    };
    let n = schema.fields.len();
    let mut again = Vec::new();
    let same = SchemaMsg {
        session: h.session,
        ..schema.clone()
    };
    let mut b = BatchEncoder::begin(&mut again, &same, h.first_seq);
    for (i, &c) in commits.iter().enumerate() {
        b.push(&mut again, c, &schema.fields, &vals[i * n..(i + 1) * n])
            .expect("decoded records re-encode");
    }
    b.finish(&mut again);
    let (mut vals2, mut commits2) = (Vec::new(), Vec::new());
    assert_eq!(
        decode_batch(&again, schema, &mut vals2, &mut commits2),
        Ok(h)
    );
    assert_eq!(commits, commits2);
    for (a, b) in vals.iter().zip(&vals2) {
        assert!(same_field(a, b), "{a:?} != {b:?}");
    }
}

/// If `bytes` decodes, encoding what it decoded to and decoding that again gives the
/// same record (bit for bit in every value).
fn check_canonical(bytes: &[u8], schema: &SchemaMsg) {
    let mut first = Vec::new();
    let Ok(h) = decode_record(bytes, schema, &mut first) else {
        return;
    };
    let mut again = Vec::new();
    encode_record(&h, &schema.fields, &first, &mut again).expect("decoded values re-encode");
    let mut second = Vec::new();
    assert_eq!(decode_record(&again, schema, &mut second), Ok(h));
    for (a, b) in first.iter().zip(&second) {
        assert!(same_field(a, b), "{a:?} != {b:?}");
    }
}

fn mutate(g: &mut Gen, m: &mut Vec<u8>) {
    match g.below(5) {
        0 if !m.is_empty() => {
            let i = g.below(m.len() as u64) as usize;
            m[i] ^= 1 << g.below(8);
        }
        1 if !m.is_empty() => {
            let i = g.below(m.len() as u64) as usize;
            m[i] = g.next() as u8;
        }
        2 => {
            let n = g.below(m.len() as u64 + 1) as usize;
            m.truncate(n);
        }
        3 => {
            let i = g.below(m.len() as u64 + 1) as usize;
            m.insert(i, g.next() as u8);
        }
        _ if !m.is_empty() => {
            let i = g.below(m.len() as u64) as usize;
            m.remove(i);
        }
        _ => m.push(0),
    }
}

// ---- Randomised properties -------------------------------------------------------------
//
// Each runs CASES cases from fixed seeds (splitmix64), so a failure names the seed that
// reproduces it and every run tests the same messages. No test framework: a dependency
// here would build the crates Zenoh shares with it a second time (mk/zenoh.mk).

const CASES: u64 = 2000;

/// The seeds of case 0..CASES of the test `salt`.
fn seeds(salt: u64) -> impl Iterator<Item = u64> {
    (0..CASES).map(move |i| {
        let mut z = (salt << 32 ^ i).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Runs `case` for every seed of test `salt`, naming the seed of a failing case.
fn for_seeds(salt: u64, case: impl Fn(u64)) {
    for seed in seeds(salt) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(seed)));
        if let Err(e) = r {
            eprintln!("failing seed: {seed:#018x}");
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn random_records_round_trip() {
    for_seeds(1, |seed| {
        let (schema, bytes) = gen_message(seed);
        check_canonical(&bytes, &schema);
        let sbytes = schema.encode();
        assert_eq!(SchemaMsg::decode(&sbytes).unwrap(), schema);
    });
}

#[test]
fn arbitrary_bytes_never_panic() {
    for_seeds(2, |seed| {
        let (schema, _) = gen_message(seed);
        let mut g = Gen(seed.rotate_left(7) | 1);
        let bytes: Vec<u8> = (0..g.below(300)).map(|_| g.next() as u8).collect();
        let _ = peek(&bytes);
        let _ = SchemaMsg::decode(&bytes);
        check_canonical(&bytes, &schema);
        check_batch_canonical(&bytes, &schema);
        // With a valid preamble and the schema's hash in place, the body is reached.
        let mut m = bytes.clone();
        if m.len() >= RECORD_HEADER_LEN {
            m[..8].copy_from_slice(&preamble(KIND_RECORD));
            m[32..40].copy_from_slice(&schema.hash.to_le_bytes());
            m[40..42].copy_from_slice(&(schema.fields.len() as u16).to_le_bytes());
            check_canonical(&m, &schema);
            // The same bytes behind a batch header.
            m[..8].copy_from_slice(&preamble(KIND_BATCH));
            m[24..32].copy_from_slice(&schema.hash.to_le_bytes());
            m[32..34].copy_from_slice(&(schema.fields.len() as u16).to_le_bytes());
            check_batch_canonical(&m, &schema);
        }
    });
}

#[test]
fn random_batches_round_trip_and_survive_mutation() {
    for_seeds(3, |seed| {
        let (schema, bytes) = gen_batch(seed);
        let (mut vals, mut commits) = (Vec::new(), Vec::new());
        let h = decode_batch(&bytes, &schema, &mut vals, &mut commits).unwrap();
        assert_eq!(commits.len(), h.count);
        assert_eq!(vals.len(), h.count * schema.fields.len());
        check_batch_canonical(&bytes, &schema);
        let mut g = Gen(seed.rotate_left(29) | 1);
        let mut m = bytes.clone();
        for _ in 0..1 + g.below(5) {
            mutate(&mut g, &mut m);
        }
        let _ = peek(&m);
        check_batch_canonical(&m, &schema);
        check_canonical(&m, &schema);
    });
}

#[test]
fn mutated_messages_never_panic() {
    for_seeds(4, |seed| {
        let (schema, bytes) = gen_message(seed);
        let mut g = Gen(seed.rotate_left(17) | 1);
        let rounds = 1 + g.below(5);
        let mut m = bytes.clone();
        for _ in 0..rounds {
            mutate(&mut g, &mut m);
        }
        let _ = peek(&m);
        check_canonical(&m, &schema);
        // Mutated schema messages: decode or reject, never panic; what decodes is valid.
        let mut s = schema.encode();
        for _ in 0..rounds {
            mutate(&mut g, &mut s);
        }
        if let Ok(d) = SchemaMsg::decode(&s) {
            assert!(Layout::new(d.fields.as_slice()).is_ok());
            assert_eq!(SchemaMsg::decode(&d.encode()).unwrap(), d);
        }
    });
}
