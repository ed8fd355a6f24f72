//! Deterministic regression tests for what the cargo-fuzz targets (fuzz/, `make fuzz`)
//! found. Each test names the target that found it and states the invariant it broke.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    record, Dynamic, Error, FieldDef, Layout, Mode, ReadOptions, Reader, Record, Writer,
};

record! {
    #[derive(Debug, Default, PartialEq)]
    struct Flagged {
        on: bool,
        n: u16,
    }
}

/// Found by `open_segment` and `read_buffers`: a bool byte other than 0 or 1 is a corrupt
/// record for the run-time-schema decode, but the typed decode's scalar fast path took
/// it as `true`. The two decodes (and the typed decode without the fast path, on 32-bit
/// targets) must give the same answer for the same bytes.
#[test]
fn typed_decode_rejects_a_bool_byte_the_dynamic_decode_rejects() {
    let mem = Mem::for_schema(Flagged::FIELDS, Mode::Single);
    let mut w = Writer::<Flagged>::create(mem.region(), Mode::Single).unwrap();
    w.write(&Flagged { on: true, n: 7 }).unwrap();
    // Commit 1 lives in buffer 1; its `on` byte becomes 2.
    let l = Layout::new(Flagged::FIELDS).unwrap();
    let on = l.slots_offset() + l.slot_stride() + l.offset(0);
    mem.set_u8(on, 2);

    let mut dynamic =
        Reader::<Dynamic<&[FieldDef]>>::open_with(mem.region(), Flagged::FIELDS).unwrap();
    let mut buf = vec![0u8; dynamic.snapshot_len()];
    let snap = dynamic.try_read(&mut buf, ReadOptions::default()).unwrap();
    let dyn_err = snap.get(0).unwrap_err();
    assert!(
        matches!(dyn_err, Error::CorruptRecord { .. }),
        "{dyn_err:?}"
    );

    let mut typed = Reader::<Flagged>::open(mem.region()).unwrap();
    let mut buf = [0u8; Flagged::SNAPSHOT_LEN];
    let snap = typed.try_read(&mut buf, ReadOptions::default()).unwrap();
    let mut out = Flagged::default();
    assert_eq!(snap.decode(&mut out), Err(dyn_err));
}
