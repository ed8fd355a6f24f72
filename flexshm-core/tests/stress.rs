//! Multi-threaded stress: one writer hammers records whose fields are all derived from
//! one counter; several readers check every snapshot they accept is one whole record and
//! that they see many distinct commits. Both modes. The writer pauses (yielding, no
//! sleep) every `STEP` commits until every reader has read that very commit, so "many
//! distinct commits" (at least one per step) holds on any scheduler without timing
//! assumptions; between pauses the writer runs flat out against the readers.
#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;

use common::*;
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Mode, ReadOptions, Reader,
    Snapshot, Value, Writer,
};

const FIELDS: &[FieldDef] = &[
    FieldDef::new("n", Kind::Scalar(Dtype::U64)),
    FieldDef::new("neg", Kind::Scalar(Dtype::I32)),
    FieldDef::new("x", Kind::Scalar(Dtype::F64)),
    FieldDef::new("small", Kind::Scalar(Dtype::U8)),
    FieldDef::new("text", Kind::str(12)),
    FieldDef::new("rows", Kind::array(Dtype::U32, &[4, 2])),
];

const READERS: usize = 3;
const STEP: u32 = 64;

fn text(n: u64) -> String {
    // Length varies with n, and every fourth value is cut to 12 code points.
    format!("#{n}·{}", "é".repeat((n % 9) as usize))
}

fn rows(n: u64) -> Vec<u8> {
    let k = (n % 6) as usize; // 0..=5 rows: 4 and 5 are truncated to 4
    (0..k * 2)
        .flat_map(|j| (n as u32).wrapping_add(j as u32).to_ne_bytes())
        .collect()
}

fn write(w: &mut Writer<'_, Dynamic<&'static [FieldDef]>>, n: u64) {
    let t = text(n);
    let r = rows(n);
    let nrows = r.len() / 8;
    w.write_fields(&[
        (0, Value::UInt(n)),
        (1, Value::Int(-(n as i32 as i64))),
        (2, Value::Float(n as f64 * 0.5)),
        (3, Value::UInt(n % 251)),
        (4, Value::Str(&t)),
        (
            5,
            Value::Array(ArrayRef::new(Dtype::U32, &[nrows, 2], &r).unwrap()),
        ),
    ])
    .unwrap();
}

/// Checks that a snapshot is exactly the record written for its counter value, and
/// returns that value.
fn check(snap: &Snapshot<'_, '_, Dynamic<&'static [FieldDef]>>) -> u64 {
    let n = match snap.get(0).unwrap() {
        FieldValue::UInt(n) => n,
        other => panic!("{other:?}"),
    };
    if n == 0 {
        // The empty record of a fresh single-slot segment.
        assert!((0..FIELDS.len()).all(|i| snap.status(i).unwritten()));
        return 0;
    }
    assert_eq!(
        snap.get(1).unwrap(),
        FieldValue::Int(-(n as i32 as i64)),
        "torn at {n}"
    );
    assert_eq!(
        snap.get(2).unwrap(),
        FieldValue::Float(n as f64 * 0.5),
        "torn at {n}"
    );
    assert_eq!(
        snap.get(3).unwrap(),
        FieldValue::UInt(n % 251),
        "torn at {n}"
    );
    let t = text(n);
    let want: String = t.chars().take(12).collect();
    assert_eq!(snap.get(4).unwrap(), FieldValue::Str(&want), "torn at {n}");
    assert_eq!(snap.status(4).truncated, t.chars().count() > 12);
    let r = rows(n);
    let stored = &r[..r.len().min(32)];
    match snap.get(5).unwrap() {
        FieldValue::Array { bytes, .. } => {
            let want: Vec<u8> = stored
                .chunks_exact(4)
                .flat_map(|c| u32::from_ne_bytes(c.try_into().unwrap()).to_le_bytes())
                .collect();
            assert_eq!(bytes, &want[..], "torn at {n}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snap.status(5).truncated, r.len() > 32);
    // Every field was written in this very record.
    assert_eq!(snap.info().modified, (1 << FIELDS.len()) - 1);
    n
}

fn stress(mode: Mode) {
    let total: u32 = scaled(6_400, 2 * STEP as usize) as u32;
    let mem = Mem::for_schema(FIELDS, mode);
    let region = mem.region();
    let progress: Vec<AtomicU32> = (0..READERS).map(|_| AtomicU32::new(0)).collect();
    let done = AtomicBool::new(false);
    let mut sut = Writer::<Dynamic<_>>::create(region, FIELDS, mode).unwrap();

    let results = thread::scope(|s| {
        let handles: Vec<_> = (0..READERS)
            .map(|k| {
                let (progress, done) = (&progress, &done);
                s.spawn(move || {
                    let mut r = Reader::<Dynamic<_>>::open_with(region, FIELDS).unwrap();
                    let mut buf = vec![0u8; r.snapshot_len()];
                    let mut distinct = 0u32;
                    let mut accepted = 0u32;
                    let mut last: Option<u32> = None;
                    let mut first: Option<u32> = None;
                    // Records lost between open and the first read (counted since the
                    // reader opened; the check below is about what follows `first`).
                    let mut lost_before_first = 0u64;
                    loop {
                        // Read `done` before the attempt: if it was set, this read sees
                        // the final record and the loop can end once it has.
                        let finished = done.load(Ordering::Acquire);
                        match r.try_read(&mut buf, ReadOptions::default()) {
                            Ok(snap) => {
                                let n = check(&snap);
                                let c = snap.commit();
                                assert_eq!(n, c as u64, "record does not match its commit");
                                if let Some(p) = last {
                                    if mode.is_fifo() {
                                        assert_eq!(c, p + 1 + snap.lost(), "loss count");
                                    } else {
                                        assert!(c >= p, "went backwards: {p} -> {c}");
                                    }
                                }
                                if first.is_none() {
                                    first = Some(c);
                                    lost_before_first = snap.lost() as u64;
                                }
                                if last != Some(c) {
                                    distinct += 1;
                                }
                                accepted += 1;
                                last = Some(c);
                                progress[k].store(c, Ordering::Release);
                            }
                            Err(Error::NoRecord | Error::Contended) => thread::yield_now(),
                            Err(e) => panic!("reader {k}: {e}"),
                        }
                        if finished && last == Some(total) {
                            break;
                        }
                    }
                    (
                        distinct,
                        accepted,
                        r.lost_total() - lost_before_first,
                        first.unwrap(),
                    )
                })
            })
            .collect();

        for n in 1..=total {
            write(&mut sut, n as u64);
            if mode.is_fifo() {
                assert_eq!(sut.finalize(), n);
            }
            assert_eq!(sut.head(), n);
            if n % STEP == 0 {
                let target = n;
                // A reader that stopped (failed) never catches up: stop waiting then,
                // and let join() report its panic.
                while progress.iter().any(|p| p.load(Ordering::Acquire) < target)
                    && !handles.iter().any(|h| h.is_finished())
                {
                    thread::yield_now();
                }
            }
        }
        done.store(true, Ordering::Release);
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });

    let head = sut.head();
    for (k, (distinct, accepted, lost, first)) in results.into_iter().enumerate() {
        let min = total / STEP;
        assert!(distinct >= min, "reader {k} saw only {distinct} commits");
        if mode.is_fifo() {
            // Every record from the first one read to the last was read or counted lost.
            assert_eq!(
                accepted as u64 + lost,
                (head - first + 1) as u64,
                "reader {k}"
            );
        }
    }
}

#[test]
fn stress_single_slot() {
    stress(Mode::Single);
}

#[test]
fn stress_fifo() {
    stress(Mode::Fifo { slots: 8 });
}
