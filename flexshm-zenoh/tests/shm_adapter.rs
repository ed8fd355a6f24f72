//! The flexshm-std adapter end to end without a network: a real source segment, the
//! publisher's encoding, the mirror writing a real local segment; what a reader of the
//! mirror sees is what a reader of the source sees (values, written, truncated,
//! modified).

mod common;

use std::time::Duration;

use common::{fields, open_when_there, read_fifo, seen, Name, Seen};
use flexshm_std::{
    ArrayRef, CreateOptions, Dtype, Dynamic, FieldDef, Kind, ReadOptions, Reader, Value, Writer,
};
use flexshm_zenoh::mirror::{Mirror, MirrorOptions, Outcome};
use flexshm_zenoh::publish::{Publisher, SegmentSource};
use flexshm_zenoh::shm::{StdSink, StdSource};
use flexshm_zenoh::{BridgeError, StartAt};

const T: Duration = Duration::from_secs(2);

/// Writes record `k`: a varying subset of fields, with truncated strings and arrays
/// now and then; `timestamp` is never written.
fn write_record(w: &mut Writer<Dynamic>, k: u32) {
    let long = "x".repeat(40) + &k.to_string();
    let short = format!("ok {k} ✓");
    let rows = if k.is_multiple_of(4) {
        5
    } else {
        (k % 4) as usize
    };
    let samples: Vec<u8> = (0..rows * 2)
        .flat_map(|e| ((e as i16) * 100 - k as i16).to_le_bytes())
        .collect();
    let mut v: Vec<(usize, Value<'_>)> = vec![(0, Value::Float(k as f64 * 0.25))];
    if k.is_multiple_of(3) {
        v.push((1, Value::Float(1000.0 + k as f64)));
    }
    if k % 5 != 2 {
        v.push((
            3,
            Value::Str(if k.is_multiple_of(5) { &long } else { &short }),
        ));
    }
    v.push((4, Value::UInt(k as u64)));
    if k % 2 == 1 || k.is_multiple_of(4) {
        let a = ArrayRef::new(Dtype::I16, &[rows, 2], &samples).unwrap();
        v.push((5, Value::Array(a)));
    }
    w.write_fields(&v).unwrap();
}

/// Publishes whatever `src` has now into `mirror`.
fn pump(src: &mut StdSource, p: &mut Publisher, mirror: &mut Mirror<StdSink>) -> usize {
    let mut n = 0;
    let mut buf = Vec::new();
    while let Some(rec) = src.next_record(Duration::from_millis(20)).unwrap() {
        p.encode(&rec, &mut buf).unwrap();
        let out = match mirror.handle(&buf).unwrap() {
            Outcome::NeedSchema { .. } => {
                mirror.learn_schema(&p.schema().encode()).unwrap();
                mirror.handle(&buf).unwrap()
            }
            o => o,
        };
        assert!(matches!(out, Outcome::Written { .. }), "{out:?}");
        n += 1;
    }
    n
}

#[test]
fn fifo_records_are_mirrored_exactly() {
    let (src_name, dst_name) = (Name::new("fifo-src"), Name::new("fifo-dst"));
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src_name.0, &fields(), &CreateOptions::fifo(64))
            .unwrap();
    let mut reference = Reader::<Dynamic>::open(&src_name.0).unwrap();
    let mut src = StdSource::open(&src_name.0, StartAt::Oldest).unwrap();
    let mut p = Publisher::new(&src).unwrap();
    let mut mirror = Mirror::new(StdSink::new(&dst_name.0, 0o600), MirrorOptions::default());
    for k in 1..=40 {
        write_record(&mut w, k);
        w.finalize().unwrap();
        if k % 10 == 0 {
            assert_eq!(pump(&mut src, &mut p, &mut mirror), 10);
        }
    }
    let (want, _) = read_fifo(&mut reference, 40, T);
    let mut r = open_when_there(&dst_name.0, T);
    assert_eq!(r.mode(), flexshm_std::Mode::Fifo { slots: 64 });
    let (got, infos) = read_fifo(&mut r, 40, T);
    assert_eq!(got.len(), 40);
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "record {}", k + 1);
    }
    // What the test meant to cover is there.
    assert!(got.iter().any(|s| s.status[3].truncated));
    assert!(got.iter().any(|s| s.status[5].truncated));
    assert!(got.iter().all(|s| s.status[2].unwritten()));
    assert!(got
        .iter()
        .any(|s| s.status[1].written && !s.status[1].modified));
    assert!(infos.iter().all(|i| i.lost == 0));
    let s = mirror.stats();
    assert_eq!((s.written, s.lost, s.invalid, s.skipped), (40, 0, 0, 0));
}

#[test]
fn single_slot_latest_is_mirrored() {
    let (src_name, dst_name) = (Name::new("single-src"), Name::new("single-dst"));
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src_name.0, &fields(), &CreateOptions::default())
            .unwrap();
    let mut reference = Reader::<Dynamic>::open(&src_name.0).unwrap();
    let mut src = StdSource::open(&src_name.0, StartAt::Oldest).unwrap();
    let mut p = Publisher::new(&src).unwrap();
    let mut mirror = Mirror::new(StdSink::new(&dst_name.0, 0o600), MirrorOptions::default());
    // Nothing committed yet: nothing to publish.
    assert_eq!(pump(&mut src, &mut p, &mut mirror), 0);
    let mut buf = vec![0u8; reference.snapshot_len()];
    let opts = ReadOptions {
        latest: false,
        reset_modified: true,
    };
    let mut r: Option<Reader<Dynamic>> = None;
    let mut rbuf = Vec::new();
    for round in 0..6u32 {
        // Several commits between publications: the bridge sends only the newest, with
        // `modified` covering all of them.
        for k in 0..=round {
            write_record(&mut w, round * 10 + k);
        }
        assert_eq!(pump(&mut src, &mut p, &mut mirror), 1);
        let info = reference.read_into(&mut buf, opts, T).unwrap();
        let want = seen(&buf, &reference, &info);
        let r = r.get_or_insert_with(|| open_when_there(&dst_name.0, T));
        rbuf.resize(r.snapshot_len(), 0);
        let info = r.read_into(&mut rbuf, opts, T).unwrap();
        let got: Seen = seen(&rbuf, r, &info);
        assert_eq!(got, want, "round {round}");
    }
    let s = mirror.stats();
    assert_eq!((s.written, s.lost), (6, 0));
    assert_eq!(s.skipped, 1 + 2 + 3 + 4 + 5);
}

#[test]
fn an_existing_mirror_segment_with_another_layout_is_a_clear_error() {
    let (src_name, dst_name) = (Name::new("mm-src"), Name::new("mm-dst"));
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src_name.0, &fields(), &CreateOptions::default())
            .unwrap();
    let other = vec![FieldDef::new("temperature", Kind::Scalar(Dtype::F32))];
    let mut local =
        Writer::<Dynamic>::create_with_fields(&dst_name.0, &other.clone(), &Default::default())
            .unwrap();
    local.write_fields(&[(0, Value::Float(1.5))]).unwrap();
    drop(local);
    write_record(&mut w, 1);
    let mut src = StdSource::open(&src_name.0, StartAt::Oldest).unwrap();
    let mut p = Publisher::new(&src).unwrap();
    let mut mirror = Mirror::new(StdSink::new(&dst_name.0, 0o600), MirrorOptions::default());
    mirror.learn_schema(&p.schema().encode()).unwrap();
    let mut buf = Vec::new();
    let rec = src.next_record(T).unwrap().unwrap();
    p.encode(&rec, &mut buf).unwrap();
    let err = mirror.handle(&buf).unwrap_err();
    assert!(matches!(err, BridgeError::Mismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&dst_name.0) && msg.contains("temperature"),
        "{msg}"
    );
    // The local segment is untouched.
    let r = Reader::<Dynamic>::open_expecting(&dst_name.0, &other, &Default::default()).unwrap();
    assert_eq!(r.head(), 1);

    // Another mode is refused the same way.
    let dst2 = Name::new("mm-dst2");
    drop(
        Writer::<Dynamic>::create_with_fields(&dst2.0, &fields(), &CreateOptions::fifo(4)).unwrap(),
    );
    let mut mirror = Mirror::new(StdSink::new(&dst2.0, 0o600), MirrorOptions::default());
    mirror.learn_schema(&p.schema().encode()).unwrap();
    assert!(matches!(
        mirror.handle(&buf),
        Err(BridgeError::Mismatch { .. })
    ));
}

#[test]
fn source_id_names_the_segment_instance() {
    let name = Name::new("srcid");
    let w = Writer::<Dynamic>::create_with_fields(&name.0, &fields(), &CreateOptions::default())
        .unwrap();
    let a = StdSource::open(&name.0, StartAt::Oldest)
        .unwrap()
        .source_id();
    let b = StdSource::open(&format!("/{}", name.0), StartAt::Oldest)
        .unwrap()
        .source_id();
    assert_ne!(a, 0);
    assert_eq!(a, b);
    drop(w);
    flexshm_std::unlink(&name.0).unwrap();
    // Keep the old inode alive so the new segment cannot reuse its number.
    let _old = StdSource::open(&name.0, StartAt::Oldest).err();
    let _w = Writer::<Dynamic>::create_with_fields(&name.0, &fields(), &CreateOptions::default())
        .unwrap();
    let c = StdSource::open(&name.0, StartAt::Oldest)
        .unwrap()
        .source_id();
    assert_ne!(a, c);
}

#[test]
fn a_restarted_mirror_continues_its_segment() {
    let (src_name, dst_name) = (Name::new("rs-src"), Name::new("rs-dst"));
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src_name.0, &fields(), &CreateOptions::fifo(32))
            .unwrap();
    let mut src = StdSource::open(&src_name.0, StartAt::Oldest).unwrap();
    let mut p = Publisher::new(&src).unwrap();
    let mut mirror = Mirror::new(StdSink::new(&dst_name.0, 0o600), MirrorOptions::default());
    for k in 1..=5 {
        write_record(&mut w, k);
        w.finalize().unwrap();
    }
    assert_eq!(pump(&mut src, &mut p, &mut mirror), 5);
    let mut r = open_when_there(&dst_name.0, T);
    drop(mirror);
    // A new mirror process takes the segment over (its writer is gone) and goes on.
    let mut mirror = Mirror::new(StdSink::new(&dst_name.0, 0o600), MirrorOptions::default());
    for k in 6..=10 {
        write_record(&mut w, k);
        w.finalize().unwrap();
    }
    assert_eq!(pump(&mut src, &mut p, &mut mirror), 5);
    let (got, infos) = read_fifo(&mut r, 10, T);
    assert_eq!(got.len(), 10);
    let commits: Vec<u32> = infos.iter().map(|i| i.commit).collect();
    assert_eq!(commits, (1..=10).collect::<Vec<u32>>());
    assert_eq!(got[9].values[4].as_deref(), Some("UInt(10)"));
}
