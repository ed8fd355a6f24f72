//! The bridge over Zenoh in one process: two peer sessions connected over an explicit
//! tcp/127.0.0.1 endpoint with multicast scouting off; a publisher on side A, a mirror
//! on side B into another local name (both sides share /dev/shm).

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{fields, open_when_there, read_fifo, Name};
use flexshm_std::{ArrayRef, CreateOptions, Dtype, Dynamic, ReadOptions, Value, Writer};
use flexshm_zenoh::zenoh::Wait;
use flexshm_zenoh::{spawn_mirror, spawn_publisher, MirrorSpec, PublishSpec, ZenohOptions};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sessions() -> (flexshm_zenoh::zenoh::Session, flexshm_zenoh::zenoh::Session) {
    flexshm_zenoh::zenoh::init_log_from_env_or("error");
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let a = ZenohOptions::loopback(&[&ep], &[]).open().unwrap();
    let b = ZenohOptions::loopback(&[], &[&ep]).open().unwrap();
    (a, b)
}

fn write(w: &mut Writer<Dynamic>, k: u32) {
    let msg = format!("record {k}");
    let rows = (k % 5) as usize;
    let samples: Vec<u8> = (0..rows * 2)
        .flat_map(|e| (e as i16 + k as i16).to_le_bytes())
        .collect();
    w.write_fields(&[
        (0, Value::Float(k as f64)),
        (3, Value::Str(&msg)),
        (4, Value::UInt(k as u64)),
        (
            5,
            Value::Array(ArrayRef::new(Dtype::I16, &[rows.min(5), 2], &samples).unwrap()),
        ),
    ])
    .unwrap();
}

#[test]
fn fifo_records_cross_the_link_in_order() {
    const N: u32 = 3000;
    let (a, b) = sessions();
    let (src, dst) = (Name::new("lb-src"), Name::new("lb-dst"));
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src.0, &fields(), &CreateOptions::fifo(4096))
            .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let key = format!("flexshm/test/{}", src.0);
    let m = spawn_mirror(&b, MirrorSpec::new(&key, &dst.0), stop.clone()).unwrap();
    let mut spec = PublishSpec::new(&src.0);
    spec.key = Some(key.clone());
    let p = spawn_publisher(&a, spec, stop.clone()).unwrap();

    let reader = std::thread::spawn({
        let dst = dst.0.clone();
        move || {
            let mut r = open_when_there(&dst, Duration::from_secs(10));
            read_fifo(&mut r, N as usize, Duration::from_secs(60))
        }
    });
    for k in 1..=N {
        write(&mut w, k);
        w.finalize().unwrap();
        if k % 500 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (got, infos) = reader.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let pstats = p.join().unwrap().unwrap();
    let mstats = m.join().unwrap().unwrap();
    assert_eq!(got.len(), N as usize, "{pstats:?} {mstats:?}");
    for (k, s) in got.iter().enumerate() {
        let k = k as u32 + 1;
        assert_eq!(s.values[4].as_deref(), Some(format!("UInt({k})").as_str()));
        assert_eq!(
            s.values[3].as_deref(),
            Some(format!("Str(\"record {k}\")").as_str())
        );
        assert!(s.status[1].unwritten() && s.status[0].modified);
    }
    assert!(infos.iter().all(|i| i.lost == 0));
    assert_eq!((pstats.published, pstats.source_lost), (N as u64, 0));
    assert_eq!(
        (mstats.written, mstats.lost, mstats.invalid),
        (N as u64, 0, 0)
    );
    assert_eq!(mstats.sessions, 1);
}

#[test]
fn single_slot_and_garbage() {
    let (a, b) = sessions();
    let (src, dst) = (Name::new("lbs-src"), Name::new("lbs-dst"));
    let mut w = Writer::<Dynamic>::create_with_fields(&src.0, &fields(), &CreateOptions::default())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let key = format!("flexshm/test/{}", src.0);
    let m = spawn_mirror(&b, MirrorSpec::new(&key, &dst.0), stop.clone()).unwrap();
    let mut spec = PublishSpec::new(&src.0);
    spec.key = Some(key.clone());
    spec.express = true;
    let p = spawn_publisher(&a, spec, stop.clone()).unwrap();
    // Paced writes: each one is published (the link keeps up).
    let mut r = None;
    let mut buf = Vec::new();
    let opts = ReadOptions::default();
    for k in 1..=50u32 {
        write(&mut w, k);
        let r = r.get_or_insert_with(|| open_when_there(&dst.0, Duration::from_secs(10)));
        buf.resize(r.snapshot_len(), 0);
        let mut last = 0;
        for _ in 0..200 {
            let info = r.read_into(&mut buf, opts, Duration::from_secs(1)).unwrap();
            let v = flexshm_std::Snapshot::<Dynamic>::new(&buf, r.layout(), info)
                .get(4)
                .unwrap();
            if v == flexshm_std::FieldValue::UInt(k as u64) {
                last = info.commit;
                break;
            }
            r.wait_head_change(info.commit, Duration::from_millis(50))
                .unwrap();
        }
        assert_eq!(last, k, "record {k} did not arrive as local commit {k}");
    }
    // Garbage on the key is rejected; the mirror segment does not change.
    let head = r.as_ref().unwrap().head();
    for junk in [&b"junk"[..], b"FXZB\x01\x02\x00\x00", &[0u8; 64]] {
        a.put(key.as_str(), junk.to_vec()).wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.as_ref().unwrap().head(), head);
    stop.store(true, Ordering::Relaxed);
    let pstats = p.join().unwrap().unwrap();
    let mstats = m.join().unwrap().unwrap();
    assert_eq!(pstats.published, 50);
    assert_eq!((mstats.written, mstats.lost, mstats.invalid), (50, 0, 3));
}

#[test]
fn a_late_mirror_fetches_the_schema_it_never_saw() {
    let (a, b) = sessions();
    let (src, dst) = (Name::new("late-src"), Name::new("late-dst"));
    let mut w = Writer::<Dynamic>::create_with_fields(&src.0, &fields(), &CreateOptions::default())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let key = format!("flexshm/test/{}", src.0);
    let mut spec = PublishSpec::new(&src.0);
    spec.key = Some(key.clone());
    let p = spawn_publisher(&a, spec, stop.clone()).unwrap();
    // The schema message and the first records go out before any subscriber exists.
    for k in 1..=3 {
        write(&mut w, k);
        std::thread::sleep(Duration::from_millis(30));
    }
    let m = spawn_mirror(&b, MirrorSpec::new(&key, &dst.0), stop.clone()).unwrap();
    let mut k = 3;
    let mut arrived = None;
    for _ in 0..100 {
        k += 1;
        write(&mut w, k);
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(mut r) = flexshm_std::Reader::<flexshm_std::Dynamic>::open(&dst.0) {
            let mut buf = vec![0u8; r.snapshot_len()];
            let info = r
                .read_into(&mut buf, ReadOptions::default(), Duration::ZERO)
                .unwrap();
            let v = flexshm_std::Snapshot::<Dynamic>::new(&buf, r.layout(), info)
                .get(4)
                .unwrap();
            let v = match v {
                flexshm_std::FieldValue::UInt(x) => x,
                other => panic!("{other:?}"),
            };
            arrived = Some((v, info.commit));
            break;
        }
    }
    // One more write after the mirror exists: it arrives as the next local commit.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    p.join().unwrap().unwrap();
    let mstats = m.join().unwrap().unwrap();
    let (v, commit) = arrived.expect("the mirror segment never appeared");
    assert!(v > 3, "{v}");
    assert_eq!(commit, 1);
    assert_eq!(
        (mstats.sessions, mstats.no_schema, mstats.invalid),
        (1, 0, 0)
    );
    assert!(mstats.written >= 1);
}

#[test]
fn a_pattern_publishes_every_matching_segment() {
    let (a, b) = sessions();
    let tag = format!("pat{}", std::process::id());
    let first = Name(format!("flexshm-zenoh-test-{tag}-one"));
    let second = Name(format!("flexshm-zenoh-test-{tag}-two"));
    let other = Name(format!("flexshm-zenoh-test-{tag}x-no"));
    let mut w1 =
        Writer::<Dynamic>::create_with_fields(&first.0, &fields(), &CreateOptions::default())
            .unwrap();
    let mut w3 =
        Writer::<Dynamic>::create_with_fields(&other.0, &fields(), &CreateOptions::default())
            .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let prefix = format!("flexshm/test/{tag}");
    let mut mirrors = Vec::new();
    let mut dsts = Vec::new();
    for n in [&first, &second, &other] {
        // Mirrors are named outside the pattern (it would match them too).
        let dst = Name(n.0.replace("-test-", "-test-m-"));
        let key = format!("{prefix}/{}", n.0);
        mirrors.push(spawn_mirror(&b, MirrorSpec::new(&key, &dst.0), stop.clone()).unwrap());
        dsts.push(dst);
    }
    let mut spec = PublishSpec::new(&format!("flexshm-zenoh-test-{tag}-*"));
    spec.key = Some(prefix);
    let p = spawn_publisher(&a, spec, stop.clone()).unwrap();
    // The second segment appears after the bridge started.
    std::thread::sleep(Duration::from_millis(200));
    let mut w2 =
        Writer::<Dynamic>::create_with_fields(&second.0, &fields(), &CreateOptions::default())
            .unwrap();
    let mut seen = [false; 2];
    for k in 1..=100 {
        write(&mut w1, k);
        write(&mut w2, k);
        write(&mut w3, k);
        std::thread::sleep(Duration::from_millis(50));
        for (i, d) in dsts[..2].iter().enumerate() {
            seen[i] |= flexshm_std::exists(&d.0);
        }
        if seen == [true, true] {
            break;
        }
    }
    assert_eq!(seen, [true, true]);
    assert!(
        !flexshm_std::exists(&dsts[2].0),
        "a name the pattern does not match"
    );
    // A matched segment that goes away ends its publisher.
    drop(w2);
    drop(second);
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let stats = p.join().unwrap().unwrap();
    assert_eq!(stats.sessions, 2, "{stats:?}");
    assert!(stats.published >= 2);
    for m in mirrors {
        m.join().unwrap().unwrap();
    }
}
