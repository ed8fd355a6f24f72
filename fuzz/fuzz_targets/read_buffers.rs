//! A reader on a segment whose header is valid and whose buffers — slot header words,
//! field metadata, payload — and `head` word are the fuzzer's, single-slot and FIFO,
//! with plain, latest, reset_modified and blocking reads; between reads the input may
//! change words of the buffers (as a writer would) or attach a writer and write.
//!
//! Input: `[schema] [mode] [head: u32 LE] [n] [n op bytes] [buffer bytes ...]`. The
//! buffer bytes are copied over the buffers from the first one on (a golden vector's
//! buffers make a valid input). Op bytes: `op >> 5` 0..=4 is a read (`op & 7`: bit 0
//! latest, bit 1 reset_modified, bit 2 blocking), 5 and 6 store a word, 7 is a write by
//! a writer that attaches at its first write (with bit 1, it writes every field in one
//! call). After every read, a typed reader and a fresh run-time-schema reader of a
//! single-slot segment must report the same record (`typed_read_agrees`).
#![no_main]

use flexshm_core::{Dynamic, FieldDef, Layout, Reader, Value, Writer};
use flexshm_fuzz::check;
use flexshm_fuzz::exercise::{mode, read_op, typed_read_agrees, H_HEAD};
use flexshm_fuzz::input::{value_for, Input, Owned};
use flexshm_fuzz::mem::Mem;
use flexshm_fuzz::schemas::schema;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: flexshm_fuzz::self_check(), |data: &[u8]| {
    let mut inp = Input::new(data);
    let fields: &'static [FieldDef] = schema(inp.u8()).fields;
    let mode = mode(inp.u8(), 8);
    let head = inp.u32();
    let n = inp.u8() as usize;
    let mut ops = Input::new(inp.bytes(n));
    let l = Layout::new(fields).expect("table schema");
    let total = l.segment_size(mode.slots()).expect("small segment");
    let mem = Mem::new(total);
    let region = mem.region();
    // Formats the segment; the writer itself is not used.
    let _ = Writer::<Dynamic<_>>::create(region, fields, mode).expect("create");
    mem.set_bytes(l.slots_offset(), inp.rest());
    mem.set_u32(H_HEAD, head);

    let mut r = match Reader::<Dynamic<&[FieldDef]>>::open_with(region, fields) {
        Ok(r) => r,
        Err(e) => {
            check::open_error(&e);
            return;
        }
    };
    r.set_retries(1 + ops.u8() as u32 % 16);
    let mut buf = vec![0u8; r.snapshot_len()];
    let mut writer: Option<Writer<'_, Dynamic<&[FieldDef]>>> = None;
    let area = total - l.slots_offset();
    while !ops.is_empty() {
        let op = ops.u8();
        match op >> 5 {
            0..=4 => {
                read_op(&mut r, &mut buf, op & 7, &mut ops);
                typed_read_agrees(region, fields);
            }
            5 | 6 => {
                // A word of the buffer area, or the head word.
                let k = ops.u16() as usize;
                let off = if k == 0xFFFF {
                    H_HEAD
                } else {
                    l.slots_offset() + 4 * (k % (area / 4))
                };
                let w = ops.word(mem.u32_at(off));
                mem.set_u32(off, w);
            }
            _ => {
                if writer.is_none() {
                    match Writer::<Dynamic<&[FieldDef]>>::attach(region, fields) {
                        Ok(w) => writer = Some(w),
                        Err(e) => check::open_error(&e),
                    }
                }
                if let (Some(w), false, true) = (writer.as_mut(), fields.is_empty(), op & 2 != 0) {
                    // Every field in one write: a record written whole.
                    let owned: Vec<Owned> = fields.iter().map(|f| value_for(&mut ops, f)).collect();
                    let vals: Vec<(usize, Value<'_>)> =
                        owned.iter().enumerate().map(|(i, v)| (i, v.value())).collect();
                    if let Err(e) = w.write_fields(&vals) {
                        panic!("a valid write was rejected: {e:?} ({owned:?})");
                    }
                    if op & 1 != 0 {
                        w.finalize();
                    }
                } else if let (Some(w), false) = (writer.as_mut(), fields.is_empty()) {
                    let i = ops.u8() as usize % fields.len();
                    let v: Owned = value_for(&mut ops, &fields[i]);
                    let vals: [(usize, Value<'_>); 1] = [(i, v.value())];
                    if let Err(e) = w.write_fields(&vals) {
                        panic!("a valid write was rejected: {e:?} ({v:?})");
                    }
                    if op & 1 != 0 {
                        w.finalize();
                    }
                }
            }
        }
    }
});
