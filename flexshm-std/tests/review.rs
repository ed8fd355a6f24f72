//! Review findings: the writer's own reader, and claim words that name no process.

mod common;

use common::SegGuard;
use flexshm_std::{Dtype, DynReader, DynWriter, FieldDef, FieldValue, Kind, ReadOptions, Value};

fn fields() -> Vec<FieldDef> {
    vec![FieldDef::new("x", Kind::Scalar(Dtype::I64))]
}

fn read_x(r: &mut DynReader) -> FieldValue<'static> {
    let mut buf = vec![0u8; r.snapshot_len()];
    r.try_read(&mut buf, ReadOptions::default()).unwrap();
    match flexshm_std::decode_field(&buf, r.layout(), 0).unwrap() {
        FieldValue::Int(v) => FieldValue::Int(v),
        other => panic!("unexpected value {other:?}"),
    }
}

#[test]
fn writers_reader_follows_its_memory_not_the_name() {
    let g = SegGuard::new("rv-wreader");
    let mut w = DynWriter::create(&g.name, fields(), &Default::default()).unwrap();
    w.write(&[(0, Value::Int(1))]).unwrap();
    flexshm_std::unlink(&g.name).unwrap();
    // A new segment under the same name, with another value.
    let mut other = DynWriter::create(&g.name, fields(), &Default::default()).unwrap();
    other.write(&[(0, Value::Int(99))]).unwrap();
    let mut r = w.reader().unwrap();
    assert_eq!(read_x(&mut r), FieldValue::Int(1));
    w.write(&[(0, Value::Int(2))]).unwrap();
    assert_eq!(read_x(&mut r), FieldValue::Int(2));
}

#[test]
fn claim_word_naming_no_process_is_taken_over_without_panic() {
    let g = SegGuard::new("rv-badpid");
    let w = DynWriter::create(&g.name, fields(), &Default::default()).unwrap();
    drop(w);
    // Claim word at header byte 64: pid in the low half. Ids above i32::MAX and 0 with a
    // non-zero start are no process; a writer must take the segment over (not panic,
    // not probe a process group with a negative id).
    for pid in [u32::MAX, 0x8000_0000, 0] {
        let word = (7u64 << 32) | u64::from(pid);
        g.poke(64, &word.to_le_bytes());
        let r = DynReader::open(&g.name, None).unwrap();
        assert_eq!(r.writer_alive(), Some(false), "pid {pid:#x}");
        let w = DynWriter::create(&g.name, fields(), &Default::default())
            .unwrap_or_else(|e| panic!("pid {pid:#x}: {e}"));
        drop(w);
    }
}
