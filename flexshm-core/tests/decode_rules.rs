//! The reader rules of docs/PROTOCOL.md that concern bytes no writer of the protocol
//! leaves: what a reader rejects (§8, §9, §14), what it ignores (§7), and how a FIFO
//! cursor behaves when a read fails or the writer lapped it by more than half the
//! commit-number space (§13.2). Each test builds a segment with the real writer, then
//! changes a few bytes as a faulty or hostile writer could.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::internal::{meta_offset, FLAG_COMMITTED, INFO_TRUNCATED};
use flexshm_core::{
    record, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Layout, Mode, ReadOptions, Reader,
    Value, Writer,
};

const PLAIN: ReadOptions = ReadOptions {
    latest: false,
    reset_modified: false,
};

const FLAGS: &[FieldDef] = &[
    FieldDef::new("flag", Kind::Scalar(Dtype::Bool)),
    FieldDef::new("label", Kind::str(2)),
    FieldDef::new("bits", Kind::array(Dtype::Bool, &[3])),
    FieldDef::new("n", Kind::Scalar(Dtype::U32)),
];

// The same schema as a typed record (the typed decode has its own scalar fast path).
record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Flags {
        flag: bool,
        label: str[2],
        bits: [bool; 3],
        n: u32,
    }
}

type DynReader<'r> = Reader<'r, Dynamic<&'static [FieldDef]>>;

/// A single-slot FLAGS segment after one write of every field; returns the memory and
/// the offset of the buffer that holds commit 1.
fn written_single() -> (Mem, usize) {
    let mem = Mem::for_schema(FLAGS, Mode::Single);
    let bits = [1u8, 0, 1];
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, Mode::Single).unwrap();
    w.write_fields(&[
        (0, Value::Bool(true)),
        (1, Value::Str("ok")),
        (
            2,
            Value::Array(flexshm_core::ArrayRef::new(Dtype::Bool, &[3], &bits).unwrap()),
        ),
        (3, Value::UInt(7)),
    ])
    .unwrap();
    let g = Geo::new(FLAGS, Mode::Single);
    (mem, g.buffer(1))
}

fn read_dyn(mem: &Mem) -> (Vec<u8>, Result<u32, Error>) {
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    let res = r.try_read(&mut buf, PLAIN).map(|s| s.commit());
    (buf, res)
}

fn corrupt_field(e: Result<impl std::fmt::Debug, Error>, field: &str) {
    match e {
        Err(Error::CorruptRecord { field: f, .. }) => assert_eq!(f.as_str(), field),
        other => panic!("expected CorruptRecord for {field}, got {other:?}"),
    }
}

/// §8: a string of more than N code points is corrupt, although its byte count is
/// within 4N, for the schema-less and the typed decode alike.
#[test]
fn string_with_more_code_points_than_its_capacity_is_rejected() {
    let (mem, b1) = written_single();
    let l = Layout::new(FLAGS).unwrap();
    let off = b1 + l.offset(1);
    // "abcde": 5 ASCII code points, 5 bytes <= 4 * 2, in a str[2].
    for (k, c) in b"abcde".iter().enumerate() {
        mem.set_u8(off + k, *c);
    }
    mem.set_u32(
        b1 + meta_offset(1) + 4,
        mem.u32_at(b1 + meta_offset(1) + 4) & !0xFFFF | 5,
    );
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    corrupt_field(snap.get(1), "label");
    // The other fields still decode.
    assert_eq!(snap.get(3).unwrap(), FieldValue::UInt(7));
    let mut t = Reader::<Flags>::open(mem.region()).unwrap();
    let mut buf = vec![0u8; t.snapshot_len()];
    corrupt_field(t.try_read(&mut buf, PLAIN).unwrap().record(), "label");

    // Exactly N code points of 4 bytes each (L = 4N) is fine.
    let s = "🌍🌍";
    for (k, c) in s.bytes().enumerate() {
        mem.set_u8(off + k, c);
    }
    mem.set_u32(
        b1 + meta_offset(1) + 4,
        mem.u32_at(b1 + meta_offset(1) + 4) & !0xFFFF | 8,
    );
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    assert_eq!(
        r.try_read(&mut buf, PLAIN).unwrap().get(1).unwrap(),
        FieldValue::Str(s)
    );
}

/// §8: bool bytes other than 0 and 1 are corrupt, in scalars and array elements, and
/// through the typed decode's scalar fast path too.
#[test]
fn bool_bytes_other_than_0_and_1_are_rejected() {
    let l = Layout::new(FLAGS).unwrap();
    for (field, idx, at) in [("flag", 0usize, 0usize), ("bits", 2, 1)] {
        let (mem, b1) = written_single();
        mem.set_u8(b1 + l.offset(idx) + at, 2);
        let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
        let mut buf = vec![0u8; r.snapshot_len()];
        let snap = r.try_read(&mut buf, PLAIN).unwrap();
        corrupt_field(snap.get(idx), field);
        let mut t = Reader::<Flags>::open(mem.region()).unwrap();
        let mut buf = vec![0u8; t.snapshot_len()];
        corrupt_field(t.try_read(&mut buf, PLAIN).unwrap().record(), field);
    }
    // 0 and 1 decode as false and true.
    let (mem, _) = written_single();
    let mut t = Reader::<Flags>::open(mem.region()).unwrap();
    let mut buf = vec![0u8; t.snapshot_len()];
    let rec = t.try_read(&mut buf, PLAIN).unwrap().record().unwrap();
    assert!(rec.flag && rec.bits == [true, false, true]);
}

/// §9, §14 rule 15: a TRUNCATED bit on a scalar makes the whole record corrupt, and the
/// read fails (nothing is returned).
#[test]
fn truncated_bit_on_a_scalar_is_rejected() {
    let (mem, b1) = written_single();
    let m = b1 + meta_offset(3) + 4;
    mem.set_u32(m, mem.u32_at(m) | INFO_TRUNCATED);
    corrupt_field(read_dyn(&mem).1, "n");
}

/// §7, §12.2: single-slot readers ignore the buffer's flags word entirely (COMMITTED and
/// unknown bits); FIFO readers ignore every bit but COMMITTED.
#[test]
fn buffer_flag_bits_readers_ignore() {
    // Fresh single-slot segment: buffer 0 has flags 0 and reads as commit 0.
    let mem = Mem::for_schema(FLAGS, Mode::Single);
    Writer::<Dynamic<_>>::create(mem.region(), FLAGS, Mode::Single).unwrap();
    assert_eq!(read_dyn(&mem).1, Ok(0));
    let (mem, b1) = written_single();
    for flags in [0, FLAG_COMMITTED | 0xFFFF_FFF0, 0x8000_0000] {
        mem.set_u32(b1 + SLOT_FLAGS, flags);
        assert_eq!(read_dyn(&mem).1, Ok(1), "single-slot, flags {flags:#x}");
    }

    let mode = Mode::Fifo { slots: 2 };
    let mem = Mem::for_schema(FLAGS, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, mode).unwrap();
    w.write_fields(&[(3, Value::UInt(1))]).unwrap();
    w.finalize();
    let g = Geo::new(FLAGS, mode);
    mem.set_u32(g.buffer(1) + SLOT_FLAGS, FLAG_COMMITTED | 0xF000_0000);
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    assert_eq!(r.try_read(&mut buf, PLAIN).unwrap().commit(), 1);
}

/// §12.2, §13.2: a consistent copy holding a commit number the writer cannot have put
/// there, or a window buffer without COMMITTED, is a corrupt segment: an error at once,
/// not a retry until the budget runs out.
#[test]
fn impossible_buffer_contents_are_corrupt_not_contended() {
    // Single-slot: buffer 1 (head = 1) claims to hold commit 2 (other parity) or 3
    // (same buffer, but beyond head + 1).
    for bad in [2u32, 3] {
        let (mem, b1) = written_single();
        mem.set_u32(b1 + SLOT_COMMIT, bad);
        assert!(
            matches!(read_dyn(&mem).1, Err(Error::CorruptBuffer { .. })),
            "single-slot commit word {bad}"
        );
    }
    // FIFO, 3 slots (4 buffers), head = 3: record 2's buffer says commit 10, or lost its
    // COMMITTED flag.
    let mode = Mode::Fifo { slots: 3 };
    let g = Geo::new(FLAGS, mode);
    for case in 0..2 {
        let mem = Mem::for_schema(FLAGS, mode);
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, mode).unwrap();
        for n in 1..=3u64 {
            w.write_fields(&[(3, Value::UInt(n))]).unwrap();
            w.finalize();
        }
        let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
        let mut buf = vec![0u8; r.snapshot_len()];
        assert_eq!(r.try_read(&mut buf, PLAIN).unwrap().commit(), 1);
        if case == 0 {
            mem.set_u32(g.buffer(2) + SLOT_COMMIT, 10);
        } else {
            mem.set_u32(g.buffer(2) + SLOT_FLAGS, 0);
        }
        assert!(
            matches!(
                r.try_read(&mut buf, PLAIN),
                Err(Error::CorruptBuffer { commit: 2, .. })
            ),
            "case {case}"
        );
    }
}

/// §13.2: a read that fails validation consumes nothing: the cursor, the loss count and
/// the change tracking stay, and the same record (with the same loss) is read once the
/// bytes are right again.
#[test]
fn a_failed_fifo_read_consumes_nothing() {
    let mode = Mode::Fifo { slots: 3 };
    let g = Geo::new(FLAGS, mode);
    let mem = Mem::for_schema(FLAGS, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, mode).unwrap();
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    for n in 1..=5u64 {
        w.write_fields(&[(3, Value::UInt(n))]).unwrap();
        w.finalize();
    }
    // Window 3..=5; the reader's cursor is 1: lapped, 2 lost. Corrupt record 3.
    let m = g.buffer(3) + meta_offset(3) + 4;
    let good = mem.u32_at(m);
    mem.set_u32(m, good | 1);
    let mut buf = vec![0u8; r.snapshot_len()];
    let reset = ReadOptions {
        latest: false,
        reset_modified: true,
    };
    for _ in 0..2 {
        corrupt_field(r.try_read(&mut buf, reset).map(|s| s.commit()), "n");
        assert_eq!(r.lost_total(), 0);
        assert!(r.has_new());
    }
    mem.set_u32(m, good);
    let snap = r.try_read(&mut buf, reset).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (3, 2));
    assert!(snap.status(3).modified, "first reset_modified read");
    assert_eq!(r.lost_total(), 2);
    assert_eq!(r.try_read(&mut buf, PLAIN).unwrap().commit(), 4);
}

/// §13.2: a cursor 3 or more ahead of head, or `floor(modulus / 2)` or more behind, was
/// lapped so far that the commit numbers wrapped: the reader moves to the oldest record
/// and reports the loss as unknowable (`u32::MAX`); below half the modulus the loss is
/// exact.
#[test]
fn lapped_past_half_the_modulus() {
    let mode = Mode::Fifo { slots: 4 };
    let g = Geo::new(FLAGS, mode);
    let m = modulus(g.nbuf);
    assert_eq!(m, 4_294_967_295);
    let half = m / 2;
    // (renumbering shift, expected head afterwards, expected loss of the next read)
    let cases = [
        // head 6 -> 1 while the cursor is 4: the cursor is 3 ahead.
        (m - 5, 1, u32::MAX),
        // behind = 2 + d, just below half: exact.
        (half - 7, 6 + half - 7, half - 5 - 3),
        // behind = half exactly: unknowable.
        (half - 2, 6 + half - 2, u32::MAX),
    ];
    for (d, head, loss) in cases {
        assert_eq!(d % g.nbuf, 0);
        let mem = Mem::for_schema(FLAGS, mode);
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, mode).unwrap();
        for n in 1..=6u64 {
            w.write_fields(&[(3, Value::UInt(n))]).unwrap();
            w.finalize();
        }
        let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
        let mut buf = vec![0u8; r.snapshot_len()];
        assert_eq!(r.try_read(&mut buf, PLAIN).unwrap().commit(), 3);
        renumber(&mem, &g, d);
        assert_eq!(mem.u32_at(HEAD), head);
        assert!(r.has_new(), "a lapped reader has something to read");
        let snap = r.try_read(&mut buf, PLAIN).unwrap();
        let oldest = ((head as u64 + m as u64 - 3) % m as u64) as u32;
        assert_eq!((snap.commit(), snap.lost()), (oldest, loss), "shift {d}");
        // It was record 3 (the oldest of the ring), renumbered.
        assert_eq!(snap.get(3).unwrap(), FieldValue::UInt(3));
        assert_eq!(r.lost_total(), loss as u64);
    }
}

/// §8: an unwritten array has zero rows, like one written empty; only the status differs.
#[test]
fn unwritten_array_has_zero_rows() {
    let mem = Mem::for_schema(FLAGS, Mode::Single);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, Mode::Single).unwrap();
    w.write_fields(&[(3, Value::UInt(1))]).unwrap();
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert!(snap.status(2).unwritten());
    match snap.get(2).unwrap() {
        FieldValue::Array { rows, bytes, .. } => assert_eq!((rows, bytes.len()), (0, 0)),
        other => panic!("{other:?}"),
    }
}

/// §11.1: single-slot `finalize` commits nothing and returns head.
#[test]
fn single_slot_finalize_commits_nothing() {
    let (mem, _) = written_single();
    let before = mem.bytes();
    let mut w = Writer::<Dynamic<_>>::attach(mem.region(), FLAGS).unwrap();
    assert_eq!(w.finalize(), 1);
    assert_eq!(w.finalize(), 1);
    assert_eq!(mem.bytes(), before);
}

/// §13: a FIFO of one slot (two buffers) reads in order and counts losses.
#[test]
fn fifo_of_one_slot() {
    let mode = Mode::Fifo { slots: 1 };
    let mem = Mem::for_schema(FLAGS, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), FLAGS, mode).unwrap();
    let mut r = DynReader::open_with(mem.region(), FLAGS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    assert_eq!(r.try_read(&mut buf, PLAIN).err(), Some(Error::NoRecord));
    w.write_fields(&[(3, Value::UInt(1))]).unwrap();
    assert_eq!(r.try_read(&mut buf, PLAIN).err(), Some(Error::NoRecord));
    w.finalize();
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (1, 0));
    for n in 2..=4u64 {
        w.write_fields(&[(3, Value::UInt(n))]).unwrap();
        w.finalize();
    }
    let snap = r.try_read(&mut buf, PLAIN).unwrap();
    assert_eq!((snap.commit(), snap.lost()), (4, 2));
    assert_eq!(r.try_read(&mut buf, PLAIN).err(), Some(Error::NoRecord));
}

/// §9: a typed reader on its record's own layout checks metadata with the field kinds
/// known at compile time; it accepts and rejects exactly what the schema-less reader
/// does, with the same statuses and the same field named. Every field's info word takes
/// each of a set of values around the rules' edges (unwritten, written with and without
/// a length, lengths at and past the capacity, the truncated bit, stray bits), and its
/// last-write word this commit or an older one.
#[test]
fn typed_and_schema_less_metadata_checks_agree() {
    const W: u32 = 1 << 30;
    let infos = [
        0,
        1,
        W,
        W | 1,
        W | 2,
        W | 3,
        W | 4,
        W | 8,
        W | 9,
        INFO_TRUNCATED,
        W | INFO_TRUNCATED,
        W | INFO_TRUNCATED | 2,
        W | INFO_TRUNCATED | 3,
        W | 0x3fff_ffff,
        u32::MAX,
    ];
    let (mem, b1) = written_single();
    let mut cases = 0;
    for field in 0..FLAGS.len() {
        for &info in &infos {
            for last in [1u32, 0] {
                let (fresh, _) = written_single();
                mem.set_bytes(&fresh.bytes());
                mem.set_u32(b1 + meta_offset(field), last);
                mem.set_u32(b1 + meta_offset(field) + 4, info);
                for opts in [
                    PLAIN,
                    ReadOptions {
                        reset_modified: true,
                        ..PLAIN
                    },
                ] {
                    let mut d = DynReader::open_with(mem.region(), FLAGS).unwrap();
                    let mut t = Reader::<Flags>::open(mem.region()).unwrap();
                    let mut buf = vec![0u8; d.snapshot_len()];
                    let dyn_res = d.try_read(&mut buf, opts).map(|s| s.info());
                    let typed_res = t.try_read(&mut buf, opts).map(|s| s.info());
                    let what = format!("field {field} info {info:#x} last {last}");
                    match (dyn_res, typed_res) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
                        (Err(a), Err(b)) => assert_eq!(a, b, "{what}"),
                        (a, b) => panic!("{what}: schema-less {a:?}, typed {b:?}"),
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, FLAGS.len() * infos.len() * 4);
}
