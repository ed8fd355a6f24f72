//! Deterministic regression tests for what the cargo-fuzz targets (fuzz/, `make fuzz`)
//! found. Each test names the target that found it and states the invariant it broke.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::internal::meta_offset;
use flexshm_core::{
    record, ArrayRef, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Layout, Mode, ReadOptions,
    Reader, Record, Value, Writer,
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
/// it as `true`. The two decodes must give the same answer, and the same error, for the
/// same bytes.
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

/// Found by `mutate_segment` (a writer attached, wrote every field, and its record did
/// not read back): the writer stored the bytes of a bool array value as they were, so an
/// element byte of 2 reached the segment and every reader rejected the record as
/// corrupt. A writer stores bools as 0 or 1 (docs/PROTOCOL.md §8): any non-zero element
/// is true.
#[test]
fn bool_array_elements_are_stored_as_0_or_1() {
    const FIELDS: &[FieldDef] = &[
        FieldDef::new("x", Kind::Scalar(Dtype::U8)),
        FieldDef::new("bits", Kind::array(Dtype::Bool, &[2, 3])),
    ];
    for mode in [Mode::Single, Mode::Fifo { slots: 2 }] {
        let mem = Mem::for_schema(FIELDS, mode);
        let mut w = Writer::<Dynamic<_>>::create(mem.region(), FIELDS, mode).unwrap();
        let elems = [0u8, 1, 2, 0x80, 0xFF, 0];
        let a = ArrayRef::new(Dtype::Bool, &[2, 3], &elems).unwrap();
        w.write_fields(&[(0, Value::UInt(9)), (1, Value::Array(a))])
            .unwrap();
        let commit = w.finalize();
        assert_eq!(commit, 1);

        let mut r = Reader::<Dynamic<&[FieldDef]>>::open_with(mem.region(), FIELDS).unwrap();
        let mut buf = vec![0u8; r.snapshot_len()];
        let snap = r
            .try_read(
                &mut buf,
                ReadOptions {
                    latest: true,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(snap.commit(), 1, "{mode:?}");
        assert!(snap.status(1).valid() && snap.status(1).modified);
        match snap.get(1) {
            Ok(FieldValue::Array { rows, bytes, .. }) => {
                assert_eq!(rows, 2);
                assert_eq!(bytes, &[0, 1, 1, 1, 1, 0], "{mode:?}");
            }
            other => panic!("{mode:?}: {other:?}"),
        }
        // The info word says what was written: 2 rows, not truncated.
        let l = Layout::new(FIELDS).unwrap();
        let info = mem.u32_at(l.slots_offset() + l.slot_stride() + meta_offset(1) + 4);
        assert_eq!(info, INFO_WRITTEN | 2);
    }
}
