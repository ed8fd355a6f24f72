//! Model-checked tests of the seqlock and of the FIFO index protocol.
//!
//! Run with `make loom` (`RUSTFLAGS="--cfg loom" cargo test -p flexshm-core --release
//! --lib loom`). The region is a slice of loom atomics, so every load, store and fence
//! of the writer and the reader is explored by loom under the C11 memory model, with
//! the preemption bound below keeping each model to a few minutes at most.

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::vec::Vec;

use loom::sync::atomic::AtomicU32;

use crate::schema::{Dtype, FieldDef, Kind};
use crate::{Dynamic, Error, FieldValue, Mode, ReadOptions, Reader, Region, Value, Writer};

/// Two u32 fields that every write sets to the same value: the commit number.
const PAIR: &[FieldDef] = &[
    FieldDef::new("a", Kind::Scalar(Dtype::U32)),
    FieldDef::new("b", Kind::Scalar(Dtype::U32)),
];

/// One u32 field holding the commit number of the record it was written in.
const ONE: &[FieldDef] = &[FieldDef::new("n", Kind::Scalar(Dtype::U32))];

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        // Enough to interleave a whole commit inside a reader's copy (the races that
        // matter); LOOM_MAX_PREEMPTIONS overrides it.
        b.preemption_bound = Some(2);
    }
    b
}

/// A zeroed segment of `fields` in `mode`, as loom atomics.
fn segment(fields: &'static [FieldDef], mode: Mode) -> Arc<Vec<AtomicU32>> {
    let layout = crate::Layout::new(fields).unwrap();
    let len = layout.segment_size(mode.slots()).unwrap();
    let words: Vec<AtomicU32> = (0..len / 4).map(|_| AtomicU32::new(0)).collect();
    let words = Arc::new(words);
    Writer::<Dynamic<_>>::create(Region::from_loom_words(&words), fields, mode).unwrap();
    words
}

fn as_u64(v: FieldValue<'_>) -> u64 {
    match v {
        FieldValue::UInt(u) => u,
        other => panic!("expected an unsigned field, got {other:?}"),
    }
}

/// Seqlock, single-slot mode: the writer commits records whose two fields both hold the
/// commit number; a reader must never accept a copy in which they disagree, nor report
/// a commit number other than the one the record was written with, and the commits it
/// sees never go backwards.
#[test]
fn loom_seqlock_single_never_torn() {
    // Executions in which a read concurrent with the writer returned one of its records.
    static OVERLAPPED: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        let words = segment(PAIR, Mode::Single);
        let w = words.clone();
        let writer = loom::thread::spawn(move || {
            let mut sut = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), PAIR).unwrap();
            for k in 1..=2u64 {
                sut.write_fields(&[(0, Value::UInt(k)), (1, Value::UInt(k))])
                    .unwrap();
            }
        });
        let region = Region::from_loom_words(&words);
        let mut reader = Reader::<Dynamic<_>>::open_with(region, PAIR).unwrap();
        reader.set_retries(2);
        let mut buf = [0u8; 64];
        let mut last = 0u32;
        for _ in 0..2 {
            match reader.try_read(&mut buf, ReadOptions::default()) {
                Ok(snap) => {
                    let a = as_u64(snap.get(0).unwrap());
                    let b = as_u64(snap.get(1).unwrap());
                    assert_eq!(a, b, "torn record accepted");
                    assert_eq!(a, snap.commit() as u64, "commit number of another record");
                    assert!(snap.commit() >= last, "commits went backwards");
                    if snap.commit() > 0 {
                        OVERLAPPED.fetch_add(1, StdOrdering::Relaxed);
                    }
                    last = snap.commit();
                }
                Err(Error::Contended) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        writer.join().unwrap();
        // Once the writer is done, the newest record is readable and complete.
        let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
        assert_eq!(snap.commit(), 2);
        assert_eq!(as_u64(snap.get(0).unwrap()), 2);
        assert_eq!(as_u64(snap.get(1).unwrap()), 2);
    });
    assert!(OVERLAPPED.load(StdOrdering::Relaxed) > 0);
}

/// Seqlock with a partial write: field `b` is carried over from the previous buffer
/// while `a` is rewritten. A reader sees either the old record (a=1, b=1) or the new one
/// (a=2, b=1), never a mix with a half-copied carry-over.
#[test]
fn loom_seqlock_single_carry_over() {
    builder().check(|| {
        let words = segment(PAIR, Mode::Single);
        {
            let mut w =
                Writer::<Dynamic<_>>::attach(Region::from_loom_words(&words), PAIR).unwrap();
            w.write_fields(&[(0, Value::UInt(1)), (1, Value::UInt(1))])
                .unwrap();
        }
        let w = words.clone();
        let writer = loom::thread::spawn(move || {
            let mut sut = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), PAIR).unwrap();
            sut.write_fields(&[(0, Value::UInt(2))]).unwrap();
        });
        let mut reader =
            Reader::<Dynamic<_>>::open_with(Region::from_loom_words(&words), PAIR).unwrap();
        reader.set_retries(2);
        let mut buf = [0u8; 64];
        match reader.try_read(&mut buf, ReadOptions::default()) {
            Ok(snap) => {
                let a = as_u64(snap.get(0).unwrap());
                let b = as_u64(snap.get(1).unwrap());
                assert_eq!(b, 1);
                assert_eq!(a, snap.commit() as u64);
                assert!(snap.status(0).modified);
                assert_eq!(snap.status(1).modified, a == 1);
            }
            Err(Error::Contended) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
        writer.join().unwrap();
    });
}

/// FIFO index protocol: a ring of 2 slots (3 buffers) holding commit 1, a reader opened
/// then (its first record is commit 1), a writer committing 3 more records (field =
/// commit number), and the reader taking the next unread record twice. Every record it
/// accepts is intact and in order, and whenever it was lapped the loss count says
/// exactly how many records it skipped: commit == expected + lost.
#[test]
fn loom_fifo_lapped_loss_counts() {
    // Executions in which a concurrent read was lapped (outside the model: plain std).
    static LAPPED: AtomicUsize = AtomicUsize::new(0);
    builder().check(|| {
        let words = segment(ONE, Mode::Fifo { slots: 2 });
        {
            let mut w = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&words), ONE).unwrap();
            w.write_fields(&[(0, Value::UInt(1))]).unwrap();
            assert_eq!(w.finalize(), 1);
        }
        let mut reader =
            Reader::<Dynamic<_>>::open_with(Region::from_loom_words(&words), ONE).unwrap();
        reader.set_retries(2);
        let w = words.clone();
        let writer = loom::thread::spawn(move || {
            let mut sut = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), ONE).unwrap();
            for k in 2..=4u64 {
                sut.write_fields(&[(0, Value::UInt(k))]).unwrap();
                let c = sut.finalize();
                assert_eq!(c as u64, k);
            }
        });
        let mut buf = [0u8; 64];
        // The commit this reader expects next.
        let mut expected = 1u32;
        let mut lost_sum = 0u64;
        for _ in 0..2 {
            match reader.try_read(&mut buf, ReadOptions::default()) {
                Ok(snap) => {
                    let n = as_u64(snap.get(0).unwrap());
                    assert_eq!(n, snap.commit() as u64, "record does not match its commit");
                    assert!(snap.status(0).modified);
                    assert_eq!(snap.commit(), expected + snap.lost(), "loss count wrong");
                    if snap.lost() > 0 {
                        LAPPED.fetch_add(1, StdOrdering::Relaxed);
                    }
                    lost_sum += snap.lost() as u64;
                    expected = snap.commit() + 1;
                }
                // Nothing newer yet, or the writer overtook both attempts.
                Err(Error::NoRecord | Error::Contended) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        assert_eq!(reader.lost_total(), lost_sum);
        writer.join().unwrap();
        // Quiescent (the ring holds 3 and 4): the reader continues in order from where
        // it stopped, and is told what it lost.
        if expected <= 4 {
            let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
            assert_eq!(snap.commit(), expected.max(3));
            assert_eq!(snap.lost(), 3u32.saturating_sub(expected));
        }
    });
    assert!(
        LAPPED.load(StdOrdering::Relaxed) > 0,
        "no interleaving lapped the reader"
    );
}

/// FIFO `latest`: the newest record is returned intact, reading it never counts a loss,
/// and the commits a reader gets never go backwards.
#[test]
fn loom_fifo_latest() {
    builder().check(|| {
        let words = segment(ONE, Mode::Fifo { slots: 2 });
        let w = words.clone();
        let writer = loom::thread::spawn(move || {
            let mut sut = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), ONE).unwrap();
            for k in 1..=3u64 {
                sut.write_fields(&[(0, Value::UInt(k))]).unwrap();
                sut.finalize();
            }
        });
        let mut reader =
            Reader::<Dynamic<_>>::open_with(Region::from_loom_words(&words), ONE).unwrap();
        reader.set_retries(2);
        let mut buf = [0u8; 64];
        let latest = ReadOptions {
            latest: true,
            ..ReadOptions::default()
        };
        let mut last = 0;
        for _ in 0..2 {
            match reader.try_read(&mut buf, latest) {
                Ok(snap) => {
                    assert_eq!(as_u64(snap.get(0).unwrap()), snap.commit() as u64);
                    assert_eq!(snap.lost(), 0);
                    assert!(snap.commit() > last);
                    last = snap.commit();
                }
                Err(Error::Contended | Error::NoRecord) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        writer.join().unwrap();
    });
}

/// A writer that closes record 2 (seq even, COMMITTED) and stops before publishing it,
/// then a writer that takes over (after the first one is gone: its thread was joined)
/// and commits one more record. A reader running across both sees every commit number
/// at most once, in order, always with the value the one writer gave it, and ends up with
/// the new writer's record: the closed record was rolled forward, not renumbered.
#[test]
fn loom_takeover_rolls_a_closed_record_forward() {
    builder().check(|| {
        let words = segment(ONE, Mode::Fifo { slots: 3 });
        {
            let mut w = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&words), ONE).unwrap();
            w.write_fields(&[(0, Value::UInt(101))]).unwrap();
            assert_eq!(w.finalize(), 1);
        }
        let mut reader =
            Reader::<Dynamic<_>>::open_with(Region::from_loom_words(&words), ONE).unwrap();
        reader.set_retries(2);
        let w = words.clone();
        let writers = loom::thread::spawn(move || {
            let old = loom::thread::spawn({
                let w = w.clone();
                move || {
                    let mut sut =
                        Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), ONE).unwrap();
                    sut.write_fields(&[(0, Value::UInt(102))]).unwrap();
                    sut.close_without_publishing();
                }
            });
            // The old writer has exited: its stores happen-before the takeover.
            old.join().unwrap();
            let mut new = Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), ONE).unwrap();
            assert_eq!(new.head(), 2, "the closed record was published");
            new.write_fields(&[(0, Value::UInt(203))]).unwrap();
            assert_eq!(new.finalize(), 3);
        });
        let mut buf = [0u8; 64];
        let expected = |c: u32| match c {
            1 => 101,
            2 => 102,
            3 => 203,
            other => panic!("commit {other} was never made"),
        };
        let mut last = 0u32;
        for _ in 0..2 {
            match reader.try_read(&mut buf, ReadOptions::default()) {
                Ok(snap) => {
                    assert_eq!(as_u64(snap.get(0).unwrap()), expected(snap.commit()));
                    assert_eq!(snap.commit(), last + 1, "a commit skipped or repeated");
                    last = snap.commit();
                }
                Err(Error::NoRecord | Error::Contended) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        writers.join().unwrap();
        while last < 3 {
            let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
            assert_eq!(snap.commit(), last + 1);
            assert_eq!(as_u64(snap.get(0).unwrap()), expected(snap.commit()));
            last = snap.commit();
        }
    });
}

/// Why a takeover needs every store of the previous writer to happen-before it
/// (docs/PROTOCOL.md §12.3). Here the previous writer is judged gone while it still runs:
/// it stages the next record (seq made odd, then the carry-over and `a`), and a new
/// writer attaches with nothing ordering the old writer's stores before it, stages the
/// same buffer (its seq load may see the old writer's odd value, so it "keeps" it odd)
/// and commits. The old writer's late store of `a` lands in a buffer the new writer has
/// closed with an even seq a reader cannot tell from a clean one: loom finds a reader
/// that accepts a torn record. With the requirement met (the old writer's thread joined
/// first, `loom_takeover_rolls_a_closed_record_forward`) it cannot happen.
#[test]
#[should_panic(expected = "torn record accepted")]
fn loom_takeover_without_happens_before_can_tear() {
    builder().check(|| {
        let words = segment(PAIR, Mode::Fifo { slots: 2 });
        {
            let mut w =
                Writer::<Dynamic<_>>::attach(Region::from_loom_words(&words), PAIR).unwrap();
            w.write_fields(&[(0, Value::UInt(1)), (1, Value::UInt(1))])
                .unwrap();
            w.finalize();
        }
        let mut reader =
            Reader::<Dynamic<_>>::open_with(Region::from_loom_words(&words), PAIR).unwrap();
        reader.set_retries(1);
        let old = {
            let w = words.clone();
            loom::thread::spawn(move || {
                // Still running: stages record 2 and never commits it.
                let mut sut =
                    Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), PAIR).unwrap();
                sut.write_fields(&[(0, Value::UInt(5))]).unwrap();
            })
        };
        let new = {
            let w = words.clone();
            loom::thread::spawn(move || {
                let mut sut =
                    Writer::<Dynamic<_>>::attach(Region::from_loom_words(&w), PAIR).unwrap();
                sut.write_fields(&[(0, Value::UInt(2)), (1, Value::UInt(2))])
                    .unwrap();
                sut.finalize();
            })
        };
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            if let Ok(snap) = reader.try_read(&mut buf, ReadOptions::default()) {
                let a = as_u64(snap.get(0).unwrap());
                let b = as_u64(snap.get(1).unwrap());
                assert_eq!(a, b, "torn record accepted");
            }
        }
        old.join().unwrap();
        new.join().unwrap();
    });
}
