//! The bytes after a string's or an array's stored length are zero in every closed buffer
//! (docs/PROTOCOL.md §8), whatever sequence of longer and shorter values, skipped fields
//! (carry-over, which also copies the words a field shares with a neighbour), FIFO
//! stagings and writer takeovers led there. The writer zeroes a field only as far as
//! earlier values reached (§8's implementation note), so this is the invariant that
//! shortcut relies on.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, FieldDef, FieldValue, Kind, Layout, Mode, ReadOptions, Reader, Value,
    Writer,
};

const FIELDS: &[FieldDef] = &[
    FieldDef::new("s", Kind::str(8)),
    FieldDef::new("k", Kind::Scalar(Dtype::U8)),
    FieldDef::new("a", Kind::array(Dtype::U16, &[4, 3])),
    FieldDef::new("t", Kind::str(3)),
];
/// Bytes of one row of `a`.
const ROW: usize = 3 * 2;
const LATEST: ReadOptions = ReadOptions {
    latest: true,
    reset_modified: false,
};

type DynWriter<'r> = Writer<'r, Dynamic<&'static [FieldDef]>>;
type DynReader<'r> = Reader<'r, Dynamic<&'static [FieldDef]>>;

/// Checks every buffer whose `seq` is even: each string's and array's bytes after its
/// stored length (the info word's LEN: bytes, resp. rows) are zero.
fn assert_tails_zero(mem: &Mem, g: &Geo, what: &str) {
    let layout = Layout::new(FIELDS).unwrap();
    let bytes = mem.bytes();
    for b in 0..g.nbuf {
        let base = g.buffer(b);
        if mem.u32_at(base + SLOT_SEQ) & 1 == 1 {
            continue; // being written
        }
        for (i, f) in FIELDS.iter().enumerate() {
            let info = mem.u32_at(base + 16 + 8 * i + 4);
            let len = (info & ((1 << 30) - 1)) as usize;
            let used = match f.kind {
                Kind::Str { .. } => len,
                Kind::Array { .. } => len * ROW,
                _ => continue,
            };
            let (off, cap) = (base + layout.offset(i), layout.size(i));
            assert!(
                used <= cap,
                "{what}: buffer {b}, field {i}: LEN {len} too big"
            );
            let tail = &bytes[off + used..off + cap];
            assert!(
                tail.iter().all(|&x| x == 0),
                "{what}: buffer {b}, field {i} ({used} of {cap} bytes used): tail {tail:?}"
            );
        }
    }
}

/// A small deterministic generator (xorshift), so a failure names a reproducible step.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Text of `n` code points mixing 1- to 4-byte characters.
fn text(rng: &mut Rng, n: u64) -> String {
    (0..n)
        .map(|_| ['a', 'é', '€', '😀'][rng.next(4) as usize])
        .collect()
}

/// One staging of random values: each field written or not (carried over), strings up
/// to two code points over their capacity (cut) and arrays up to one row over (cut).
/// Returns what a reader must now see for `s` and `a`'s row count, if written.
fn stage(
    w: &mut DynWriter<'_>,
    rng: &mut Rng,
    cells: &mut Vec<u8>,
) -> (Option<String>, Option<usize>) {
    let n = rng.next(11);
    let s = text(rng, n);
    let rows = rng.next(6) as usize;
    *cells = (0..rows * ROW).map(|_| rng.next(255) as u8 + 1).collect();
    let n = rng.next(5);
    let t = text(rng, n);
    let mut values: Vec<(usize, Value<'_>)> = Vec::new();
    let (mut wrote_s, mut wrote_a) = (None, None);
    if rng.next(3) != 0 {
        values.push((0, Value::Str(&s)));
        wrote_s = Some(s.chars().take(8).collect());
    }
    if rng.next(2) == 0 {
        values.push((1, Value::UInt(rng.next(256))));
    }
    if rng.next(3) != 0 {
        let a = ArrayRef::new(Dtype::U16, &[rows, 3], cells).unwrap();
        values.push((2, Value::Array(a)));
        wrote_a = Some(rows.min(4));
    }
    if rng.next(2) == 0 {
        values.push((3, Value::Str(&t)));
    }
    w.write_fields(&values).unwrap();
    (wrote_s, wrote_a)
}

#[test]
fn every_closed_buffer_keeps_zeros_after_each_value() {
    for mode in [Mode::Single, Mode::Fifo { slots: 3 }] {
        let mem = Mem::for_schema(FIELDS, mode);
        let g = Geo::new(FIELDS, mode);
        let mut w = DynWriter::create(mem.region(), FIELDS, mode).unwrap();
        let mut r = DynReader::open_with(mem.region(), FIELDS).unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut s_now, mut rows_now) = (String::new(), 0usize);
        let mut cells = Vec::new();
        for step in 0..scaled(2000, 60) {
            let (mut s, mut a) = stage(&mut w, &mut rng, &mut cells);
            if mode.is_fifo() && rng.next(4) == 0 {
                // A second write to the same staging: the field shrinks or grows again.
                let (s2, a2) = stage(&mut w, &mut rng, &mut cells);
                (s, a) = (s2.or(s), a2.or(a));
            }
            s_now = s.unwrap_or(s_now);
            rows_now = a.unwrap_or(rows_now);
            w.finalize();
            assert_tails_zero(&mem, &g, &format!("{mode:?}, step {step}"));
            let mut buf = [0u8; 256];
            let snap = r.try_read(&mut buf, LATEST).unwrap();
            assert_eq!(snap.get(0).unwrap(), FieldValue::Str(&s_now), "step {step}");
            match snap.get(2).unwrap() {
                FieldValue::Array { rows, .. } => assert_eq!(rows, rows_now),
                other => panic!("step {step}: {other:?}"),
            }
        }
    }
}

/// A writer that stops after storing a long string's bytes but before its info word
/// leaves bytes past the buffer's recorded length. The writer that takes over copies the
/// whole record into that buffer before its first store, so its shorter values leave
/// no stray bytes behind them.
#[test]
fn bytes_a_dead_writer_left_past_a_recorded_length_are_cleared_by_its_successor() {
    for mode in [Mode::Single, Mode::Fifo { slots: 3 }] {
        let layout = Layout::new(FIELDS).unwrap();
        let mem = Mem::for_schema(FIELDS, mode);
        let g = Geo::new(FIELDS, mode);
        let mut old = DynWriter::create(mem.region(), FIELDS, mode).unwrap();
        old.write_fields(&[(0, Value::Str("ab"))]).unwrap();
        old.finalize();
        old.write_fields(&[(0, Value::Str("cd"))]).unwrap();
        old.finalize();
        // Both buffers of the next stagings now say "2 bytes used". The old writer opens
        // the next buffer (seq odd), stores 32 bytes of a string, and stops before the
        // info word.
        let head = old.head();
        let staging = g.buffer((head + 1) % g.nbuf);
        mem.set_u32(staging + SLOT_SEQ, mem.u32_at(staging + SLOT_SEQ) | 1);
        let s = staging + layout.offset(0);
        // Whole words (bytes 4..32 of the field): the word holding "cd" keeps it.
        for k in (4..32).step_by(4) {
            mem.set_u32(s + k, u32::from_le_bytes(*b"xxxx"));
        }
        // The old writer stops here; it is not used again.
        let mut new = DynWriter::attach(mem.region(), FIELDS).unwrap();
        assert_eq!(new.head(), head);
        new.write_fields(&[(0, Value::Str("e"))]).unwrap();
        new.finalize();
        assert_tails_zero(&mem, &g, &format!("{mode:?}, after the takeover"));
        // And the buffers after it, written with shorter strings again.
        for v in ["fg", "h", ""] {
            new.write_fields(&[(0, Value::Str(v))]).unwrap();
            new.finalize();
            assert_tails_zero(&mem, &g, &format!("{mode:?}, after writing {v:?}"));
        }
    }
}

/// Bytes that something outside the protocol stored past a string's length in `head`'s
/// buffer (a scribbling process) reach the staging buffer through carry-over or a
/// takeover's whole copy, and a shorter value's store no longer clears them (§8, "Zero
/// tails": writers of this protocol never leave such bytes). Readers decode exactly the
/// stored length, so they never see them.
#[test]
fn bytes_scribbled_past_a_length_never_reach_a_reader() {
    let layout = Layout::new(FIELDS).unwrap();
    let mem = Mem::for_schema(FIELDS, Mode::Single);
    let g = Geo::new(FIELDS, Mode::Single);
    let mut w = DynWriter::create(mem.region(), FIELDS, Mode::Single).unwrap();
    w.write_fields(&[(0, Value::Str("ab"))]).unwrap();
    let s = g.buffer(w.head() % g.nbuf) + layout.offset(0);
    mem.set_u32(s + 4, u32::from_le_bytes(*b"cdef"));
    let mut r = DynReader::open_with(mem.region(), FIELDS).unwrap();
    let mut w = DynWriter::attach(mem.region(), FIELDS).unwrap();
    for v in ["x", "", "xyz", "12345", "é"] {
        w.write_fields(&[(0, Value::Str(v))]).unwrap();
        let mut buf = [0u8; 256];
        let snap = r.try_read(&mut buf, LATEST).unwrap();
        assert_eq!(snap.get(0).unwrap(), FieldValue::Str(v));
    }
}
