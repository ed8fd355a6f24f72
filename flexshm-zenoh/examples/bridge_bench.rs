//! Bridged flexshm against raw Zenoh pub/sub of the same bytes, in one run.
//!
//! A skeleton for the bench workspace: two Zenoh peer sessions in this process (side A
//! listening, side B connecting over tcp/127.0.0.1, multicast scouting off) and two
//! payloads: `SensorData` (3 × f64 + str[32]) and a 640×480×3 uint8 image.
//!
//! - **Latency** (ping-pong, one-way = round trip / 2, p50 and p99). Raw: A puts the
//!   encoded record message on a key, a callback on B puts the same bytes back. Bridged:
//!   A writes a single-slot segment, a bridge publishes it, a mirror on B writes it into
//!   a local segment, an echo thread on B reads it and writes it into a second segment
//!   that is bridged back to A, where it is read. The raw messages are the exact bytes
//!   the bridge puts on the wire for the same record.
//! - **Throughput** (records per second delivered). Raw: A puts N messages with
//!   blocking congestion control, B counts them. Bridged: A writes N records into a FIFO
//!   segment (never more than half its ring ahead of the mirror's reader, so nothing is
//!   lost at the source), B reads them from the mirror segment.
//!
//! Targets (issue 14): bridged latency <= 1.2 × raw, bridged throughput >= 0.8 × raw.
//!
//! ```text
//! cargo run --release -p flexshm-zenoh --example bridge_bench -- [--payload sensor|image|both]
//!     [--what latency|throughput|both] [--rounds N] [--count N]
//! ```
//!
//! Both sides in one process share Zenoh's runtime threads and the machine's cores; the
//! bench workspace should run side B as a separate process for the published numbers.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexshm_core::{ArrayRef, Dtype, FieldDef, FieldValue, Kind, Mode, ReadOptions, Value};
use flexshm_std::{CreateOptions, Dynamic, ReadInfo, Reader, Snapshot, Writer};

/// A view of a record kept in `buf` (the statuses are not needed here).
fn field(buf: &[u8], r: &Reader<Dynamic>, i: usize) -> flexshm_std::FieldValue<'static> {
    let info = ReadInfo {
        commit: 0,
        lost: 0,
        modified: 0,
        written: 0,
        truncated: 0,
    };
    let v = Snapshot::<Dynamic>::new(buf, r.layout(), info)
        .get(i)
        .unwrap();
    // Only scalars are asked for here.
    match v {
        flexshm_std::FieldValue::UInt(x) => flexshm_std::FieldValue::UInt(x),
        flexshm_std::FieldValue::Float(x) => flexshm_std::FieldValue::Float(x),
        flexshm_std::FieldValue::Int(x) => flexshm_std::FieldValue::Int(x),
        other => panic!("unexpected {other:?}"),
    }
}
use flexshm_zenoh::wire::{self, RecordHeader, SchemaMsg, WireField};
use flexshm_zenoh::zenoh::qos::CongestionControl;
use flexshm_zenoh::zenoh::{Session, Wait};
use flexshm_zenoh::{spawn_mirror, spawn_publisher, MirrorSpec, PublishSpec, ZenohOptions};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Payload {
    Sensor,
    Image,
}

impl Payload {
    fn fields(self) -> Vec<FieldDef> {
        match self {
            Payload::Sensor => vec![
                FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
                FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
                FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
                FieldDef::new("status_msg", Kind::str(32)),
            ],
            Payload::Image => vec![FieldDef::new(
                "pixels",
                Kind::array(Dtype::U8, &[480, 640, 3]),
            )],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Payload::Sensor => "SensorData",
            Payload::Image => "image 640x480x3 u8",
        }
    }
}

/// Writes record `k` of `p` (the first field carries `k` for sensor data; the image's
/// first byte does).
fn write_record(w: &mut Writer<Dynamic>, p: Payload, k: u64, image: &mut [u8]) {
    match p {
        Payload::Sensor => {
            let msg = "OK: all sensors nominal";
            w.write_fields(&[
                (0, Value::Float(k as f64)),
                (1, Value::Float(1013.25)),
                (2, Value::Float(1.7e9)),
                (3, Value::Str(msg)),
            ])
            .unwrap();
        }
        Payload::Image => {
            image[..8].copy_from_slice(&k.to_le_bytes());
            let a = ArrayRef::new(Dtype::U8, &[480, 640, 3], image).unwrap();
            w.write_fields(&[(0, Value::Array(a))]).unwrap();
        }
    }
}

/// The `k` a record carries.
fn record_k(buf: &[u8], r: &Reader<Dynamic>) -> u64 {
    match field(buf, r, 0) {
        FieldValue::Float(x) => x as u64,
        FieldValue::Array { bytes, .. } => u64::from_le_bytes(bytes[..8].try_into().unwrap()),
        other => panic!("{other:?}"),
    }
}

/// Copies the record in `buf` (read by `r`) into `w`.
fn echo(buf: &[u8], r: &Reader<Dynamic>, w: &mut Writer<Dynamic>) {
    let n = r.layout().fields().len();
    let info = ReadInfo {
        commit: 0,
        lost: 0,
        modified: 0,
        written: 0,
        truncated: 0,
    };
    let snap = Snapshot::<Dynamic>::new(buf, r.layout(), info);
    let vals: Vec<FieldValue<'_>> = (0..n).map(|i| snap.get(i).unwrap()).collect();
    let values: Vec<(usize, Value<'_>)> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = match *v {
                FieldValue::Float(x) => Value::Float(x),
                FieldValue::Str(s) => Value::Str(s),
                FieldValue::Array { rows, bytes, .. } => {
                    Value::Array(ArrayRef::new(Dtype::U8, &[rows, 640, 3], bytes).unwrap())
                }
                other => panic!("{other:?}"),
            };
            (i, v)
        })
        .collect();
    w.write_fields(&values).unwrap();
}

/// The record message the bridge sends for record `k` of `p` (the raw case's bytes).
fn message_bytes(p: Payload) -> Vec<u8> {
    let fields = p.fields();
    let schema = SchemaMsg::new(1, 1, Mode::Single, fields.clone()).unwrap();
    let image = vec![7u8; 480 * 640 * 3];
    let values: Vec<WireField<'_>> = match p {
        Payload::Sensor => [
            FieldValue::Float(1.0),
            FieldValue::Float(1013.25),
            FieldValue::Float(1.7e9),
            FieldValue::Str("OK: all sensors nominal"),
        ]
        .into_iter()
        .map(|v| WireField {
            status: flexshm_core::FieldStatus {
                written: true,
                truncated: false,
                modified: true,
            },
            value: Some(v),
        })
        .collect(),
        Payload::Image => vec![WireField {
            status: flexshm_core::FieldStatus {
                written: true,
                truncated: false,
                modified: true,
            },
            value: Some(FieldValue::Array {
                dtype: Dtype::U8,
                rows: 480,
                bytes: &image,
            }),
        }],
    };
    let hdr = RecordHeader {
        session: 1,
        seq: 1,
        commit: 1,
        schema_hash: schema.hash,
    };
    let mut out = Vec::new();
    wire::encode_record(&hdr, &fields, &values, &mut out).unwrap();
    out
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn percentiles(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn raw_latency(a: &Session, b: &Session, bytes: &[u8], rounds: usize, tag: &str) -> Stats {
    let ping = format!("bench/{tag}/raw/ping");
    let pong = format!("bench/{tag}/raw/pong");
    let back = b
        .declare_publisher(pong.clone())
        .congestion_control(CongestionControl::Block)
        .express(true)
        .wait()
        .unwrap();
    let _echo = b
        .declare_subscriber(ping.clone())
        .callback(move |s| {
            back.put(s.payload().clone()).wait().unwrap();
        })
        .wait()
        .unwrap();
    let replies = a.declare_subscriber(pong).wait().unwrap();
    let p = a
        .declare_publisher(ping)
        .congestion_control(CongestionControl::Block)
        .express(true)
        .wait()
        .unwrap();
    wait_matched(&p);
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let t0 = Instant::now();
        p.put(bytes.to_vec()).wait().unwrap();
        let s = replies.recv().unwrap();
        let dt = t0.elapsed();
        assert_eq!(s.payload().len(), bytes.len());
        if i >= rounds / 10 {
            times.push(dt / 2);
        }
    }
    percentiles(times)
}

fn wait_matched(p: &flexshm_zenoh::zenoh::pubsub::Publisher<'_>) {
    let t0 = Instant::now();
    while !p.matching_status().wait().unwrap().matching() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no subscriber");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let the subscription settle on both sides.
    std::thread::sleep(Duration::from_millis(100));
}

fn shm_name(tag: &str, what: &str) -> String {
    format!("flexshm-bench-{tag}-{what}-{}", std::process::id())
}

/// Starts a bridge of `src` (published from `from`) mirrored into `dst` (on `to`);
/// `express` for latency (no batching), not for throughput.
fn bridge(
    from: &Session,
    to: &Session,
    src: &str,
    dst: &str,
    express: bool,
    stop: &Arc<AtomicBool>,
) {
    let key = format!("bench/bridged/{src}");
    spawn_mirror(to, MirrorSpec::new(&key, dst), stop.clone()).unwrap();
    let mut spec = PublishSpec::new(src);
    spec.key = Some(key);
    spec.express = express;
    spec.options.poll = Duration::from_millis(20);
    spawn_publisher(from, spec, stop.clone()).unwrap();
}

fn open_when_there(name: &str) -> Reader<Dynamic> {
    let t0 = Instant::now();
    loop {
        if let Ok(r) = Reader::<Dynamic>::open(name) {
            return r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{name} did not appear"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `r` shows a record carrying `k`; returns the snapshot length read.
fn wait_for(r: &mut Reader<Dynamic>, buf: &mut [u8], k: u64, deadline: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        let head = r.head();
        if head != 0 {
            r.read_into(buf, ReadOptions::default(), Duration::from_secs(1))
                .unwrap();
            if record_k(buf, r) == k {
                return true;
            }
        }
        if t0.elapsed() > deadline {
            return false;
        }
        let _ = r.wait_head_change(head, Duration::from_millis(100));
    }
}

fn bridged_latency(a: &Session, b: &Session, p: Payload, rounds: usize, tag: &str) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let names: Vec<String> = ["ping-a", "ping-b", "pong-b", "pong-a"]
        .iter()
        .map(|w| shm_name(tag, w))
        .collect();
    let mut ping =
        Writer::<Dynamic>::create_with_fields(&names[0], &p.fields(), &CreateOptions::default())
            .unwrap();
    let pong =
        Writer::<Dynamic>::create_with_fields(&names[2], &p.fields(), &CreateOptions::default())
            .unwrap();
    bridge(a, b, &names[0], &names[1], true, &stop);
    bridge(b, a, &names[2], &names[3], true, &stop);
    let mut image = vec![0u8; 480 * 640 * 3];
    // Warm up until both directions carry records.
    write_record(&mut ping, p, 0, &mut image);
    let echo_thread = {
        let stop = stop.clone();
        let name = names[1].clone();
        let mut pong = pong;
        std::thread::spawn(move || {
            let mut r = open_when_there(&name);
            let mut buf = vec![0u8; r.snapshot_len()];
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                if !r
                    .wait_head_change(last, Duration::from_millis(50))
                    .unwrap_or(false)
                {
                    continue;
                }
                let info = r
                    .read_into(&mut buf, ReadOptions::default(), Duration::from_secs(1))
                    .unwrap();
                last = info.commit;
                echo(&buf, &r, &mut pong);
            }
        })
    };
    let mut back: Option<Reader<Dynamic>> = None;
    for _ in 0..400 {
        write_record(&mut ping, p, 0, &mut image);
        if let Ok(r) = Reader::<Dynamic>::open(&names[3]) {
            back = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut back = back.expect("the bridged round trip did not start");
    let mut buf = vec![0u8; back.snapshot_len()];
    let mut times = Vec::with_capacity(rounds);
    let mut resent = 0;
    for k in 1..=(rounds + rounds / 10) as u64 {
        let t0 = Instant::now();
        write_record(&mut ping, p, k, &mut image);
        // Single-slot records may be dropped by Zenoh under congestion (by design: a
        // newer value replaces them); such a round is written again and not timed.
        let mut timed = true;
        while !wait_for(&mut back, &mut buf, k, Duration::from_secs(1)) {
            resent += 1;
            assert!(resent < 50, "the bridged round trip stopped");
            timed = false;
            write_record(&mut ping, p, k, &mut image);
        }
        if k as usize > rounds / 10 && timed {
            times.push(t0.elapsed() / 2);
        }
    }
    if resent > 0 {
        println!("  (bridged latency: {resent} rounds lost and written again, not timed)");
    }
    stop.store(true, Ordering::Relaxed);
    echo_thread.join().unwrap();
    for n in &names {
        let _ = flexshm_std::unlink(n);
    }
    percentiles(times)
}

/// Messages per second B receives when A puts `count` messages back to back.
fn raw_throughput(a: &Session, b: &Session, bytes: &[u8], count: u64, tag: &str) -> f64 {
    let key = format!("bench/{tag}/raw/tp");
    let got = Arc::new(AtomicU64::new(0));
    let last = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let _sub = {
        let (got, last) = (got.clone(), last.clone());
        b.declare_subscriber(key.clone())
            .callback(move |s| {
                // What a receiver does at least: get the bytes contiguous.
                std::hint::black_box(s.payload().to_bytes());
                got.fetch_add(1, Ordering::Relaxed);
                *last.lock().unwrap() = Some(Instant::now());
            })
            .wait()
            .unwrap()
    };
    let p = a
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    wait_matched(&p);
    let t0 = Instant::now();
    for _ in 0..count {
        p.put(bytes.to_vec()).wait().unwrap();
    }
    while got.load(Ordering::Relaxed) < count && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let n = got.load(Ordering::Relaxed);
    let l = last.lock().unwrap().expect("nothing received");
    // From the send of the first message to the receipt of the last.
    n as f64 / l.duration_since(t0).as_secs_f64()
}

/// Records per second a reader of the mirror gets when A writes `count` records.
fn bridged_throughput(a: &Session, b: &Session, p: Payload, count: u64, tag: &str) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let slots: u32 = if p == Payload::Image { 32 } else { 1024 };
    let (src, dst) = (shm_name(tag, "tp-a"), shm_name(tag, "tp-b"));
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src, &p.fields(), &CreateOptions::fifo(slots))
            .unwrap();
    bridge(a, b, &src, &dst, false, &stop);
    let mut image = vec![0u8; 480 * 640 * 3];
    let done = Arc::new(AtomicU64::new(0));
    // Record 0 creates the mirror segment; timing starts after it.
    write_record(&mut w, p, 0, &mut image);
    w.finalize().unwrap();
    let mut r = open_when_there(&dst);
    let mut buf = vec![0u8; r.snapshot_len()];
    r.read_into(&mut buf, ReadOptions::default(), Duration::from_secs(10))
        .unwrap();
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut lost = 0u64;
            while done.load(Ordering::Relaxed) < count {
                match r.read_into(&mut buf, ReadOptions::default(), Duration::from_secs(10)) {
                    Ok(info) => {
                        lost += info.lost as u64;
                        done.fetch_add(1 + info.lost as u64, Ordering::Relaxed);
                    }
                    Err(e) => panic!("mirror reader: {e}"),
                }
            }
            (Instant::now(), lost)
        })
    };
    let t0 = Instant::now();
    for k in 1..=count {
        // Sleep, not spin, while the ring is half full: the bridge needs the cores.
        while k - done.load(Ordering::Relaxed) > slots as u64 / 2 {
            std::thread::sleep(Duration::from_micros(50));
        }
        write_record(&mut w, p, k, &mut image);
        w.finalize().unwrap();
    }
    let (t1, lost) = reader.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let _ = flexshm_std::unlink(&src);
    let _ = flexshm_std::unlink(&dst);
    (count as f64 / t1.duration_since(t0).as_secs_f64(), lost)
}

fn main() {
    let mut payloads = vec![Payload::Sensor, Payload::Image];
    let (mut latency, mut throughput) = (true, true);
    let (mut rounds, mut count) = (2000usize, 20000u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("option needs a value");
        match a.as_str() {
            "--payload" => {
                payloads = match val().as_str() {
                    "sensor" => vec![Payload::Sensor],
                    "image" => vec![Payload::Image],
                    _ => vec![Payload::Sensor, Payload::Image],
                }
            }
            "--what" => match val().as_str() {
                "latency" => throughput = false,
                "throughput" => latency = false,
                _ => {}
            },
            "--rounds" => rounds = val().parse().expect("--rounds N"),
            "--count" => count = val().parse().expect("--count N"),
            other => panic!("unknown option {other}"),
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = format!("tcp/127.0.0.1:{port}");
    let a = ZenohOptions::loopback(&[&ep], &[]).open().unwrap();
    let b = ZenohOptions::loopback(&[], &[&ep]).open().unwrap();
    for p in payloads {
        let tag = format!("{p:?}").to_lowercase();
        let bytes = message_bytes(p);
        // The image is ~0.9 MB a record: fewer of them.
        let (rounds, count) = match p {
            Payload::Sensor => (rounds, count),
            Payload::Image => ((rounds / 10).max(20), (count / 100).max(50)),
        };
        println!(
            "{} ({} bytes on the wire per record)",
            p.name(),
            bytes.len()
        );
        if latency {
            let raw = raw_latency(&a, &b, &bytes, rounds, &tag);
            let br = bridged_latency(&a, &b, p, rounds, &tag);
            println!(
                "  one-way latency  raw p50 {:>9.1?} p99 {:>9.1?} | bridged p50 {:>9.1?} p99 {:>9.1?} | bridged/raw p50 {:.2}x p99 {:.2}x (target <= 1.2x)",
                raw.p50,
                raw.p99,
                br.p50,
                br.p99,
                br.p50.as_secs_f64() / raw.p50.as_secs_f64(),
                br.p99.as_secs_f64() / raw.p99.as_secs_f64()
            );
        }
        if throughput {
            let raw = raw_throughput(&a, &b, &bytes, count, &tag);
            let (br, lost) = bridged_throughput(&a, &b, p, count, &tag);
            println!(
                "  throughput       raw {:>10.0}/s | bridged {:>10.0}/s ({} lost) | bridged/raw {:.2}x (target >= 0.8x)",
                raw,
                br,
                lost,
                br / raw
            );
        }
    }
    let _ = a.close().wait();
    let _ = b.close().wait();
}
