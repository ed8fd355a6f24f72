//! Header and schema validation on arbitrary bytes: `read_schema`, `Reader::<Dynamic>::open`,
//! `Reader::open_with` and the typed `Reader::open`, which must agree with each other,
//! then reads and (if the input asks) a writer that attaches and a read-back.
//!
//! Input: `[ctl] [schema] [n] [n decision bytes] [region bytes ...]`. `ctl` bit 0 writes
//! the magic and version over the first 8 region bytes, bit 1 makes the header agree with
//! the descriptor (`reseal`); `schema` picks the schema the caller expects
//! (`schemas::SCHEMAS`); the decision bytes choose the reads.
#![no_main]

use flexshm_fuzz::exercise::{reseal, segment};
use flexshm_fuzz::input::Input;
use flexshm_fuzz::mem::Mem;
use flexshm_fuzz::schemas::schema;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: flexshm_fuzz::self_check(), |data: &[u8]| {
    let mut inp = Input::new(data);
    let ctl = inp.u8();
    let expected = schema(inp.u8()).fields;
    let n = inp.u8() as usize;
    let mut decisions = Input::new(inp.bytes(n));
    let mem = Mem::from_bytes(inp.rest());
    if ctl & 1 != 0 {
        mem.set_u32(0, flexshm_core::internal::MAGIC);
        mem.set_u32(4, flexshm_core::internal::VERSION);
    }
    if ctl & 2 != 0 {
        reseal(&mem);
    }
    segment(mem.region(), expected, &mut decisions);
});
