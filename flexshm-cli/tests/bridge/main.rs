//! `flexshm bridge` end to end, on this machine: two bridge processes connected over an
//! explicit tcp/127.0.0.1 endpoint, multicast scouting off. Side A: this test writes a
//! segment with flexshm-std (Rust) and one bridge publishes it. Side B: another bridge
//! mirrors it under another name (both sides share /dev/shm) and a Python reader
//! (`tests/python/bridge_reader.py`) reads the mirror with the plain Python API and
//! checks every record: values, strings and arrays, truncated and unwritten fields.
//!
//! Segments are removed and processes killed when a test ends, also when it fails.

#![cfg(feature = "bridge")]

#[path = "../common/mod.rs"]
mod common;
mod harness;

use std::time::Duration;

use common::Name;
use flexshm_std::{CreateOptions, Dynamic, FieldDef, Kind, Mode, Writer};
use flexshm_zenoh::wire::SchemaMsg;
use flexshm_zenoh::zenoh::Wait;
use flexshm_zenoh::ZenohOptions;
use harness::{
    create, endpoint, open_when_there, wait_head, write_record, Bridge, PyReader, PATIENCE,
};

const N: u32 = 10_000;

/// The data key of `src` in these tests.
fn key(src: &Name) -> String {
    format!("flexshm/test/{}", src.as_str())
}

/// `--publish` argument: segment `src` to its key.
fn publish_arg(src: &Name) -> String {
    format!("{}={}", src.as_str(), key(src))
}

/// `--mirror` argument: `src`'s key into local segment `dst`.
fn mirror_arg(src: &Name, dst: &Name) -> String {
    format!("{}={}", key(src), dst.as_str())
}

/// Records among 1..=n the writer truncates (a string every 97th, an array every 89th).
fn truncated_in(n: u32) -> u64 {
    (1..=n)
        .map(|k| k.is_multiple_of(97) as u64 + k.is_multiple_of(89) as u64)
        .sum()
}

/// Writes records `from..=to`, record `k` only once the mirror has committed `k - ahead`
/// records (its local commit numbers count the records it wrote since it was created):
/// the link keeps up, so the source ring is never lapped.
fn write_paced(
    w: &mut Writer<Dynamic>,
    mirror: &mut flexshm_std::Reader<Dynamic>,
    from: u32,
    to: u32,
    ahead: u32,
) {
    for k in from..=to {
        if k > ahead {
            wait_head(mirror, k - ahead, "the mirror");
        }
        write_record(w, k);
    }
}

#[test]
fn fifo_records_reach_a_python_reader_and_none_is_lost() {
    let (src, dst) = (Name::new("fifo-src"), Name::new("fifo-dst"));
    let ep = endpoint();
    let mut w = create(&src, &CreateOptions::fifo(1024));
    let mirror_arg = mirror_arg(&src, &dst);
    let b = Bridge::start(&["--listen", &ep, "--mirror", &mirror_arg, "--slots", "16384"]);
    let publish_arg = publish_arg(&src);
    let a = Bridge::start(&["--connect", &ep, "--publish", &publish_arg]);
    write_record(&mut w, 1);
    let mut mirror = open_when_there(dst.as_str());
    let Some(py) = PyReader::start(
        "fifo_records_reach_a_python_reader",
        dst.as_str(),
        "fifo",
        Some(N),
    ) else {
        return;
    };
    // The mirror's local commits count the records it wrote: at most 512 in flight.
    write_paced(&mut w, &mut mirror, 2, N, 512);
    let rep = py.report();
    let (a, b) = (a.stop(), b.stop());
    let ctx = format!("{}\nA: {a:?}\nB: {b:?}", rep.0);
    rep.assert_consistent();
    assert_eq!(rep.u("records"), N as u64, "{ctx}");
    assert_eq!((rep.missing(), rep.u("lost")), (0, 0), "{ctx}");
    assert_eq!(rep.0["mode"], "fifo", "{ctx}");
    assert_eq!(rep.u("truncated"), truncated_in(N), "{ctx}");
    for (counter, want) in [
        ("written", N as u64),
        ("lost", 0),
        ("skipped", 0),
        ("invalid", 0),
    ] {
        assert_eq!(b.count("mirror", counter), want, "{counter}: {ctx}");
    }
    assert_eq!(a.count("publish", "published"), N as u64, "{ctx}");
    assert_eq!(a.count("publish", "source_lost"), 0, "{ctx}");
    assert_eq!((a.code, b.code), (Some(0), Some(0)), "{ctx}");
}

/// Single-slot, with side B started after side A has put its schema out: the mirror has
/// to ask the publisher for a schema it was never given. Then garbage on the key.
#[test]
fn single_slot_commits_reach_a_python_reader_and_garbage_is_rejected() {
    let (src, dst) = (Name::new("single-src"), Name::new("single-dst"));
    let ep = endpoint();
    let mut w = create(&src, &CreateOptions::default());
    let publish_arg = publish_arg(&src);
    let a = Bridge::start(&["--listen", &ep, "--publish", &publish_arg]);
    write_record(&mut w, 1);
    // The publisher's session, with its in-band schema message, starts before any
    // subscriber exists.
    a.wait_for_log(&["publishing", src.as_str()], 1);
    let mirror_arg = mirror_arg(&src, &dst);
    let b = Bridge::start(&["--connect", &ep, "--mirror", &mirror_arg]);
    let mut mirror = open_when_there(dst.as_str());
    wait_head(&mut mirror, 1, "the mirror");
    b.wait_for_log(&["schema fetched from the publisher", &key(&src)], 1);
    let Some(py) = PyReader::start("single_slot_commits", dst.as_str(), "single", Some(N)) else {
        return;
    };
    // As fast as the writer goes: the bridge sends the newest commit each time it looks.
    for k in 2..=N {
        write_record(&mut w, k);
    }
    let rep = py.report();

    // Garbage on the key, from a Zenoh session of this test: every message is dropped
    // and logged with the key and the reason; the mirror segment does not change.
    let head = mirror.head();
    let z = ZenohOptions::loopback(&[], &[&ep])
        .open()
        .expect("zenoh session");
    let p = z.declare_publisher(key(&src)).wait().expect("publisher");
    let (tx, rx) = std::sync::mpsc::channel();
    p.matching_listener()
        .callback(move |m| {
            if m.matching() {
                let _ = tx.send(());
            }
        })
        .background()
        .wait()
        .expect("matching listener");
    if !p.matching_status().wait().expect("status").matching() {
        rx.recv_timeout(PATIENCE)
            .expect("the mirror's subscription");
    }
    let bad_hash = {
        let fields = vec![FieldDef::new("x", Kind::str(4))];
        let mut m = SchemaMsg::new(9, 9, Mode::Single, fields).unwrap().encode();
        let last = m.len() - 1;
        m[last] ^= 1;
        m
    };
    let mut empty_batch = b"FXZB\x02\x03\x00\x00".to_vec();
    empty_batch.extend_from_slice(&[0; 28]);
    empty_batch[16] = 1; // first seq 1, record count 0
    let garbage: Vec<Vec<u8>> = vec![
        b"junk".to_vec(),
        [&b"FXZB\x09\x02\x00\x00"[..], &[0; 40]].concat(),
        b"FXZB\x02\x07\x00\x00".to_vec(),
        vec![0; 64],
        bad_hash,
        empty_batch,
    ];
    for g in &garbage {
        p.put(g.clone()).wait().expect("put");
    }
    b.wait_for_log(
        &["invalid message dropped", &key(&src), "reason"],
        garbage.len(),
    );
    assert_eq!(mirror.head(), head, "garbage changed the mirror");
    let _ = z.close().wait();

    let (a, b) = (a.stop(), b.stop());
    let ctx = format!("{}\nA: {a:?}\nB: {b:?}", rep.0);
    rep.assert_consistent();
    assert_eq!(rep.0["last"], N, "the last commit arrives: {ctx}");
    assert_eq!(rep.0["mode"], "single", "{ctx}");
    assert_eq!(b.count("mirror", "invalid"), garbage.len() as u64, "{ctx}");
    assert_eq!(b.count("mirror", "lost"), 0, "{ctx}");
    // Every commit is either published or replaced before the publisher looked.
    let published = a.count("publish", "published");
    assert_eq!(published + a.count("publish", "skipped"), N as u64, "{ctx}");
    assert_eq!(b.count("mirror", "written"), published, "{ctx}");
    assert_eq!(b.count("mirror", "no_schema"), 0, "{ctx}");
}

/// Side B stopped (SIGSTOP) while side A writes into a small ring: the link stalls,
/// Zenoh closes it (after the blocking timeout set in A's Zenoh configuration file), the
/// publisher holds while it has no subscriber and the local writer laps it. After
/// SIGCONT the link comes back and every record that did not reach the reader is counted
/// by the bridges: none is lost silently.
#[test]
fn a_stopped_side_b_makes_loss_counted_not_silent() {
    let (src, dst) = (Name::new("stall-src"), Name::new("stall-dst"));
    let ep = endpoint();
    let mut w = create(&src, &CreateOptions::fifo(64));
    let config = std::env::temp_dir().join(format!("{}stall-zenoh.json5", common::prefix()));
    std::fs::write(
        &config,
        "{ transport: { link: { tx: { queue: { congestion_control: \
         { block: { wait_before_close: 300000 } } } } } } }",
    )
    .expect("config file");
    let _remove = Cleanup(config.clone());
    let mirror_arg = mirror_arg(&src, &dst);
    let b = Bridge::start(&["--listen", &ep, "--mirror", &mirror_arg, "--slots", "65536"]);
    let publish_arg = publish_arg(&src);
    let config_arg = config.to_string_lossy().into_owned();
    let a = Bridge::start(&[
        "--config",
        &config_arg,
        "--connect",
        &ep,
        "--publish",
        &publish_arg,
    ]);
    write_record(&mut w, 1);
    let mut mirror = open_when_there(dst.as_str());
    wait_head(&mut mirror, 1, "the mirror");
    let Some(mut py) = PyReader::start("a_stopped_side_b", dst.as_str(), "fifo", None) else {
        return;
    };
    let held = a.log_count(&["no subscriber"]);
    b.signal(libc::SIGSTOP);
    // Write until side A has given up on the stalled link, then lap its reader for sure.
    let mut k = 1;
    let mut until = None;
    while until.is_none_or(|u| k < u) {
        k += 1;
        write_record(&mut w, k);
        if k.is_multiple_of(500) {
            if until.is_none() && a.log_count(&["no subscriber"]) > held {
                until = Some(k + 1000);
            }
            // Room for the bridges on two cores.
            std::thread::sleep(Duration::from_micros(200));
        }
        assert!(
            k < 50_000_000,
            "side A never noticed the stalled link:\n{}",
            a.log()
        );
    }
    let resumed = a.log_count(&["a subscriber matches: publishing"]);
    b.signal(libc::SIGCONT);
    a.wait_for_log(&["a subscriber matches: publishing"], resumed + 1);
    let last = k + 1;
    py.last(last);
    write_record(&mut w, last);
    let rep = py.report();
    let (a, b) = (a.stop(), b.stop());
    let ctx = format!("{}\nA: {a:?}\nB: {b:?}", rep.0);
    rep.assert_consistent();
    assert_eq!(rep.0["last"], last, "{ctx}");
    assert_eq!(rep.u("lost"), 0, "{ctx}");
    let missing = rep.missing();
    assert!(
        missing > 0,
        "the stall should have overrun the 64-slot ring: {ctx}"
    );
    let (lost, skipped) = (b.count("mirror", "lost"), b.count("mirror", "skipped"));
    assert_eq!(
        lost + skipped,
        missing,
        "the mirror counts every missing record: {ctx}"
    );
    assert_eq!(a.count("publish", "source_lost"), skipped, "{ctx}");
    assert_eq!(b.count("mirror", "written"), last as u64 - missing, "{ctx}");
}

/// Waits until the newest record of the mirror carries `seq` or a later one.
fn wait_head_seq(mirror: &mut flexshm_std::Reader<Dynamic>, seq: u32) {
    let t0 = std::time::Instant::now();
    let mut buf = vec![0u8; mirror.snapshot_len()];
    loop {
        let head = mirror.head();
        let opts = flexshm_std::ReadOptions {
            latest: true,
            reset_modified: false,
        };
        if let Ok(info) = mirror.read_into(&mut buf, opts, Duration::ZERO) {
            let snap = flexshm_std::Snapshot::<Dynamic>::new(&buf, mirror.layout(), info);
            if let Ok(flexshm_std::FieldValue::UInt(s)) = snap.get(4) {
                if s >= seq as u64 {
                    return;
                }
            }
        }
        assert!(
            t0.elapsed() < PATIENCE,
            "record {seq} did not reach the mirror"
        );
        let _ = mirror.wait_head_change(head, Duration::from_millis(200));
    }
}

/// Removes a file when dropped.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Side A's bridge killed (SIGKILL) mid-stream and started again: the new session
/// starts at the oldest record in the ring, the mirror drops what it already wrote, and
/// the reader gets every record once.
#[test]
fn side_a_killed_and_restarted_mid_stream_loses_nothing() {
    let (src, dst) = (Name::new("kill-a-src"), Name::new("kill-a-dst"));
    let ep = endpoint();
    let mut w = create(&src, &CreateOptions::fifo(4096));
    let mirror_arg = mirror_arg(&src, &dst);
    let b = Bridge::start(&["--listen", &ep, "--mirror", &mirror_arg, "--slots", "16384"]);
    let publish_arg = publish_arg(&src);
    let a_args = ["--connect", ep.as_str(), "--publish", publish_arg.as_str()];
    let a = Bridge::start(&a_args);
    write_record(&mut w, 1);
    let mut mirror = open_when_there(dst.as_str());
    let Some(py) = PyReader::start("side_a_killed", dst.as_str(), "fifo", Some(N)) else {
        return;
    };
    write_paced(&mut w, &mut mirror, 2, N / 2, 1024);
    a.kill();
    // Written while no bridge publishes: the ring (4096) keeps them.
    for k in N / 2 + 1..=3 * N / 4 {
        write_record(&mut w, k);
    }
    let a = Bridge::start(&a_args);
    write_paced(&mut w, &mut mirror, 3 * N / 4 + 1, N, 1024);
    let rep = py.report();
    let (a, b) = (a.stop(), b.stop());
    let ctx = format!("{}\nA: {a:?}\nB: {b:?}", rep.0);
    rep.assert_consistent();
    assert_eq!(rep.u("records"), N as u64, "{ctx}");
    assert_eq!((rep.missing(), rep.u("lost")), (0, 0), "{ctx}");
    assert_eq!(b.count("mirror", "sessions"), 2, "{ctx}");
    assert_eq!(b.count("mirror", "written"), N as u64, "{ctx}");
    assert_eq!(b.count("mirror", "lost_restart"), 0, "{ctx}");
    assert!(
        b.count("mirror", "replayed") > 0,
        "the restart replays the ring: {ctx}"
    );
}

/// Side B's bridge killed mid-stream and started again: the new mirror takes its
/// segment over (the Python reader keeps reading it), fetches the schema of the running
/// session, and gets everything side A held while no subscriber was there. Only what was
/// in flight when it died is missing: one gap at most.
#[test]
fn side_b_killed_and_restarted_mid_stream_resumes() {
    let (src, dst) = (Name::new("kill-b-src"), Name::new("kill-b-dst"));
    let ep = endpoint();
    let mut w = create(&src, &CreateOptions::fifo(4096));
    let mirror_arg = mirror_arg(&src, &dst);
    let b_args = [
        "--listen",
        ep.as_str(),
        "--mirror",
        mirror_arg.as_str(),
        "--slots",
        "16384",
    ];
    let b = Bridge::start(&b_args);
    let publish_arg = publish_arg(&src);
    let a = Bridge::start(&["--connect", &ep, "--publish", &publish_arg]);
    write_record(&mut w, 1);
    let mut mirror = open_when_there(dst.as_str());
    let Some(py) = PyReader::start("side_b_killed", dst.as_str(), "fifo", Some(N)) else {
        return;
    };
    write_paced(&mut w, &mut mirror, 2, N / 2, 1024);
    let held = a.log_count(&["no subscriber"]);
    b.kill();
    a.wait_for_log(&["no subscriber"], held + 1);
    for k in N / 2 + 1..=3 * N / 4 {
        write_record(&mut w, k);
    }
    let b = Bridge::start(&b_args);
    b.wait_for_log(&["schema fetched from the publisher"], 1);
    for k in 3 * N / 4 + 1..=N {
        write_record(&mut w, k);
        if k.is_multiple_of(512) {
            wait_head_seq(&mut mirror, k - 256);
        }
    }
    let rep = py.report();
    let (a, b) = (a.stop(), b.stop());
    let ctx = format!("{}\nA: {a:?}\nB: {b:?}", rep.0);
    rep.assert_consistent();
    assert_eq!(rep.0["last"], N, "{ctx}");
    assert_eq!(rep.u("lost"), 0, "{ctx}");
    assert!(rep.gaps() <= 1, "{ctx}");
    // Everything written while side B was down arrived.
    let gaps = rep.0["gaps"].as_array().unwrap();
    assert!(
        gaps.iter()
            .all(|g| g[1].as_u64().unwrap() <= (N / 2) as u64),
        "{ctx}"
    );
    assert_eq!(a.count("publish", "source_lost"), 0, "{ctx}");
    assert_eq!(
        (b.count("mirror", "sessions"), b.count("mirror", "lost")),
        (1, 0),
        "{ctx}"
    );
    assert_eq!(b.count("mirror", "invalid"), 0, "{ctx}");
}

#[test]
fn a_mirror_segment_with_another_layout_is_a_clear_error() {
    // Usage errors first: exit status 2, nothing started.
    let r = common::run(&["bridge"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = common::run(&["bridge", "--mirror", "nokey"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("KEY=SEGMENT"), "{r:?}");
    let r = common::run(&["bridge", "--publish", "x", "--slots", "0"]);
    assert_eq!(r.code, 2, "{r:?}");

    let (src, dst) = (Name::new("layout-src"), Name::new("layout-dst"));
    let other = vec![FieldDef::new("x", Kind::Scalar(flexshm_std::Dtype::U8))];
    drop(
        Writer::<Dynamic>::create_with_fields(dst.as_str(), &other, &CreateOptions::default())
            .unwrap(),
    );
    let mut w = create(&src, &CreateOptions::default());
    write_record(&mut w, 1);
    let ep = endpoint();
    let mirror_arg = mirror_arg(&src, &dst);
    let b = Bridge::start(&["--listen", &ep, "--mirror", &mirror_arg]);
    let publish_arg = publish_arg(&src);
    let a = Bridge::start(&["--connect", &ep, "--publish", &publish_arg]);
    // The mirror gives up at its first record; with nothing else to do, side B ends.
    let b = b.wait();
    let a = a.stop();
    assert_eq!(b.code, Some(1), "{b:?}");
    let line = b
        .stderr
        .lines()
        .find(|l| l.starts_with("flexshm: bridge: mirror"))
        .unwrap_or_else(|| panic!("{b:?}"));
    assert!(
        line.contains(dst.as_str()) && line.contains("another layout"),
        "{line}"
    );
    assert_eq!(a.code, Some(0), "{a:?}");
    // The segment is left as it was.
    let r = open_when_there(dst.as_str());
    assert_eq!(r.layout().fields(), &other[..]);
}
