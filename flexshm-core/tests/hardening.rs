//! Regression tests for what a crash or a hostile process can do to a segment's readers
//! (docs/PROTOCOL.md §12.3, §13.2, §14): a record closed but never published, a reader
//! lapped by half the commit-number modulus, a record that fails validation, a buffer
//! whose COMMITTED flag was cleared, and staging from an iterator.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Mode, ReadOptions, Reader, Value, Writer,
};

/// One u32 field: each record stores a value the test chooses.
const ONE: &[FieldDef] = &[FieldDef::new("n", Kind::Scalar(Dtype::U32))];
const SLOTS: u32 = 4;
const FIFO: Mode = Mode::Fifo { slots: SLOTS };
const PLAIN: ReadOptions = ReadOptions {
    latest: false,
    reset_modified: false,
};
const LATEST: ReadOptions = ReadOptions {
    latest: true,
    reset_modified: false,
};

type DynReader<'r> = Reader<'r, Dynamic<&'static [FieldDef]>>;
type DynWriter<'r> = Writer<'r, Dynamic<&'static [FieldDef]>>;

fn commit(w: &mut DynWriter<'_>, n: u32) -> u32 {
    w.write_fields(&[(0, Value::UInt(n as u64))]).unwrap();
    w.finalize()
}

/// (commit, value, lost) of the next read.
fn read(r: &mut DynReader<'_>, opts: ReadOptions) -> Result<(u32, u64, u32), Error> {
    let mut buf = [0u8; 64];
    let snap = r.try_read(&mut buf, opts)?;
    match snap.get(0)? {
        FieldValue::UInt(v) => Ok((snap.commit(), v, snap.lost())),
        other => panic!("unexpected value {other:?}"),
    }
}

/// A writer that stops after closing a buffer (its seq even, COMMITTED, commit word set)
/// but before storing `head`: a reader's fast path may already return that record. The
/// writer that takes over must publish it, not number a different record the same.
#[test]
fn a_closed_unpublished_record_is_rolled_forward_not_renumbered() {
    let mem = Mem::for_schema(ONE, FIFO);
    let mut old = DynWriter::create(mem.region(), ONE, FIFO).unwrap();
    let mut fast = DynReader::open_with(mem.region(), ONE).unwrap();
    for n in 1..=3 {
        commit(&mut old, 100 + n);
    }
    for n in 1..=3 {
        assert_eq!(read(&mut fast, PLAIN).unwrap(), (n, 100 + n as u64, 0));
    }
    // Record 4 is closed, then the writer "dies" before W7: head stays 3.
    assert_eq!(commit(&mut old, 104), 4);
    // The writer stops here (it is not used again).
    mem.set_u32(HEAD, 3);
    // The fast path (which does not read head) returns record 4.
    assert_eq!(read(&mut fast, PLAIN).unwrap(), (4, 104, 0));
    // A reader that goes through head does not see it yet.
    let mut slow = DynReader::open_with(mem.region(), ONE).unwrap();
    assert_eq!(slow.head(), 3);

    let mut new = DynWriter::attach(mem.region(), ONE).unwrap();
    assert_eq!(
        new.head(),
        4,
        "the closed record was published by the new writer"
    );
    assert_eq!(commit(&mut new, 205), 5);
    // Both readers agree on every commit number, and nobody skips record 5. (`slow`
    // opened on records 1..=3; by its first read the ring holds 2..=5: record 1 is lost.)
    assert_eq!(read(&mut fast, PLAIN).unwrap(), (5, 205, 0));
    let seen: Vec<_> = (0..4).map(|_| read(&mut slow, PLAIN).unwrap()).collect();
    assert_eq!(
        seen,
        vec![(2, 102, 1), (3, 103, 0), (4, 104, 0), (5, 205, 0)]
    );
}

/// The same in single-slot mode: the record whose buffer was closed keeps its number.
#[test]
fn single_slot_closed_record_is_rolled_forward() {
    let mem = Mem::for_schema(ONE, Mode::Single);
    let mut old = DynWriter::create(mem.region(), ONE, Mode::Single).unwrap();
    old.write_fields(&[(0, Value::UInt(1))]).unwrap();
    old.write_fields(&[(0, Value::UInt(2))]).unwrap();
    // The writer stops here (it is not used again).
    mem.set_u32(HEAD, 1);
    let mut new = DynWriter::attach(mem.region(), ONE).unwrap();
    assert_eq!(new.head(), 2);
    new.write_fields(&[(0, Value::UInt(3))]).unwrap();
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    assert_eq!(read(&mut r, PLAIN).unwrap(), (3, 3, 0));
}

/// A buffer left mid-write (seq odd) is not rolled forward: the record was never closed.
#[test]
fn a_record_left_mid_write_is_not_rolled_forward() {
    let mem = Mem::for_schema(ONE, FIFO);
    let g = Geo::new(ONE, FIFO);
    let mut old = DynWriter::create(mem.region(), ONE, FIFO).unwrap();
    commit(&mut old, 1);
    old.write_fields(&[(0, Value::UInt(2))]).unwrap(); // staged, seq odd
                                                       // The writer stops here (it is not used again).
    assert_eq!(mem.u32_at(g.buffer(2) + SLOT_SEQ) & 1, 1);
    let new = DynWriter::attach(mem.region(), ONE).unwrap();
    assert_eq!(new.head(), 1);
}

/// Commit count of a lap that is `behind` commits past a reader at `next`: renumbers a
/// quiescent segment so that its newest record is `behind` commits after `next`.
fn lap(mem: &Mem, g: &Geo, w_head: u32, next: u32, behind: u32) {
    let m = modulus(g.nbuf);
    let want = (next as u64 + behind as u64) % m as u64;
    // Shift by a multiple of the buffer count, so every record stays in its buffer.
    let d = ((want + m as u64 - w_head as u64) % m as u64) as u32;
    let d = d - d % g.nbuf;
    renumber(mem, g, d);
}

/// A reader that fell between half the modulus and the modulus behind (a pause of
/// about 107 s at 20 M records/s) used to take itself to be *ahead* of head and report
/// nothing new until head passed it again. A cursor more than 2 ahead is lapped.
#[test]
fn a_reader_lapped_by_half_the_modulus_moves_on_and_reports_the_loss() {
    let g = Geo::new(ONE, FIFO);
    let m = modulus(g.nbuf);
    for behind in [m / 2 + 7, m - 40] {
        let mem = Mem::for_schema(ONE, FIFO);
        let mut w = DynWriter::create(mem.region(), ONE, FIFO).unwrap();
        let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
        for n in 1..=6 {
            commit(&mut w, n);
        }
        // Opened on the empty ring; six commits into four slots lost records 1 and 2.
        assert_eq!(
            read(&mut r, PLAIN).unwrap(),
            (3, 3, 2),
            "oldest of the ring"
        );
        // The writer stops here.
        // The writer went on for `behind` more commits while the reader slept.
        lap(&mem, &g, 6, 4, behind);
        let head = mem.u32_at(HEAD);
        assert!(r.has_new(), "behind {behind}: has_new must see the lap");
        let (c, v, lost) = read(&mut r, PLAIN).unwrap();
        let oldest = ((head as u64 + m as u64 - (SLOTS - 1) as u64) % m as u64) as u32;
        assert_eq!(c, oldest, "behind {behind}: moved to the oldest record");
        assert_eq!(v, 3, "the record stored in that buffer");
        // Beyond half the modulus the exact number is not knowable: saturated.
        assert_eq!(lost, u32::MAX, "behind {behind}");
        assert_eq!(r.lost_total(), 2 + u32::MAX as u64);
        // latest works too (no stall).
        let mut l = DynReader::open_with(mem.region(), ONE).unwrap();
        assert_eq!(read(&mut l, LATEST).unwrap().0, head);
    }
}

/// Below half the modulus the loss is exact (the old rule, unchanged).
#[test]
fn a_reader_lapped_by_less_than_half_the_modulus_gets_the_exact_loss() {
    let g = Geo::new(ONE, FIFO);
    let m = modulus(g.nbuf);
    let mem = Mem::for_schema(ONE, FIFO);
    let mut w = DynWriter::create(mem.region(), ONE, FIFO).unwrap();
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    for n in 1..=6 {
        commit(&mut w, n);
    }
    assert_eq!(read(&mut r, PLAIN).unwrap().0, 3);
    // The writer stops here.
    lap(&mem, &g, 6, 4, m / 2 - 100);
    let head = mem.u32_at(HEAD);
    let behind = ((head as u64 + m as u64 - 4) % m as u64) as u32;
    let (_, _, lost) = read(&mut r, PLAIN).unwrap();
    assert_eq!(lost, behind - (SLOTS - 1));
}

/// A record that fails validation is an error every time it is read, and is not
/// consumed: the cursor moves only past records that were returned.
#[test]
fn a_corrupt_record_is_not_consumed() {
    let mem = Mem::for_schema(ONE, FIFO);
    let g = Geo::new(ONE, FIFO);
    let mut w = DynWriter::create(mem.region(), ONE, FIFO).unwrap();
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    for n in 1..=3 {
        commit(&mut w, n);
    }
    assert_eq!(read(&mut r, PLAIN).unwrap(), (1, 1, 0));
    // Record 2's info word: a length on a scalar (no writer produces that).
    let info = g.buffer(2) + flexshm_core::internal::meta_offset(0) + 4;
    let good = mem.u32_at(info);
    mem.set_u32(info, good | 3);
    for _ in 0..3 {
        assert!(matches!(
            read(&mut r, PLAIN),
            Err(Error::CorruptRecord { .. })
        ));
    }
    assert_eq!(r.lost_total(), 0);
    mem.set_u32(info, good);
    assert_eq!(
        read(&mut r, PLAIN).unwrap(),
        (2, 2, 0),
        "record 2 was not skipped"
    );
    assert_eq!(read(&mut r, PLAIN).unwrap(), (3, 3, 0));
}

/// A window buffer whose COMMITTED flag was cleared (a bit flip, another process): has_new
/// said a record was ready while every read said "no record", so a blocking read spun at
/// full speed for ever. Now has_new and the read agree: the read reports the corruption.
#[test]
fn a_cleared_committed_flag_is_an_error_not_an_endless_no_record() {
    let mem = Mem::for_schema(ONE, FIFO);
    let g = Geo::new(ONE, FIFO);
    let mut w = DynWriter::create(mem.region(), ONE, FIFO).unwrap();
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    for n in 1..=3 {
        commit(&mut w, n);
    }
    assert_eq!(read(&mut r, PLAIN).unwrap(), (1, 1, 0));
    mem.set_u32(g.buffer(2) + SLOT_FLAGS, 0);
    assert!(r.has_new());
    match read(&mut r, PLAIN) {
        Err(Error::CorruptBuffer { commit: 2, .. }) => {}
        other => panic!("expected CorruptBuffer for commit 2, got {other:?}"),
    }
    // A commit word naming a record the writer never made in that buffer.
    mem.set_u32(g.buffer(2) + SLOT_FLAGS, 1);
    mem.set_u32(g.buffer(2) + SLOT_COMMIT, 777);
    assert!(matches!(
        read(&mut r, PLAIN),
        Err(Error::CorruptBuffer { commit: 2, .. })
    ));
}

/// Single-slot: a head buffer holding a commit number the writer could not have put there
/// is an error at once, not 1024 retries reported as contention.
#[test]
fn a_single_slot_buffer_with_a_foreign_commit_number_is_an_error() {
    let mem = Mem::for_schema(ONE, Mode::Single);
    let g = Geo::new(ONE, Mode::Single);
    let mut w = DynWriter::create(mem.region(), ONE, Mode::Single).unwrap();
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    w.write_fields(&[(0, Value::UInt(1))]).unwrap();
    // Same parity as head (1), far from it.
    mem.set_u32(g.buffer(1) + SLOT_COMMIT, 1001);
    assert!(matches!(
        read(&mut r, PLAIN),
        Err(Error::CorruptBuffer { commit: 1, .. })
    ));
}

/// An iterator that yields different items each time it is walked.
#[derive(Clone)]
struct Shifty {
    walk: std::rc::Rc<std::cell::Cell<u32>>,
    at: usize,
}

impl Iterator for Shifty {
    type Item = (usize, Value<'static>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.at == 0 {
            self.walk.set(self.walk.get() + 1);
        }
        self.at += 1;
        match (self.walk.get(), self.at) {
            // First walk: one valid value for the u8 field.
            (1, 1) => Some((0, Value::UInt(3))),
            // Any later walk: out of range for u8, then an index beyond the schema.
            (_, 1) => Some((0, Value::UInt(300))),
            (w, 2) if w > 1 => Some((9, Value::UInt(1))),
            _ => None,
        }
    }
}

/// `write_iter` used to check one walk of a cloned iterator and store another: a value
/// never checked was stored (300 into a u8 read back as 44, flagged valid), and an index
/// beyond the schema panicked mid-staging. It now walks once and stores what it checked.
#[test]
fn write_iter_stores_exactly_what_it_checked() {
    const U8: &[FieldDef] = &[FieldDef::new("b", Kind::Scalar(Dtype::U8))];
    let mem = Mem::for_schema(U8, Mode::Single);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), U8, Mode::Single).unwrap();
    let it = Shifty {
        walk: Default::default(),
        at: 0,
    };
    w.write_iter(it).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), U8).unwrap();
    let mut buf = [0u8; 64];
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!(snap.get(0).unwrap(), FieldValue::UInt(3));
    assert!(snap.status(0).valid());
}

/// More entries than fields: an error, nothing written.
#[test]
fn write_iter_with_too_many_entries_writes_nothing() {
    let mem = Mem::for_schema(ONE, Mode::Single);
    let mut w = DynWriter::create(mem.region(), ONE, Mode::Single).unwrap();
    let before = mem.bytes();
    let many = (0..100).map(|_| (0usize, Value::UInt(1)));
    assert!(matches!(
        w.write_iter(many),
        Err(Error::DuplicateField { .. })
    ));
    assert_eq!(mem.bytes(), before);
}

/// A reader that opens while the writer commits its first records may load `head` before
/// those commits and then look at buffers the writer has filled since. A buffer of the
/// window that holds a *newer* record does not make its commit number a record of the
/// window: in a young ring that number never existed. The reader used to start there
/// (the buffer had COMMITTED) and then reported phantom losses, or with a stale `head`,
/// a "corrupt" buffer (found by the loom model `loom_fifo_latest`).
#[test]
fn a_reader_opening_during_the_first_commits_starts_at_a_real_record() {
    const S: u32 = 2;
    let mode = Mode::Fifo { slots: S };
    let mem = Mem::for_schema(ONE, mode);
    let mut w = DynWriter::create(mem.region(), ONE, mode).unwrap();
    commit(&mut w, 101);
    commit(&mut w, 102);
    // The reader's load of head happened before both commits: head still reads 0.
    mem.set_u32(HEAD, 0);
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    mem.set_u32(HEAD, 2);
    assert_eq!(
        read(&mut r, PLAIN).unwrap(),
        (1, 101, 0),
        "no record was lost"
    );
    assert_eq!(read(&mut r, PLAIN).unwrap(), (2, 102, 0));

    // The same stale head seen by a `latest` read right after the open: nothing to read
    // yet, rather than a corrupt buffer.
    mem.set_u32(HEAD, 0);
    let mut r = DynReader::open_with(mem.region(), ONE).unwrap();
    assert_eq!(read(&mut r, LATEST), Err(Error::NoRecord));
    mem.set_u32(HEAD, 2);
    assert_eq!(read(&mut r, LATEST).unwrap(), (2, 102, 0));
}
