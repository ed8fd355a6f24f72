//! Fuzz-style robustness: valid segments with random and targeted corruption (header
//! words, head, lengths, descriptor entries, slot words, field meta info words), and
//! random bytes behind a valid magic, fed to every entry point that reads a segment:
//! `Reader::open_with`, `Reader::<Dynamic>::open`, `read_schema`, `Writer::attach`, reads and
//! field decoding, and a write after a successful attach. Each must return `Ok` or
//! `Err`, never panic. Deterministic seeds; thousands of cases.
#![cfg(not(loom))]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, FieldDef, Kind, Layout, Mode, ReadOptions, Reader, Value, Writer,
};

/// SplitMix64: small, deterministic, good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn word(&mut self, len: usize) -> u32 {
        const EDGES: [u32; 10] = [
            0,
            1,
            2,
            3,
            63,
            64,
            0x7FFF_FFFF,
            0x8000_0000,
            u32::MAX,
            1 << 30,
        ];
        match self.below(4) {
            0 => EDGES[self.below(EDGES.len())],
            1 => (len as u32)
                .wrapping_add(self.below(17) as u32)
                .wrapping_sub(8),
            2 => self.below(256) as u32,
            _ => self.next() as u32,
        }
    }
}

const ALL: &[FieldDef] = &[
    FieldDef::new("b", Kind::Scalar(Dtype::Bool)),
    FieldDef::new("i8", Kind::Scalar(Dtype::I8)),
    FieldDef::new("u16", Kind::Scalar(Dtype::U16)),
    FieldDef::new("f32", Kind::Scalar(Dtype::F32)),
    FieldDef::new("s", Kind::str(3)),
    FieldDef::new("img", Kind::array(Dtype::U8, &[2, 3, 2])),
    FieldDef::new("v", Kind::array(Dtype::F64, &[4])),
    FieldDef::new("u64", Kind::Scalar(Dtype::U64)),
];

/// A valid segment with a few records, and its schema.
fn seed(which: usize) -> (&'static [FieldDef], Mode, Vec<u8>) {
    let (fields, mode): (&'static [FieldDef], Mode) = match which {
        0 => (SENSOR, Mode::Single),
        1 => (MIXED, Mode::Fifo { slots: 3 }),
        _ => (ALL, Mode::Fifo { slots: 1 }),
    };
    let mem = Mem::for_schema(fields, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), fields, mode).unwrap();
    for k in 0..5u8 {
        let s = ["", "abc", "héllo wörld", "🌍🌍🌍🌍", "x"][k as usize];
        let vals: Vec<(usize, Value<'_>)> = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| !(i + k as usize).is_multiple_of(3))
            .filter_map(|(i, f)| {
                let v = match f.kind {
                    Kind::Scalar(Dtype::Bool) => Value::Bool(k % 2 == 0),
                    Kind::Scalar(d) if d.is_float() => Value::Float(k as f64 * 1.5),
                    Kind::Scalar(_) => Value::UInt(k as u64),
                    Kind::Str { .. } => Value::Str(s),
                    Kind::Array { .. } => return None,
                };
                Some((i, v))
            })
            .collect();
        w.write_fields(&vals).unwrap();
        if let Some(i) = fields.iter().position(|f| f.name.as_str() == "img") {
            let bytes = [k; 18];
            let rows = 1 + k as usize % 3; // 3 rows: truncated
            w.write_fields(&[(
                i,
                Value::Array(ArrayRef::new(Dtype::U8, &[rows, 3, 2], &bytes[..rows * 6]).unwrap()),
            )])
            .unwrap();
        }
        w.finalize();
    }
    (fields, mode, mem.bytes())
}

/// One corruption of a valid segment.
fn mutate(rng: &mut Rng, b: &mut [u8], fields: &[FieldDef], mode: Mode) {
    let l = Layout::new(fields).unwrap();
    let len = b.len();
    let put = |b: &mut [u8], off: usize, v: u32| {
        if off + 4 <= b.len() {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
    };
    let nbuf = mode.slots() as usize + 1;
    let slot = |rng: &mut Rng| l.slots_offset() + rng.below(nbuf) * l.slot_stride();
    match rng.below(9) {
        // A header word (magic, version, flags, slots, hash, lengths, offsets, head).
        0 => {
            let w = rng.word(len);
            put(b, 4 * rng.below(16), w)
        }
        // The head word.
        1 => {
            let w = rng.word(len);
            put(b, HEAD, w)
        }
        // The descriptor: field count, or a byte of an entry (code, ndim, name length,
        // dims, name).
        2 => {
            let w = rng.word(len);
            put(b, 128, w % 70)
        }
        3 => {
            let off = 132 + rng.below(fields.len() * 64);
            b[off] = rng.next() as u8;
        }
        4 => {
            let off = 132 + 64 * rng.below(fields.len()) + 4 + 4 * rng.below(4);
            let w = rng.word(len);
            put(b, off, w)
        }
        // Slot header words: seq, commit, flags.
        5 => {
            let off = slot(rng) + 4 * rng.below(4);
            let w = rng.word(len);
            put(b, off, w)
        }
        // Field meta: last-write commit or info word (truncated / written / length).
        6 => {
            let off = slot(rng) + 16 + 8 * rng.below(fields.len()) + 4 * rng.below(2);
            let w = match rng.below(3) {
                0 => rng.word(len),
                1 => (1 << 30) | rng.below(64) as u32,
                _ => (3 << 30) | rng.below(1 << 12) as u32,
            };
            put(b, off, w)
        }
        // A bit flip anywhere.
        7 => {
            let off = rng.below(len);
            b[off] ^= 1 << rng.below(8);
        }
        // Payload bytes (invalid UTF-8 in strings, odd bools).
        _ => {
            let off = slot(rng) + rng.below(l.slot_size());
            b[off] = 0x80 | rng.next() as u8;
        }
    }
}

/// Makes the header consistent with whatever the (mutated) descriptor now says: layout
/// hash, descriptor length, offsets and sizes recomputed, as a buggy or hostile writer
/// would leave them. Validation then passes and the reads run a different schema over
/// the old bytes.
fn reseal(b: &mut [u8]) {
    let word = |b: &[u8], off: usize| u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
    let count = word(b, 128) as usize;
    let slots = word(b, 12);
    if count > 64 || 132 + 64 * count > b.len() || slots == 0 || slots > 64 {
        return;
    }
    let desc = b[128..132 + 64 * count].to_vec();
    let Ok(fields) = (0..count)
        .map(|i| {
            let e: &[u8; 64] = desc[4 + 64 * i..][..64].try_into().unwrap();
            flexshm_core::internal::decode_field_entry(e)
        })
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let Ok(l) = Layout::new(fields.as_slice()) else {
        return;
    };
    let Ok(total) = l.segment_size(slots) else {
        return;
    };
    let hash = flexshm_core::internal::fnv1a64(&desc);
    let mut put = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put(16, hash as u32);
    put(20, (hash >> 32) as u32);
    put(24, desc.len() as u32);
    put(28, l.slots_offset() as u32);
    put(32, l.slot_size() as u32);
    put(36, l.slot_stride() as u32);
    put(40, total as u32);
}

#[derive(Default, Debug)]
struct Tally {
    opened: u32,
    rejected: u32,
    reads_ok: u32,
    attached: u32,
    dynamic: u32,
}

/// Every entry point on the segment in `mem`; panics propagate to the caller.
fn exercise(mem: &Mem, fields: &'static [FieldDef], len: usize, t: &mut Tally) {
    let region = mem.prefix(len);
    let _ = flexshm_core::internal::read_schema(&region);
    let mut buf = vec![0u8; 4096];
    let opts = [
        ReadOptions::default(),
        ReadOptions {
            latest: true,
            reset_modified: true,
        },
    ];
    match Reader::<Dynamic<_>>::open_with(region, fields) {
        Ok(mut r) => {
            t.opened += 1;
            r.set_retries(4);
            for o in opts {
                if let Ok(snap) = r.try_read(&mut buf, o) {
                    t.reads_ok += 1;
                    for i in 0..snap.len() {
                        let _ = snap.get(i);
                        let _ = snap.raw(i);
                        let _ = snap.status(i);
                    }
                }
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            t.rejected += 1;
        }
    }
    if let Ok(mut r) = Reader::<Dynamic>::open(region) {
        t.dynamic += 1;
        r.set_retries(4);
        let mut big = vec![0u8; r.snapshot_len().min(1 << 20)];
        if let Ok(snap) = r.try_read(&mut big, ReadOptions::default()) {
            for i in 0..snap.len() {
                let _ = snap.get(i);
            }
        }
        let _ = r.has_new();
    }
    if let Ok(mut w) = Writer::<Dynamic<_>>::attach(region, fields) {
        t.attached += 1;
        let _ = w.write_fields(&[(0, Value::UInt(1))]);
        let _ = w.write_fields(&[(0, Value::Bool(true))]);
        w.finalize();
        if let Ok(mut r) = Reader::<Dynamic<_>>::open_with(region, fields) {
            r.set_retries(4);
            let _ = r.try_read(&mut buf, ReadOptions::default());
        }
    }
}

fn fuzz(seed_value: u64, cases: usize, random_body: bool) -> Tally {
    let mut rng = Rng(seed_value);
    let seeds: Vec<_> = (0..3).map(seed).collect();
    let mut t = Tally::default();
    for case in 0..cases {
        let (fields, mode, good) = &seeds[case % seeds.len()];
        let mut b = good.clone();
        if random_body {
            // Random bytes behind a valid magic and version: deep paths of validation.
            for x in b[8..].iter_mut() {
                *x = rng.next() as u8;
            }
            let keep = rng.below(b.len() - 8);
            b[8 + keep..].copy_from_slice(&good[8 + keep..]);
        } else {
            for _ in 0..1 + rng.below(6) {
                mutate(&mut rng, &mut b, fields, *mode);
            }
            if rng.below(3) == 0 {
                reseal(&mut b);
            }
        }
        // Sometimes the region is cut short as well.
        let len = if rng.below(8) == 0 {
            rng.below(b.len() + 1) & !3
        } else {
            b.len()
        };
        let mem = Mem::new(b.len());
        mem.set_bytes(&b);
        let res = catch_unwind(AssertUnwindSafe(|| exercise(&mem, fields, len, &mut t)));
        assert!(
            res.is_ok(),
            "case {case} (seed {seed_value:#x}) panicked; region bytes: {:02x?}",
            &b
        );
    }
    t
}

#[test]
fn mutated_segments_never_panic() {
    let t = fuzz(0x5EED_0001, scaled(10_000, 40), false);
    println!("{t:?}");
    // The corpus reaches both outcomes, so the deep paths are exercised.
    assert!(
        t.rejected > 0 && t.opened > 0 && t.reads_ok > 0 && t.attached > 0,
        "{t:?}"
    );
}

#[test]
fn random_bodies_never_panic() {
    let t = fuzz(0x5EED_0002, scaled(3000, 20), true);
    println!("{t:?}");
    assert!(t.rejected > 0, "{t:?}");
}

/// Fully random regions of random sizes.
#[test]
fn random_regions_never_panic() {
    let mut rng = Rng(0x5EED_0003);
    for case in 0..scaled(3000, 20) {
        let len = 4 * rng.below(200);
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 8 && rng.below(2) == 0 {
            b[..4].copy_from_slice(b"FXSM");
            b[4..8].copy_from_slice(&1u32.to_le_bytes());
        }
        let mem = Mem::new(len);
        mem.set_bytes(&b);
        let res = catch_unwind(AssertUnwindSafe(|| {
            let r = mem.region();
            let _ = flexshm_core::internal::read_schema(&r);
            let _ = Reader::<Dynamic>::open(r);
            let _ = Reader::<Dynamic<_>>::open_with(r, SENSOR);
            let _ = Writer::<Dynamic<_>>::attach(r, SENSOR);
        }));
        assert!(res.is_ok(), "case {case} panicked; bytes {b:02x?}");
    }
}
