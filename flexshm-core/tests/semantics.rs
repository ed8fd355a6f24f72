//! Record semantics: per-reader `reset_modified` tracking, FIFO `latest` and loss counts,
//! carry-over of unwritten fields, blocking reads, and the typed API's layout.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    record, ArrayRef, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Layout, Mode, ReadOptions,
    Reader, Record, Value, Writer,
};

const RESET: ReadOptions = ReadOptions {
    latest: false,
    reset_modified: true,
};
const PLAIN: ReadOptions = ReadOptions {
    latest: false,
    reset_modified: false,
};
const LATEST: ReadOptions = ReadOptions {
    latest: true,
    reset_modified: false,
};

const XYZ: &[FieldDef] = &[
    FieldDef::new("x", Kind::Scalar(Dtype::I32)),
    FieldDef::new("y", Kind::Scalar(Dtype::I32)),
    FieldDef::new("z", Kind::Scalar(Dtype::I32)),
];

fn modified(
    r: &mut Reader<'_, Dynamic<&'static [FieldDef]>>,
    buf: &mut [u8],
    opts: ReadOptions,
) -> String {
    let info = r.try_read(buf, opts).map(|s| s.info()).unwrap();
    ["x", "y", "z"]
        .iter()
        .enumerate()
        .filter(|(i, _)| info.status(*i).modified)
        .map(|(_, n)| *n)
        .collect()
}

#[test]
fn reset_modified_is_tracked_per_reader() {
    let mem = Mem::for_schema(XYZ, Mode::Single);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), XYZ, Mode::Single).unwrap();
    let mut a = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut b = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut buf = vec![0u8; a.snapshot_len()];
    let before = mem.bytes();
    // Nothing written yet: nothing modified, for either.
    assert_eq!(modified(&mut a, &mut buf, RESET), "");
    assert_eq!(before, mem.bytes(), "a reader wrote to the region");

    w.write_fields(&[(0, Value::Int(1))]).unwrap();
    assert_eq!(modified(&mut a, &mut buf, RESET), "x");
    w.write_fields(&[(1, Value::Int(2))]).unwrap();
    // b's first tracking read: everything written so far.
    assert_eq!(modified(&mut b, &mut buf, RESET), "xy");
    // a saw x already.
    assert_eq!(modified(&mut a, &mut buf, RESET), "y");
    assert_eq!(modified(&mut a, &mut buf, RESET), "");
    w.write_fields(&[(2, Value::Int(3))]).unwrap();
    w.write_fields(&[(0, Value::Int(4))]).unwrap();
    // A plain read reports "written in this record" and does not reset the tracking.
    assert_eq!(modified(&mut a, &mut buf, PLAIN), "x");
    assert_eq!(modified(&mut a, &mut buf, RESET), "xz");
    assert_eq!(modified(&mut b, &mut buf, RESET), "xz");
    // Rewriting the same value is still a write.
    w.write_fields(&[(1, Value::Int(2))]).unwrap();
    assert_eq!(modified(&mut b, &mut buf, RESET), "y");
    assert_eq!(modified(&mut a, &mut buf, RESET), "y");
}

#[test]
fn reset_modified_in_fifo_spans_skipped_records() {
    let mode = Mode::Fifo { slots: 4 };
    let mem = Mem::for_schema(XYZ, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), XYZ, mode).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    w.write_fields(&[(0, Value::Int(1))]).unwrap();
    w.finalize();
    assert_eq!(modified(&mut r, &mut buf, RESET), "x");
    w.write_fields(&[(1, Value::Int(1))]).unwrap();
    w.finalize();
    w.write_fields(&[(2, Value::Int(1))]).unwrap();
    w.finalize();
    w.finalize();
    // Skipping to the newest record: y and z were written since the previous reset read.
    let latest_reset = ReadOptions {
        latest: true,
        reset_modified: true,
    };
    let info = r
        .try_read(&mut buf, latest_reset)
        .map(|s| s.info())
        .unwrap();
    assert_eq!(info.commit, 4);
    assert_eq!(info.modified, 0b110);
}

#[test]
fn fifo_latest_skips_without_counting_losses() {
    let mode = Mode::Fifo { slots: 3 };
    let mem = Mem::for_schema(XYZ, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), XYZ, mode).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    assert_eq!(
        r.try_read(&mut buf, LATEST).map(|s| s.info()),
        Err(Error::NoRecord)
    );
    for k in 1..=3 {
        w.write_fields(&[(0, Value::Int(k))]).unwrap();
        w.finalize();
    }
    let snap = r.try_read(&mut buf, LATEST).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (3, 0));
    assert_eq!(snap.get(0).unwrap(), FieldValue::Int(3));
    // Nothing newer: both kinds of read find nothing.
    assert_eq!(
        r.try_read(&mut buf, LATEST).map(|s| s.info()),
        Err(Error::NoRecord)
    );
    assert_eq!(
        r.try_read(&mut buf, PLAIN).map(|s| s.info()),
        Err(Error::NoRecord)
    );
    for k in 4..=5 {
        w.write_fields(&[(0, Value::Int(k))]).unwrap();
        w.finalize();
    }
    // In order again from where `latest` left the cursor.
    for k in 4..=5 {
        let snap = r.try_read(&mut buf, PLAIN).unwrap();
        assert_eq!((snap.commit(), snap.lost()), (k, 0));
        assert_eq!(snap.get(0).unwrap(), FieldValue::Int(k as i64));
    }
    assert_eq!(r.lost_total(), 0);
}

#[test]
fn fifo_lapped_reader_is_told_its_losses() {
    let mode = Mode::Fifo { slots: 3 };
    let mem = Mem::for_schema(XYZ, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), XYZ, mode).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    w.write_fields(&[(0, Value::Int(1))]).unwrap();
    w.finalize();
    assert_eq!(
        r.try_read(&mut buf, PLAIN)
            .map(|s| s.info())
            .unwrap()
            .commit,
        1
    );
    for k in 2..=10 {
        w.write_fields(&[(0, Value::Int(k))]).unwrap();
        w.finalize();
    }
    // The ring keeps 8, 9, 10; records 2..=7 are gone.
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (8, 6));
    assert_eq!(snap.get(0).unwrap(), FieldValue::Int(8));
    for k in 9..=10 {
        let snap = r.try_read(&mut buf, PLAIN).unwrap();
        assert_eq!((snap.commit(), snap.lost()), (k, 0));
    }
    assert_eq!(r.lost_total(), 6);
    // Exactly one lap behind: one record lost.
    for k in 11..=14 {
        w.write_fields(&[(0, Value::Int(k))]).unwrap();
        w.finalize();
    }
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (12, 1));
    assert_eq!(r.lost_total(), 7);
    // A new reader starts at the oldest record in the ring and has lost nothing.
    let mut fresh = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let snap = fresh.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (12, 0));
}

#[test]
fn fifo_reader_lapped_before_its_first_read_is_told_its_losses() {
    let mode = Mode::Fifo { slots: 3 };
    let mem = Mem::for_schema(XYZ, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), XYZ, mode).unwrap();
    // Opened on an empty ring: every record committed from now on is for this reader.
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    assert_eq!(
        r.try_read(&mut buf, PLAIN).map(|s| s.info()),
        Err(Error::NoRecord)
    );
    for k in 1..=10 {
        w.write_fields(&[(0, Value::Int(k))]).unwrap();
        w.finalize();
    }
    // The ring keeps 8, 9, 10: records 1..=7 were lost, and the reader is told.
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (8, 7));
    // Opened on a ring holding 8, 9, 10: starts at 8. By its first read the ring holds
    // 12, 13, 14, so 8..=11 are lost.
    let mut late = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    for k in 11..=14 {
        w.write_fields(&[(0, Value::Int(k))]).unwrap();
        w.finalize();
    }
    let snap = late.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (12, 4));
}

#[test]
fn carry_over_keeps_values_and_clears_modified() {
    for mode in [Mode::Single, Mode::Fifo { slots: 2 }] {
        let mem = Mem::for_schema(MIXED, mode);
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), MIXED, mode).unwrap();
        let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), MIXED).unwrap();
        let mut buf = vec![0u8; r.snapshot_len()];
        let arr: Vec<u8> = [1i16, 2, 3, 4]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        w.write_named(&[
            ("f", Value::Float(2.5)),
            ("s", Value::Str("toolong")),
            (
                "arr",
                Value::Array(ArrayRef::new(Dtype::I16, &[2, 2], &arr).unwrap()),
            ),
        ])
        .unwrap();
        w.finalize();
        w.write_named(&[("i", Value::Int(-9))]).unwrap();
        w.finalize();
        // Single-slot: each write commits and `finalize` adds nothing; FIFO: each
        // `finalize` commits. Either way commits 1 and 2. Read the newest.
        let snap = r.try_read(&mut buf, LATEST).unwrap();
        assert_eq!(snap.commit(), 2);
        assert_eq!(snap.get(0).unwrap(), FieldValue::Float(2.5));
        assert_eq!(snap.get(4).unwrap(), FieldValue::Str("tool"));
        assert_eq!(snap.raw(5).unwrap(), &arr[..]);
        for i in [0, 4, 5] {
            let st = snap.status(i);
            assert!(st.written && !st.modified, "field {i}: {st:?}");
        }
        // Truncation is a property of the value and carries over with it.
        assert!(snap.status(4).truncated && !snap.status(0).truncated);
        // Never-written fields stay unwritten (and read as zero).
        assert!(snap.status(3).unwritten() && snap.status(6).unwritten());
        assert_eq!(snap.get(6).unwrap(), FieldValue::Int(0));
        assert!(snap.status(1).modified, "i was written in commit 2");
    }
}

#[test]
fn blocking_read_times_out_with_a_reason() {
    struct CountingDelay(u64);
    impl embedded_hal::delay::DelayNs for CountingDelay {
        fn delay_ns(&mut self, ns: u32) {
            self.0 += ns as u64;
        }
    }
    let mode = Mode::Fifo { slots: 2 };
    let mem = Mem::for_schema(XYZ, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), XYZ, mode).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), XYZ).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    let mut d = CountingDelay(0);
    let err = r
        .read_blocking(&mut buf, PLAIN, &mut d, 1000, 100)
        .err()
        .unwrap();
    assert_eq!(err, Error::Timeout { no_record: true });
    assert_eq!(d.0, 1000 * 1000, "waited the whole timeout in delay calls");
    w.write_fields(&[(0, Value::Int(5))]).unwrap();
    w.finalize();
    let snap = r.read_blocking(&mut buf, PLAIN, &mut d, 1000, 100).unwrap();
    assert_eq!(snap.get(0).unwrap(), FieldValue::Int(5));
}

// One field of every kind; private, so it needs no docs.
record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Everything {
        flag: bool,
        a: i8,
        b: i16,
        c: i32,
        d: i64,
        e: u8,
        f: u16,
        g: u32,
        h: u64,
        x: f32,
        y: f64,
        name: str[5],
        v: [f32; 3],
        m: [[u16; 2]; 3],
        t: [[[u8; 2]; 2]; 2],
    }
}

fn everything_runtime() -> Vec<FieldDef> {
    let s = |n: &str, d| FieldDef::new(n, Kind::Scalar(d));
    vec![
        s("flag", Dtype::Bool),
        s("a", Dtype::I8),
        s("b", Dtype::I16),
        s("c", Dtype::I32),
        s("d", Dtype::I64),
        s("e", Dtype::U8),
        s("f", Dtype::U16),
        s("g", Dtype::U32),
        s("h", Dtype::U64),
        s("x", Dtype::F32),
        s("y", Dtype::F64),
        FieldDef::new("name", Kind::Str { chars: 5 }),
        FieldDef::new("v", Kind::array(Dtype::F32, &[3])),
        FieldDef::new("m", Kind::array(Dtype::U16, &[3, 2])),
        FieldDef::new("t", Kind::array(Dtype::U8, &[2, 2, 2])),
    ]
}

fn sample() -> Everything {
    let mut r = Everything {
        flag: true,
        a: -3,
        b: -300,
        c: 70000,
        d: -(1 << 40),
        e: 200,
        f: 60000,
        g: 4_000_000_000,
        h: u64::MAX - 1,
        x: 1.25,
        y: -2.5e-3,
        v: [0.5, 1.5, 2.5],
        m: [[1, 2], [3, 4], [5, 6]],
        t: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]],
        ..Default::default()
    };
    r.name.push_str("héllo").unwrap();
    r
}

#[test]
fn typed_layout_equals_runtime_layout() {
    let runtime = everything_runtime();
    assert_eq!(Everything::FIELDS, runtime.as_slice());
    let lt = Layout::new(Everything::FIELDS).unwrap();
    let lr = Layout::new(runtime.as_slice()).unwrap();
    assert_eq!(Everything::SNAPSHOT_LEN, lr.slot_size());
    assert_eq!(lt.slot_size(), lr.slot_size());
    assert_eq!(lt.hash(), lr.hash());
    for i in 0..runtime.len() {
        assert_eq!(lt.offset(i), lr.offset(i), "field {i}");
    }
    assert_eq!(Everything::m.index(), 13);
}

#[test]
fn typed_and_runtime_writes_give_the_same_bytes() {
    let runtime = everything_runtime();
    for mode in [Mode::Single, Mode::Fifo { slots: 2 }] {
        let typed_mem = Mem::for_schema(&runtime, mode);
        let dyn_mem = Mem::for_schema(&runtime, mode);
        let rec = sample();

        let mut tw = Writer::<Everything>::create(typed_mem.region(), mode).unwrap();
        tw.write(&rec).unwrap();
        tw.finalize();
        tw.write_named(&[("c", Value::Int(5))]).unwrap();
        tw.finalize();

        let mut dw =
            Writer::<Dynamic<_>>::create(dyn_mem.region(), runtime.as_slice(), mode).unwrap();
        let f32s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_ne_bytes()).collect() };
        let u16s = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|x| x.to_ne_bytes()).collect() };
        let vb = f32s(&[0.5, 1.5, 2.5]);
        let mb = u16s(&[1, 2, 3, 4, 5, 6]);
        let tb = [1u8, 2, 3, 4, 5, 6, 7, 8];
        dw.write_named(&[
            ("flag", Value::Bool(true)),
            ("a", Value::Int(-3)),
            ("b", Value::Int(-300)),
            ("c", Value::Int(70000)),
            ("d", Value::Int(-(1 << 40))),
            ("e", Value::UInt(200)),
            ("f", Value::UInt(60000)),
            ("g", Value::UInt(4_000_000_000)),
            ("h", Value::UInt(u64::MAX - 1)),
            ("x", Value::Float(1.25)),
            ("y", Value::Float(-2.5e-3)),
            ("name", Value::Str("héllo")),
            (
                "v",
                Value::Array(ArrayRef::new(Dtype::F32, &[3], &vb).unwrap()),
            ),
            (
                "m",
                Value::Array(ArrayRef::new(Dtype::U16, &[3, 2], &mb).unwrap()),
            ),
            (
                "t",
                Value::Array(ArrayRef::new(Dtype::U8, &[2, 2, 2], &tb).unwrap()),
            ),
        ])
        .unwrap();
        dw.finalize();
        dw.write_named(&[("c", Value::Int(5))]).unwrap();
        dw.finalize();

        let (a, b) = (typed_mem.bytes(), dyn_mem.bytes());
        assert_eq!(first_diff(&a, &b), None, "{mode:?}");

        // The typed reader reads back what was written, from either segment.
        let mut tr = Reader::<Everything>::open(dyn_mem.region()).unwrap();
        let mut buf = [0u8; Everything::SNAPSHOT_LEN];
        let snap = tr.try_read(&mut buf, LATEST).unwrap();
        let out = snap.record().unwrap();
        let mut want = rec.clone();
        want.c = 5;
        assert_eq!(out, want);
        // The last record wrote `c` only (single-slot `finalize` commits nothing).
        assert!(snap.status(Everything::c).modified);
        assert!(!snap.status(Everything::name).modified);
        assert!(snap.status(Everything::name).valid());
    }
}

/// Regression: a string whose unused tail lies inside one word and ends at an offset that
/// is not 4-aligned (here `s` spans bytes 42..50 of the slot and "🌍世", 7 bytes, leaves
/// byte 49).
/// Zeroing that tail used to hit the region's alignment assertion.
#[test]
fn string_tail_inside_one_unaligned_word() {
    const F: &[FieldDef] = &[
        FieldDef::new("b1", Kind::Scalar(Dtype::U8)),
        FieldDef::new("b2", Kind::Scalar(Dtype::U8)),
        FieldDef::new("s", Kind::str(2)),
    ];
    assert_eq!(Layout::new(F).unwrap().offset(2), 42);
    let mem = Mem::for_schema(F, Mode::Single);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), F, Mode::Single).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), F).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    for s in ["🌍世", "🌍🌍", "ab", "é", "🌍", ""] {
        w.write_fields(&[(1, Value::UInt(7)), (2, Value::Str(s))])
            .unwrap();
        let snap = r.try_read(&mut buf, PLAIN).unwrap();
        assert_eq!(snap.get(2).unwrap(), FieldValue::Str(s));
        assert_eq!(snap.get(1).unwrap(), FieldValue::UInt(7));
        // The bytes after the value inside the field are zero.
        let raw = &buf[42..50];
        assert!(raw[s.len()..].iter().all(|&b| b == 0), "{s:?}: {raw:?}");
    }
}
