//! Structure-aware: a valid segment, then a few targeted corruptions, then everything a
//! program can do with a segment (`exercise::segment`).
//!
//! Input: `[base] [mode] [records] [flags] [writes ...] [count] [mutations ...] [decisions ...]`.
//! `base` 0..=2 is a golden vector (`flexshm_vectors::CASES`, `mode` and `records`
//! unused); otherwise a segment of schema `SCHEMAS[base - 3]` in `mode` (0 single-slot,
//! else FIFO with up to 8 slots) after `records % 8` commits whose fields and values
//! the `writes` bytes choose. Then `count % 16` mutations, each a kind byte and its
//! parameters (`mutate`). `flags` bit 0: make the header agree with the (mutated)
//! descriptor afterwards; bit 1: cut the region to a length from the input.
#![no_main]

use flexshm_core::internal::{INFO_TRUNCATED, INFO_WRITTEN};
use flexshm_core::{FieldDef, Layout, Mode};
use flexshm_fuzz::exercise::{build, mode, reseal, segment, H_HEAD};
use flexshm_fuzz::input::Input;
use flexshm_fuzz::mem::Mem;
use flexshm_fuzz::schemas::{schema, SCHEMAS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: flexshm_fuzz::self_check(), |data: &[u8]| {
    let mut inp = Input::new(data);
    let base = inp.u8();
    let mode_byte = inp.u8();
    let records = inp.u8() % 8;
    let flags = inp.u8();
    let cases = flexshm_vectors::CASES;
    let (fields, mode, mem) = if (base as usize) < cases.len() {
        let case = &cases[base as usize];
        let mem = Mem::new(case.region_len);
        (case.run)(mem.region());
        (case.fields, case.mode, mem)
    } else {
        let s = schema((base as usize - cases.len()) as u8 % SCHEMAS.len() as u8);
        let mode = mode(mode_byte, 8);
        let mem = build(s.fields, mode, records, &mut inp);
        (s.fields, mode, mem)
    };
    for _ in 0..inp.u8() % 16 {
        mutate(&mem, fields, mode, &mut inp);
    }
    if flags & 1 != 0 {
        reseal(&mem);
    }
    let len = if flags & 2 != 0 {
        inp.u16() as usize % (mem.len() + 1)
    } else {
        mem.len()
    };
    segment(mem.prefix(len), fields, &mut inp);
});

/// One corruption aimed at a part of the segment (header word, head, descriptor, slot
/// header word, field metadata, payload), or a bit flip anywhere.
fn mutate(mem: &Mem, fields: &[FieldDef], mode: Mode, inp: &mut Input<'_>) {
    let l = Layout::new(fields).expect("table schema");
    let len = mem.len();
    let n = fields.len();
    let nbuf = mode.slots() as usize + 1;
    let head = mem.u32_at(H_HEAD);
    let buffer =
        |inp: &mut Input<'_>| l.slots_offset() + inp.u8() as usize % nbuf * l.slot_stride();
    match inp.u8() % 10 {
        // A header word: magic, version, flags, slots, hash, lengths, offsets, head.
        0 => {
            let off = 4 * (inp.u8() as usize % 16);
            let w = inp.word(mem.u32_at(off));
            mem.set_u32(off, w);
        }
        1 => {
            let w = inp.word(head);
            mem.set_u32(H_HEAD, w);
        }
        // The descriptor: field count, a byte of an entry, a dimension word.
        2 => {
            let w = inp.word(n as u32);
            mem.set_u32(128, w % 70);
        }
        3 if n > 0 => {
            let off = 132 + inp.u16() as usize % (64 * n);
            mem.set_bytes(off, &[inp.u8()]);
        }
        4 if n > 0 => {
            let off = 132 + 64 * (inp.u8() as usize % n) + 4 + 4 * (inp.u8() as usize % 4);
            let w = inp.word(mem.u32_at(off));
            mem.set_u32(off, w);
        }
        // A slot header word: seq, commit, flags, reserved.
        5 => {
            let off = buffer(inp) + 4 * (inp.u8() as usize % 4);
            let w = inp.word(head);
            mem.set_u32(off, w);
        }
        // Field metadata: last-write commit or info word (written, truncated, length).
        6 if n > 0 => {
            let off = buffer(inp) + 16 + 8 * (inp.u8() as usize % n) + 4 * (inp.u8() as usize & 1);
            let sel = inp.u8();
            let w = match sel % 3 {
                0 => inp.word(head),
                1 => INFO_WRITTEN | (sel as u32 >> 2),
                _ => INFO_WRITTEN | INFO_TRUNCATED | inp.u16() as u32,
            };
            mem.set_u32(off, w);
        }
        // A bit anywhere.
        7 if len > 0 => {
            let off = inp.u16() as usize % len;
            let b = mem.u8_at(off) ^ (1 << (inp.u8() % 8));
            mem.set_bytes(off, &[b]);
        }
        // A payload byte (invalid UTF-8, odd bools, lengths).
        8 => {
            let off = buffer(inp) + inp.u16() as usize % l.slot_size();
            mem.set_bytes(off, &[inp.u8()]);
        }
        // One buffer copied over another: a whole record in the wrong place.
        9 => {
            let (src, dst) = (buffer(inp), buffer(inp));
            let bytes = mem.bytes();
            mem.set_bytes(dst, &bytes[src..src + l.slot_stride()]);
        }
        _ => {}
    }
}
