//! Focused tests of the seqlock and the commit numbering: smoke, commit-counter
//! wrap-around in both modes, and a writer abandoned mid-write.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{Dynamic, FieldValue, Mode, ReadOptions, Reader, Value, Writer};

const RESET: ReadOptions = ReadOptions {
    latest: false,
    reset_modified: true,
};
const LATEST: ReadOptions = ReadOptions {
    latest: true,
    reset_modified: false,
};

fn f(v: FieldValue<'_>) -> f64 {
    match v {
        FieldValue::Float(x) => x,
        other => panic!("expected a float, got {other:?}"),
    }
}

fn s(v: FieldValue<'_>) -> String {
    match v {
        FieldValue::Str(x) => x.to_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

#[test]
fn smoke_single_slot_seq_and_head() {
    let mem = Mem::for_schema(SENSOR, Mode::Single);
    let g = Geo::new(SENSOR, Mode::Single);
    let mut sut = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, Mode::Single).unwrap();
    let mut reader = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; reader.snapshot_len()];

    // The empty record of a fresh segment: commit 0, every field unwritten.
    let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!(snap.commit(), 0);
    assert!((0..4).all(|i| snap.status(i).unwritten()));

    for k in 1..=5u32 {
        sut.write_named(&[
            ("temperature", Value::Float(k as f64)),
            ("status_msg", Value::Str(&format!("rec {k}"))),
        ])
        .unwrap();
        assert_eq!(sut.head(), k);
        assert_eq!(mem.u32_at(HEAD), k);
        // Commit k lives in buffer k % 2; its seq is even and counts its uses.
        let base = g.buffer(k % 2);
        let uses = k.div_ceil(2);
        assert_eq!(mem.u32_at(base + SLOT_SEQ), 2 * uses, "seq of commit {k}");
        assert_eq!(mem.u32_at(base + SLOT_COMMIT), k);
        assert_eq!(mem.u32_at(base + SLOT_FLAGS), 1);

        let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!(snap.commit(), k);
        assert_eq!(f(snap.get(0).unwrap()), k as f64);
        assert_eq!(s(snap.get(3).unwrap()), format!("rec {k}"));
        assert!(snap.status(0).valid() && snap.status(0).modified);
        assert!(snap.status(1).unwritten() && !snap.status(1).modified);
    }
}

#[test]
fn smoke_fifo_commits_in_order() {
    let mode = Mode::Fifo { slots: 3 };
    let mem = Mem::for_schema(SENSOR, mode);
    let mut sut = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, mode).unwrap();
    let mut reader = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; reader.snapshot_len()];
    assert_eq!(
        reader.try_read(&mut buf, ReadOptions::default()).err(),
        Some(flexshm_core::Error::NoRecord)
    );
    sut.write_fields(&[(1, Value::Float(1.0))]).unwrap();
    // Staged, not committed: invisible.
    assert_eq!(mem.u32_at(HEAD), 0);
    assert!(!reader.has_new());
    assert_eq!(sut.finalize(), 1);
    assert!(reader.has_new());
    sut.write_fields(&[(1, Value::Float(2.0))]).unwrap();
    assert_eq!(sut.finalize(), 2);
    for k in 1..=2u32 {
        let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!((snap.commit(), snap.lost()), (k, 0));
        assert_eq!(f(snap.get(1).unwrap()), k as f64);
    }
    assert!(!reader.has_new());
}

/// Single-slot mode across the wrap of the commit counter: 2 buffers, commits
/// `M-3, M-2, M-1, 0, 1, 2` with `M = modulus(2)`.
#[test]
fn wrap_around_single_slot() {
    let mode = Mode::Single;
    let mem = Mem::for_schema(SENSOR, mode);
    let g = Geo::new(SENSOR, mode);
    let m = modulus(g.nbuf);
    {
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, mode).unwrap();
        w.write_named(&[("pressure", Value::Float(7.0))]).unwrap();
        w.write_named(&[("timestamp", Value::Float(8.0))]).unwrap();
        w.write_named(&[("status_msg", Value::Str("before"))])
            .unwrap();
        assert_eq!(w.head(), 3);
    }
    // 3 + d == m - 3, and d is a multiple of 2.
    renumber(&mem, &g, m - 6);
    assert_eq!(mem.u32_at(HEAD), m - 3);

    let mut sut = Writer::<Dynamic<_>>::attach(mem.region(), SENSOR).unwrap();
    assert_eq!(sut.head(), m - 3);
    let mut plain = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut tracker = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; plain.snapshot_len()];
    let snap = tracker.try_read(&mut buf, RESET).unwrap();
    assert_eq!(snap.commit(), m - 3);
    assert_eq!(s(snap.get(3).unwrap()), "before");

    let expected = [m - 2, m - 1, 0, 1, 2];
    for (k, &c) in expected.iter().enumerate() {
        sut.write_named(&[("temperature", Value::Float(k as f64))])
            .unwrap();
        assert_eq!(sut.head(), c);
        assert_eq!(mem.u32_at(HEAD), c);
        let snap = plain.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!(snap.commit(), c);
        assert_eq!(f(snap.get(0).unwrap()), k as f64);
        assert!(snap.status(0).modified);
        // Carried over, unchanged across the wrap.
        assert_eq!(f(snap.get(1).unwrap()), 7.0);
        assert_eq!(f(snap.get(2).unwrap()), 8.0);
        assert_eq!(s(snap.get(3).unwrap()), "before");
        assert!(!snap.status(1).modified && !snap.status(3).modified);
        if c == 0 {
            sut.write_named(&[("status_msg", Value::Str("after wrap"))])
                .unwrap();
            let snap = plain.try_read(&mut buf, ReadOptions::default()).unwrap();
            assert_eq!(snap.commit(), 1);
            assert!(snap.status(3).modified && !snap.status(0).modified);
            break;
        }
    }
    // The tracking reader last looked at m - 3; since then temperature and status_msg
    // were written (across the wrap), pressure and timestamp were not.
    let snap = tracker.try_read(&mut buf, RESET).unwrap();
    assert_eq!(snap.commit(), 1);
    let modified: Vec<bool> = (0..4).map(|i| snap.status(i).modified).collect();
    assert_eq!(modified, [true, false, false, true]);
    assert_eq!(s(snap.get(3).unwrap()), "after wrap");
    // Nothing new since: nothing modified.
    let snap = tracker.try_read(&mut buf, RESET).unwrap();
    assert_eq!(snap.info().modified, 0);
}

/// FIFO mode across the wrap: 4 slots (5 buffers). A reader that keeps up sees every
/// record in order through `M-1 -> 0`; a reader that falls behind across the wrap is
/// told exactly how many records it lost.
#[test]
fn wrap_around_fifo_order_and_losses() {
    let mode = Mode::Fifo { slots: 4 };
    let mem = Mem::for_schema(SENSOR, mode);
    let g = Geo::new(SENSOR, mode);
    let m = modulus(g.nbuf);
    {
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, mode).unwrap();
        for k in 1..=2 {
            w.write_fields(&[(0, Value::Float(-(k as f64)))]).unwrap();
            w.finalize();
        }
    }
    // 2 + d == m - 3, d a multiple of 5.
    renumber(&mem, &g, m - 5);
    let mut sut = Writer::<Dynamic<_>>::attach(mem.region(), SENSOR).unwrap();
    assert_eq!(sut.head(), m - 3);
    let mut fast = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut slow = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; fast.snapshot_len()];

    // Both start at the oldest record still in the ring.
    for r in [&mut fast, &mut slow] {
        for (c, v) in [(m - 4, -1.0), (m - 3, -2.0)] {
            let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
            assert_eq!((snap.commit(), snap.lost()), (c, 0));
            assert_eq!(f(snap.get(0).unwrap()), v);
        }
    }

    // Twelve records, values 0..12, commits m-2, m-1, 0, 1, ..., 9.
    let commit_of = |k: u32| ((m as u64 - 2 + k as u64) % m as u64) as u32;
    for k in 0..12u32 {
        sut.write_fields(&[(0, Value::Float(k as f64))]).unwrap();
        assert_eq!(sut.finalize(), commit_of(k));
        if k % 2 == 1 {
            for j in k - 1..=k {
                let snap = fast.try_read(&mut buf, ReadOptions::default()).unwrap();
                assert_eq!((snap.commit(), snap.lost()), (commit_of(j), 0));
                assert_eq!(f(snap.get(0).unwrap()), j as f64);
            }
        }
    }
    assert_eq!(fast.lost_total(), 0);

    // `slow` expected m-2 next; the ring now holds commits 6..=9 (values 8..=11), so it
    // lost m-2, m-1, 0, ..., 5: eight records.
    let snap = slow.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (6, 8));
    assert_eq!(f(snap.get(0).unwrap()), 8.0);
    for (c, v) in [(7, 9.0), (8, 10.0), (9, 11.0)] {
        let snap = slow.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!((snap.commit(), snap.lost()), (c, 0));
        assert_eq!(f(snap.get(0).unwrap()), v);
    }
    assert_eq!(slow.lost_total(), 8);
    assert_eq!(
        slow.try_read(&mut buf, ReadOptions::default()).err(),
        Some(flexshm_core::Error::NoRecord)
    );
    // `latest` across the wrap is the head.
    let mut late = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let snap = late.try_read(&mut buf, LATEST).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (9, 0));
}

/// Runs the same writes on a fresh segment; `crash` decides whether the first writer
/// stops mid-write before a new writer attaches.
fn fifo_history(crash: bool) -> (Mem, Vec<u8>) {
    let mode = Mode::Fifo { slots: 2 };
    let mem = Mem::for_schema(SENSOR, mode);
    {
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, mode).unwrap();
        w.write_named(&[
            ("temperature", Value::Float(20.5)),
            ("pressure", Value::Float(1000.0)),
            ("timestamp", Value::Float(1.0)),
            ("status_msg", Value::Str("first")),
        ])
        .unwrap();
        w.finalize();
        w.write_named(&[("pressure", Value::Float(1001.0))])
            .unwrap();
        w.finalize();
        if crash {
            // Staged, never finalized: buffer 0 is left with an odd seq and new bytes.
            w.write_named(&[
                ("temperature", Value::Float(99.0)),
                ("status_msg", Value::Str("never committed")),
            ])
            .unwrap();
            assert!(w.is_staging());
        }
    }
    let before_attach = mem.bytes();
    (mem, before_attach)
}

#[test]
fn writer_abandoned_mid_write_fifo() {
    let mode = Mode::Fifo { slots: 2 };
    let g = Geo::new(SENSOR, mode);
    let (mem, _) = fifo_history(true);
    assert_eq!(mem.u32_at(g.buffer(0) + SLOT_SEQ) & 1, 1, "left mid-write");
    assert_eq!(mem.u32_at(HEAD), 2);

    // The last committed record stays readable, for new and old readers alike.
    let mut reader = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; reader.snapshot_len()];
    let snap = reader.try_read(&mut buf, LATEST).unwrap();
    assert_eq!(snap.commit(), 2);
    assert_eq!(f(snap.get(0).unwrap()), 20.5);
    assert_eq!(f(snap.get(1).unwrap()), 1001.0);
    assert_eq!(s(snap.get(3).unwrap()), "first");

    // Attaching writes nothing.
    let before = mem.bytes();
    let mut sut = Writer::<Dynamic<_>>::attach(mem.region(), SENSOR).unwrap();
    assert_eq!(mem.bytes(), before);
    assert_eq!(sut.head(), 2);
    assert!(!sut.is_staging());
    sut.write_named(&[("timestamp", Value::Float(3.0))])
        .unwrap();
    assert_eq!(sut.finalize(), 3);

    let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!(snap.commit(), 3);
    assert_eq!(f(snap.get(0).unwrap()), 20.5, "abandoned staging leaked");
    assert_eq!(f(snap.get(1).unwrap()), 1001.0);
    assert_eq!(f(snap.get(2).unwrap()), 3.0);
    assert_eq!(s(snap.get(3).unwrap()), "first");
    let modified: Vec<bool> = (0..4).map(|i| snap.status(i).modified).collect();
    assert_eq!(modified, [false, false, true, false]);

    // The repaired buffer is byte for byte what a writer that never stopped would have
    // produced.
    let (clean, _) = fifo_history(false);
    {
        let mut w = Writer::<Dynamic<_>>::attach(clean.region(), SENSOR).unwrap();
        w.write_named(&[("timestamp", Value::Float(3.0))]).unwrap();
        w.finalize();
    }
    let (a, b) = (mem.bytes(), clean.bytes());
    assert_eq!(first_diff(&a, &b), None, "repaired segment differs");
}

/// Single-slot mode: a writer that died while filling the spare buffer (seq odd, payload
/// or payload and metadata half overwritten) is simulated by poking the buffer. Readers
/// keep reading the last record; a new writer rebuilds the buffer completely before
/// publishing it, including fields whose metadata still looks unchanged.
#[test]
fn writer_abandoned_mid_write_single() {
    for garble_meta in [false, true] {
        abandoned_single(garble_meta);
    }
}

fn abandoned_single(garble_meta: bool) {
    let mode = Mode::Single;
    let g = Geo::new(SENSOR, mode);
    let layout = flexshm_core::Layout::new(SENSOR).unwrap();
    let history = |mem: &Mem| {
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, mode).unwrap();
        w.write_named(&[
            ("temperature", Value::Float(1.5)),
            ("pressure", Value::Float(2.5)),
            ("status_msg", Value::Str("ok")),
        ])
        .unwrap();
        w.write_named(&[("temperature", Value::Float(3.5))])
            .unwrap();
    };
    let mem = Mem::for_schema(SENSOR, mode);
    history(&mem);
    // Commit 2 is in buffer 0; the dead writer was filling buffer 1 for commit 3. That
    // buffer still holds commit 1, whose pressure and status_msg metadata equal commit
    // 2's: only a full rebuild replaces their garbled payload.
    let spare = g.buffer(1);
    let seq = mem.u32_at(spare + SLOT_SEQ);
    assert_eq!(seq & 1, 0);
    mem.set_u32(spare + SLOT_SEQ, seq | 1);
    let from = if garble_meta { 16 } else { layout.offset(0) };
    for off in (spare + from..spare + g.stride).step_by(4) {
        mem.set_u32(off, 0xABAB_ABAB);
    }

    let mut reader = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let mut buf = vec![0u8; reader.snapshot_len()];
    let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!(snap.commit(), 2);
    assert_eq!(f(snap.get(0).unwrap()), 3.5);

    let mut sut = Writer::<Dynamic<_>>::attach(mem.region(), SENSOR).unwrap();
    sut.write_named(&[("timestamp", Value::Float(9.0))])
        .unwrap();
    let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!(snap.commit(), 3);
    assert_eq!(f(snap.get(0).unwrap()), 3.5);
    assert_eq!(f(snap.get(1).unwrap()), 2.5);
    assert_eq!(f(snap.get(2).unwrap()), 9.0);
    assert_eq!(s(snap.get(3).unwrap()), "ok");

    let clean = Mem::for_schema(SENSOR, mode);
    history(&clean);
    Writer::<Dynamic<_>>::attach(clean.region(), SENSOR)
        .unwrap()
        .write_named(&[("timestamp", Value::Float(9.0))])
        .unwrap();
    // Everything but the trailing padding of the garbled buffer must match: the writer
    // rebuilds the record (slot_size bytes), not the padding to the 64-byte stride.
    let slot_size = layout.slot_size();
    let (a, b) = (mem.bytes(), clean.bytes());
    assert_eq!(
        first_diff(&a[..spare + slot_size], &b[..spare + slot_size]),
        None,
        "garble_meta {garble_meta}"
    );
}
