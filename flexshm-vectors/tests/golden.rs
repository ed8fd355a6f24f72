//! Rebuilds every golden vector and compares it byte for byte with
//! `tests/vectors/<name>.bin`. `BLESS=1` (or `make vectors`) rewrites the files instead:
//! do that only for a deliberate protocol change, and say so in the commit.

use std::path::PathBuf;

use flexshm_core::internal::{DESCRIPTOR_PREAMBLE, FIELD_ENTRY_LEN};
use flexshm_core::{Dynamic, FieldValue, Layout, ReadOptions, Reader, Region};
use flexshm_vectors::{Case, CASES};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// Zeroed, 64-aligned memory of `len` bytes.
struct Zeroed(Vec<u64>, usize);

impl Zeroed {
    fn new(len: usize) -> Zeroed {
        // u64 backing gives 8-byte alignment, which is REGION_ALIGN.
        Zeroed(vec![0u64; len.div_ceil(8)], len)
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the Vec owns at least `len` initialised bytes; u8 has no alignment or
        // validity requirements; the exclusive borrow of self covers the result.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.1) }
    }
}

fn build(case: &Case) -> Vec<u8> {
    let mut mem = Zeroed::new(case.region_len);
    (case.run)(Region::new(mem.bytes_mut()).unwrap());
    mem.bytes_mut().to_vec()
}

/// What lives at byte `off` of a segment of `case`.
fn describe(case: &Case, off: usize) -> String {
    let l = Layout::new(case.fields).unwrap();
    const HEADER: [&str; 16] = [
        "magic",
        "version",
        "flags",
        "slots",
        "hash_lo",
        "hash_hi",
        "descriptor_len",
        "slots_offset",
        "slot_size",
        "slot_stride",
        "total_size",
        "reserved",
        "head",
        "reserved",
        "reserved",
        "reserved",
    ];
    if off < 64 {
        return format!("header word '{}' (+{})", HEADER[off / 4], off % 4);
    }
    if off < 128 {
        return "frontend area".into();
    }
    let d = off - 128;
    if d < DESCRIPTOR_PREAMBLE {
        return "descriptor field count".into();
    }
    let e = d - DESCRIPTOR_PREAMBLE;
    if e < case.fields.len() * FIELD_ENTRY_LEN {
        return format!(
            "descriptor entry of field '{}' (byte {})",
            case.fields[e / FIELD_ENTRY_LEN].name,
            e % FIELD_ENTRY_LEN
        );
    }
    if off < l.slots_offset() {
        return "padding before the slots".into();
    }
    let b = (off - l.slots_offset()) / l.slot_stride();
    let s = (off - l.slots_offset()) % l.slot_stride();
    let what = match s {
        0..=3 => "seq".to_string(),
        4..=7 => "commit".to_string(),
        8..=11 => "flags".to_string(),
        12..=15 => "reserved".to_string(),
        _ if s < 16 + 8 * case.fields.len() => {
            let i = (s - 16) / 8;
            let word = if (s - 16) % 8 < 4 {
                "last-write commit"
            } else {
                "info"
            };
            format!("meta of '{}' ({word})", case.fields[i].name)
        }
        _ => {
            match (0..case.fields.len()).find(|&i| s >= l.offset(i) && s < l.offset(i) + l.size(i))
            {
                Some(i) => format!(
                    "payload of '{}' (+{})",
                    case.fields[i].name,
                    s - l.offset(i)
                ),
                None => "padding".to_string(),
            }
        }
    };
    format!("buffer {b}, {what}")
}

#[test]
fn vectors_match() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in CASES {
        let got = build(case);
        let path = dir().join(format!("{}.bin", case.name));
        if bless {
            std::fs::write(&path, &got).unwrap();
            println!("blessed {} ({} bytes)", path.display(), got.len());
            continue;
        }
        let want = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `make vectors` to create it deliberately",
                path.display()
            )
        });
        if got.len() != want.len() {
            failures.push(format!(
                "{}: {} bytes built, {} stored",
                case.name,
                got.len(),
                want.len()
            ));
        }
        if let Some(off) = got.iter().zip(&want).position(|(a, b)| a != b) {
            let diffs = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            failures.push(format!(
                "{}: first difference at byte {off} ({}): built {:#04x}, stored {:#04x}; {diffs} bytes differ",
                case.name,
                describe(case, off),
                got[off],
                want[off]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden vectors differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn region_len_is_the_segment_size() {
    for case in CASES {
        let l = Layout::new(case.fields).unwrap();
        assert_eq!(
            case.region_len,
            l.segment_size(case.mode.slots()).unwrap(),
            "{}",
            case.name
        );
    }
}

#[test]
fn cases_are_deterministic_and_named_uniquely() {
    for (k, case) in CASES.iter().enumerate() {
        assert_eq!(build(case), build(case), "{}", case.name);
        assert!(CASES[..k].iter().all(|c| c.name != case.name));
    }
    let names: Vec<_> = CASES.iter().map(|c| c.name).collect();
    for n in ["sensor_single", "all_types", "sensor_fifo"] {
        assert!(names.contains(&n), "{n}");
    }
}

/// The vectors are readable segments: a schema-less reader opens each and decodes the
/// newest record, which holds what the sequence wrote last.
#[test]
fn vectors_read_back() {
    for case in CASES {
        let mut mem = Zeroed::new(case.region_len);
        (case.run)(Region::new(mem.bytes_mut()).unwrap());
        let region = Region::new(mem.bytes_mut()).unwrap();
        let mut r = Reader::<Dynamic>::open(region).unwrap();
        assert_eq!(r.mode(), case.mode);
        let mut buf = vec![0u8; r.snapshot_len()];
        let latest = ReadOptions {
            latest: true,
            reset_modified: false,
        };
        let snap = r.try_read(&mut buf, latest).unwrap();
        match case.name {
            "sensor_single" => {
                assert_eq!(snap.commit(), 5);
                assert_eq!(snap.get(0).unwrap(), FieldValue::Float(-40.0625));
                assert_eq!(snap.get(1).unwrap(), FieldValue::Float(998.5));
                assert_eq!(snap.get(2).unwrap(), FieldValue::Float(1_700_000_001.0));
                assert_eq!(
                    snap.get(3).unwrap(),
                    FieldValue::Str("Grüße 世界 Привет مرحبا 🌍 ok")
                );
                assert!(snap.status(3).valid() && !snap.status(3).modified);
                assert!(snap.status(1).modified);
            }
            "all_types" => {
                assert_eq!(snap.commit(), 3);
                assert_eq!(snap.get_named("name").unwrap(), FieldValue::Str("ñandú"));
                assert!(snap.status(11).truncated);
                assert!(snap.status(15).truncated, "pair_u64 was given 3 rows");
                assert_eq!(snap.get_named("f32").unwrap(), FieldValue::Float(-7.0));
                assert_eq!(snap.get_named("i64").unwrap(), FieldValue::Int(i64::MAX));
                match snap.get_named("mat_i16").unwrap() {
                    FieldValue::Array { rows, .. } => assert_eq!(rows, 1),
                    other => panic!("{other:?}"),
                }
                match snap.get_named("bits").unwrap() {
                    FieldValue::Array { rows, .. } => assert_eq!(rows, 0),
                    other => panic!("{other:?}"),
                }
            }
            "sensor_fifo" => {
                assert_eq!(snap.commit(), 7);
                assert_eq!(snap.get(0).unwrap(), FieldValue::Float(23.0));
                assert_eq!(snap.get(1).unwrap(), FieldValue::Float(1013.25));
                assert_eq!(snap.get(3).unwrap(), FieldValue::Str("vent ✓"));
                // A fresh in-order reader starts at the oldest record in the ring.
                let mut r2 = Reader::<Dynamic>::open(region).unwrap();
                let snap = r2.try_read(&mut buf, ReadOptions::default()).unwrap();
                assert_eq!((snap.commit(), snap.lost()), (4, 0));
            }
            other => panic!("no read-back check for case {other}"),
        }
    }
}
