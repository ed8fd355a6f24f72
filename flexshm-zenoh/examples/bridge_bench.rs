//! Bridged flexshm against raw Zenoh pub/sub of the same bytes, in one run, with side B
//! in a separate process.
//!
//! Side A is this process, side B a child process (this program again, with `--side-b`),
//! each with its own Zenoh peer session: A listens on tcp/127.0.0.1, B connects,
//! multicast scouting off. Payloads: `SensorData` (3 × f64 + str[32]) and a 640×480×3
//! uint8 image. The raw messages are the exact bytes the bridge puts on the wire for one
//! record.
//!
//! - **Latency** (ping-pong, one-way = round trip / 2, p50 and p99). Raw: A puts the
//!   message on a key, a callback of B puts the same bytes back, A receives them. Bridged:
//!   A writes a single-slot segment, a bridge publisher in A sends it, a mirror in B
//!   writes it into a local segment, an echo thread in B reads it and writes it into a
//!   second segment that B's publisher sends back, A's mirror writes it and A reads it.
//!   Both directions are express (no batching), as for `flexshm bridge --express`.
//! - **Throughput** (records per second a reader on B gets, from the first record it
//!   receives to the last). Raw: A puts the messages back to back with blocking
//!   congestion control and B's callback takes each payload. Bridged: A writes the
//!   records into a FIFO segment (never more than half its ring ahead of B's mirror, so
//!   that nothing is lost at the source), the bridge publishes them (batching the records
//!   already waiting), B's mirror writes them and a reader thread in B reads every one.
//!
//! Each figure is the median of `--repeat` runs, raw and bridged alternating; a ratio is
//! the median of the runs' ratios (each bridged run against the raw run before it).
//! Targets (issue 14): bridged latency <= 1.2 × raw, bridged throughput >= 0.8 × raw.
//!
//! ```text
//! cargo run --release -p flexshm-zenoh --example bridge_bench -- [--payload sensor|image|both]
//!     [--what latency|throughput|both] [--rounds N] [--count N] [--repeat N]
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use flexshm_core::{ArrayRef, Dtype, FieldDef, FieldStatus, FieldValue, Kind, Mode, Value};
use flexshm_std::{
    CreateOptions, Dynamic, OpenOptions, ReadInfo, ReadOptions, Reader, Snapshot, Writer,
};
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
    fn parse(s: &str) -> Payload {
        match s {
            "image" => Payload::Image,
            _ => Payload::Sensor,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Payload::Sensor => "sensor",
            Payload::Image => "image",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Payload::Sensor => "SensorData",
            Payload::Image => "image 640×480×3 u8",
        }
    }

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
}

const MSG: &str = "OK: all sensors nominal";
const IMAGE_BYTES: usize = 480 * 640 * 3;

/// Writes record `k` of `p` (sensor data carries `k` in its first field, the image in
/// its first 8 bytes); commits it in FIFO mode.
fn write_record(w: &mut Writer<Dynamic>, p: Payload, k: u64, image: &mut [u8]) {
    match p {
        Payload::Sensor => w
            .write_fields(&[
                (0, Value::Float(k as f64)),
                (1, Value::Float(1013.25)),
                (2, Value::Float(1.7e9)),
                (3, Value::Str(MSG)),
            ])
            .expect("write"),
        Payload::Image => {
            image[..8].copy_from_slice(&k.to_le_bytes());
            let a = ArrayRef::new(Dtype::U8, &[480, 640, 3], image).expect("shape");
            w.write_fields(&[(0, Value::Array(a))]).expect("write");
        }
    }
    if w.mode().is_fifo() {
        w.finalize().expect("finalize");
    }
}

fn view<'a>(buf: &'a [u8], r: &'a Reader<Dynamic>, info: ReadInfo) -> Snapshot<'a, 'a, Dynamic> {
    Snapshot::<Dynamic>::new(buf, r.layout(), info)
}

/// The `k` a record carries.
fn record_k(buf: &[u8], r: &Reader<Dynamic>, info: ReadInfo) -> u64 {
    match view(buf, r, info).get(0).expect("field 0") {
        FieldValue::Float(x) => x as u64,
        FieldValue::Array { bytes, .. } => u64::from_le_bytes(bytes[..8].try_into().unwrap()),
        other => panic!("{other:?}"),
    }
}

/// Copies the record in `buf` (read by `r`) into `w`.
fn echo(buf: &[u8], r: &Reader<Dynamic>, info: ReadInfo, w: &mut Writer<Dynamic>) {
    let snap = view(buf, r, info);
    let n = r.layout().fields().len();
    let vals: Vec<FieldValue<'_>> = (0..n).map(|i| snap.get(i).expect("field")).collect();
    let values: Vec<(usize, Value<'_>)> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = match *v {
                FieldValue::Float(x) => Value::Float(x),
                FieldValue::Str(s) => Value::Str(s),
                FieldValue::Array { rows, bytes, .. } => {
                    Value::Array(ArrayRef::new(Dtype::U8, &[rows, 640, 3], bytes).expect("shape"))
                }
                other => panic!("{other:?}"),
            };
            (i, v)
        })
        .collect();
    w.write_fields(&values).expect("echo write");
}

/// The record message the bridge sends for one record of `p`: the raw case's bytes.
fn message_bytes(p: Payload) -> Vec<u8> {
    let fields = p.fields();
    let schema = SchemaMsg::new(1, 1, Mode::Single, fields.clone()).expect("schema");
    let image = vec![7u8; IMAGE_BYTES];
    let status = FieldStatus {
        written: true,
        truncated: false,
        modified: true,
    };
    let values: Vec<WireField<'_>> = match p {
        Payload::Sensor => [
            FieldValue::Float(1.0),
            FieldValue::Float(1013.25),
            FieldValue::Float(1.7e9),
            FieldValue::Str(MSG),
        ]
        .into_iter()
        .map(|v| WireField {
            status,
            value: Some(v),
        })
        .collect(),
        Payload::Image => vec![WireField {
            status,
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
    wire::encode_record(&hdr, &fields, &values, &mut out).expect("encode");
    out
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Waits until `p` has a matching subscriber.
fn wait_matched(p: &flexshm_zenoh::zenoh::pubsub::Publisher<'_>) {
    let (tx, rx) = mpsc::channel();
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
        rx.recv_timeout(Duration::from_secs(20))
            .expect("no subscriber");
    }
}

fn open_when_there(name: &str) -> Reader<Dynamic> {
    let opts = OpenOptions {
        timeout: Duration::from_secs(20),
    };
    Reader::<Dynamic>::open_with(name, &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Starts a publisher of `src` on `key` and/or a mirror of `key` into `dst`.
fn bridge_out(s: &Session, src: &str, key: &str, express: bool, stop: &Arc<AtomicBool>) {
    let mut spec = PublishSpec::new(src);
    spec.key = Some(key.to_string());
    spec.express = express;
    spawn_publisher(s, spec, Arc::clone(stop)).expect("publisher");
}

fn bridge_in(s: &Session, key: &str, dst: &str, stop: &Arc<AtomicBool>) {
    spawn_mirror(s, MirrorSpec::new(key, dst), Arc::clone(stop)).expect("mirror");
}

fn shm_name(what: &str) -> String {
    format!("flexshm-bench-bridge-{what}-{}", std::process::id())
}

/// Removes segments when dropped, also when a run fails.
struct Unlink(Vec<String>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = flexshm_std::unlink(n);
        }
    }
}

// ---- side B ------------------------------------------------------------------------------

/// Side B: obeys one command per line on stdin, answers on stdout.
fn side_b(endpoint: &str) {
    let session = ZenohOptions::loopback(&[], &[endpoint])
        .open()
        .expect("zenoh session B");
    let mut out = std::io::stdout().lock();
    let mut say = |s: String| {
        writeln!(out, "{s}").expect("stdout");
        out.flush().expect("stdout");
    };
    say("hello".into());
    let mut lines = std::io::stdin().lock().lines();
    while let Some(Ok(line)) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["raw-latency", key] => {
                let back = session
                    .declare_publisher(format!("{key}/pong"))
                    .congestion_control(CongestionControl::Block)
                    .express(true)
                    .wait()
                    .expect("publisher");
                let sub = session
                    .declare_subscriber(format!("{key}/ping"))
                    .callback(move |s| {
                        back.put(s.payload().clone()).wait().expect("put");
                    })
                    .wait()
                    .expect("subscriber");
                say("ready".into());
                let _ = lines.next(); // "done"
                drop(sub);
                say("ok".into());
            }
            ["raw-throughput", key, count] => {
                let count: u64 = count.parse().expect("count");
                let got = Arc::new(AtomicU64::new(0));
                let times = Arc::new(Mutex::new((None::<Instant>, None::<Instant>)));
                let (tx, rx) = mpsc::channel();
                let sub = {
                    let (got, times) = (Arc::clone(&got), Arc::clone(&times));
                    session
                        .declare_subscriber(key.to_string())
                        .callback(move |s| {
                            // What a receiver does at least: get the bytes contiguous.
                            std::hint::black_box(s.payload().to_bytes());
                            let now = Instant::now();
                            let mut t = times.lock().expect("times");
                            t.0.get_or_insert(now);
                            t.1 = Some(now);
                            if got.fetch_add(1, Ordering::Relaxed) + 1 == count {
                                let _ = tx.send(());
                            }
                        })
                        .wait()
                        .expect("subscriber")
                };
                say("ready".into());
                rx.recv_timeout(Duration::from_secs(300))
                    .expect("all messages");
                let (first, last) = *times.lock().expect("times");
                let secs = last.unwrap().duration_since(first.unwrap()).as_secs_f64();
                drop(sub);
                say(format!("result {}", (count - 1) as f64 / secs));
            }
            ["bridged-latency", ping_key, pong_key, ping_b, pong_b, payload] => {
                let stop = Arc::new(AtomicBool::new(false));
                let p = Payload::parse(payload);
                let _unlink = Unlink(vec![ping_b.to_string(), pong_b.to_string()]);
                let mut pong = Writer::<Dynamic>::create_with_fields(
                    pong_b,
                    &p.fields(),
                    &CreateOptions::default(),
                )
                .expect("pong segment");
                bridge_in(&session, ping_key, ping_b, &stop);
                bridge_out(&session, pong_b, pong_key, true, &stop);
                let echo_thread = {
                    let stop = Arc::clone(&stop);
                    let name = ping_b.to_string();
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
                                .expect("read ping");
                            last = info.commit;
                            echo(&buf, &r, info, &mut pong);
                        }
                    })
                };
                say("ready".into());
                let _ = lines.next(); // "done"
                stop.store(true, Ordering::Relaxed);
                echo_thread.join().expect("echo");
                say("ok".into());
            }
            ["bridged-throughput", key, dst, count, slots] => {
                let count: u64 = count.parse().expect("count");
                let slots: u32 = slots.parse().expect("slots");
                let stop = Arc::new(AtomicBool::new(false));
                // The mirror's ring is larger than the source's: the writer paces itself
                // by the mirror, and this reader must never be lapped behind it.
                let _unlink = Unlink(vec![dst.to_string()]);
                let mut spec = MirrorSpec::new(key, dst);
                spec.mode = Some(Mode::Fifo { slots });
                spawn_mirror(&session, spec, Arc::clone(&stop)).expect("mirror");
                say("ready".into());
                let mut r = open_when_there(dst);
                let mut buf = vec![0u8; r.snapshot_len()];
                // Record 0 opens the run; records 1..=count are timed, from the first.
                let opts = ReadOptions::default();
                r.read_into(&mut buf, opts, Duration::from_secs(60))
                    .expect("record 0");
                say("started".into());
                let (mut n, mut lost) = (0u64, 0u64);
                let mut first = None;
                while n < count {
                    let info = r
                        .read_into(&mut buf, opts, Duration::from_secs(60))
                        .expect("mirror reader");
                    first.get_or_insert_with(Instant::now);
                    n += 1 + info.lost as u64;
                    lost += info.lost as u64;
                }
                let secs = first.unwrap().elapsed().as_secs_f64();
                stop.store(true, Ordering::Relaxed);
                say(format!("result {} {lost}", (count - 1) as f64 / secs));
            }
            ["quit"] => break,
            other => panic!("side B: unknown command {other:?}"),
        }
    }
    let _ = session.close().wait();
}

// ---- side A ------------------------------------------------------------------------------

struct SideB {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl SideB {
    fn start(endpoint: &str) -> SideB {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args(["--side-b", endpoint])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start side B");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let b = SideB {
            child,
            stdin: Some(stdin),
            lines,
        };
        assert_eq!(b.line(), "hello");
        b
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(300))
            .expect("side B answers")
    }

    fn ask(&mut self, cmd: &str) -> String {
        let stdin = self.stdin.as_mut().expect("side B stdin");
        writeln!(stdin, "{cmd}").expect("side B stdin");
        stdin.flush().expect("side B stdin");
        self.line()
    }
}

impl Drop for SideB {
    fn drop(&mut self) {
        // Closing its stdin ends side B wherever it is (also after a failure here).
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

fn summarize(mut times: Vec<Duration>) -> Latency {
    times.sort();
    Latency {
        p50: percentile(&times, 0.50),
        p99: percentile(&times, 0.99),
    }
}

fn raw_latency(a: &Session, b: &mut SideB, bytes: &[u8], rounds: usize, run: &str) -> Latency {
    let key = format!("bench/raw/{run}");
    assert_eq!(b.ask(&format!("raw-latency {key}")), "ready");
    let replies = a
        .declare_subscriber(format!("{key}/pong"))
        .wait()
        .expect("sub");
    let p = a
        .declare_publisher(format!("{key}/ping"))
        .congestion_control(CongestionControl::Block)
        .express(true)
        .wait()
        .expect("publisher");
    wait_matched(&p);
    // The first rounds settle the route and warm the caches: not timed.
    let warm = rounds / 10 + 1;
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds + warm {
        let t0 = Instant::now();
        p.put(bytes.to_vec()).wait().expect("put");
        let s = replies.recv().expect("pong");
        let dt = t0.elapsed();
        assert_eq!(s.payload().len(), bytes.len());
        if i >= warm {
            times.push(dt / 2);
        }
    }
    assert_eq!(b.ask("done"), "ok");
    summarize(times)
}

fn bridged_latency(a: &Session, b: &mut SideB, p: Payload, rounds: usize, run: &str) -> Latency {
    let stop = Arc::new(AtomicBool::new(false));
    let (ping_a, ping_b) = (
        shm_name(&format!("{run}-ping-a")),
        shm_name(&format!("{run}-ping-b")),
    );
    let (pong_a, pong_b) = (
        shm_name(&format!("{run}-pong-a")),
        shm_name(&format!("{run}-pong-b")),
    );
    let (ping_key, pong_key) = (
        format!("bench/bridged/{run}/ping"),
        format!("bench/bridged/{run}/pong"),
    );
    let _unlink = Unlink(vec![ping_a.clone(), pong_a.clone()]);
    let mut ping =
        Writer::<Dynamic>::create_with_fields(&ping_a, &p.fields(), &CreateOptions::default())
            .expect("ping segment");
    let cmd = format!(
        "bridged-latency {ping_key} {pong_key} {ping_b} {pong_b} {}",
        p.tag()
    );
    assert_eq!(b.ask(&cmd), "ready");
    bridge_out(a, &ping_a, &ping_key, true, &stop);
    bridge_in(a, &pong_key, &pong_a, &stop);
    let mut image = vec![0u8; IMAGE_BYTES];
    // Record 0 makes the round trip first: it creates the mirror segments.
    write_record(&mut ping, p, 0, &mut image);
    let mut back = open_when_there(&pong_a);
    let mut buf = vec![0u8; back.snapshot_len()];
    let warm = rounds / 10 + 1;
    let mut times = Vec::with_capacity(rounds);
    for k in 1..=(rounds + warm) as u64 {
        let t0 = Instant::now();
        write_record(&mut ping, p, k, &mut image);
        loop {
            let head = back.head();
            let info = back
                .read_into(&mut buf, ReadOptions::default(), Duration::from_secs(1))
                .expect("read pong");
            // (A mirror segment can be opened between its creation and its first record.)
            if info.status(0).written && record_k(&buf, &back, info) == k {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "round {k} did not come back"
            );
            let _ = back.wait_head_change(head, Duration::from_millis(100));
        }
        if k as usize > warm {
            times.push(t0.elapsed() / 2);
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(b.ask("done"), "ok");
    summarize(times)
}

fn raw_throughput(a: &Session, b: &mut SideB, bytes: &[u8], count: u64, run: &str) -> f64 {
    let key = format!("bench/raw/{run}/tp");
    assert_eq!(b.ask(&format!("raw-throughput {key} {count}")), "ready");
    let p = a
        .declare_publisher(key)
        .congestion_control(CongestionControl::Block)
        .wait()
        .expect("publisher");
    wait_matched(&p);
    for _ in 0..count {
        p.put(bytes.to_vec()).wait().expect("put");
    }
    let r = b.line();
    r.strip_prefix("result ")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("side B: {r}"))
}

fn bridged_throughput(a: &Session, b: &mut SideB, p: Payload, count: u64, run: &str) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    // Source ring, and four times as many slots in the mirror (58 MB for the image).
    let slots: u32 = if p == Payload::Image { 16 } else { 16384 };
    let (src, dst) = (
        shm_name(&format!("{run}-tp-a")),
        shm_name(&format!("{run}-tp-b")),
    );
    let key = format!("bench/bridged/{run}/tp");
    let _unlink = Unlink(vec![src.clone()]);
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src, &p.fields(), &CreateOptions::fifo(slots))
            .expect("source segment");
    let cmd = format!("bridged-throughput {key} {dst} {count} {}", slots * 4);
    assert_eq!(b.ask(&cmd), "ready");
    bridge_out(a, &src, &key, false, &stop);
    let mut image = vec![0u8; IMAGE_BYTES];
    write_record(&mut w, p, 0, &mut image);
    // Side B's reader has read record 0: it is running before the records come.
    assert_eq!(b.line(), "started");
    // Side B's mirror segment, watched only for pacing: never more than half the ring
    // ahead of what the mirror has committed, so the source ring is never lapped.
    let mirror = open_when_there(&dst);
    // Looked at every `step` records only; while too far ahead the writer sleeps instead
    // of spinning in a wait, leaving both cores to the bridge (the pacing is part of the
    // benchmark, not of what it measures).
    let half = (slots / 2) as u64;
    let step = (half / 8).max(1);
    for k in 1..=count {
        if k > half && k % step == 0 {
            while (mirror.head() as u64) < k - half {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        write_record(&mut w, p, k, &mut image);
    }
    let r = b.line();
    stop.store(true, Ordering::Relaxed);
    let mut it = r
        .strip_prefix("result ")
        .unwrap_or_else(|| panic!("side B: {r}"))
        .split(' ');
    let rate: f64 = it.next().and_then(|v| v.parse().ok()).expect("rate");
    let lost: u64 = it.next().and_then(|v| v.parse().ok()).expect("lost");
    assert_eq!(lost, 0, "the mirror's reader lost records");
    rate
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut payloads = vec![Payload::Sensor, Payload::Image];
    let (mut latency, mut throughput) = (true, true);
    let (mut rounds, mut count, mut repeat) = (2000usize, 200_000u64, 3usize);
    // Profiling: run only one side of each throughput comparison.
    let mut only_arg = None;
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("option needs a value");
        match a.as_str() {
            "--side-b" => return side_b(&val()),
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
            "--repeat" => repeat = val().parse::<usize>().expect("--repeat N").max(1),
            "--only" => only_arg = Some(val()),
            other => panic!("unknown option {other}"),
        }
    }
    let only = only_arg.as_deref();
    flexshm_zenoh::init_logging("error");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let ep = format!("tcp/127.0.0.1:{port}");
    let a = ZenohOptions::loopback(&[&ep], &[])
        .open()
        .expect("zenoh session A");
    let mut b = SideB::start(&ep);
    println!(
        "Bridged flexshm vs raw Zenoh, side B in another process, tcp/127.0.0.1, \
         median of {repeat} runs (ratios: median of the runs' ratios)."
    );
    println!();
    let mut lat_rows = Vec::new();
    let mut tp_rows = Vec::new();
    for p in payloads {
        let bytes = message_bytes(p);
        // The image is 0.9 MB a record: fewer of them.
        let (rounds, count) = match p {
            Payload::Sensor => (rounds, count),
            Payload::Image => ((rounds / 10).max(50), (count / 500).max(200)),
        };
        if latency {
            let (mut raw, mut br) = (Vec::new(), Vec::new());
            for i in 0..repeat {
                let run = format!("{}-lat{i}", p.tag());
                raw.push(raw_latency(&a, &mut b, &bytes, rounds, &run));
                br.push(bridged_latency(&a, &mut b, p, rounds, &run));
            }
            let m = |v: &[Latency], f: fn(&Latency) -> Duration| {
                Duration::from_secs_f64(median(v.iter().map(|l| f(l).as_secs_f64()).collect()))
            };
            let (r50, r99) = (m(&raw, |l| l.p50), m(&raw, |l| l.p99));
            let (b50, b99) = (m(&br, |l| l.p50), m(&br, |l| l.p99));
            // Each run's ratio is taken against the raw run right before it, then the
            // median of those: the machine's drift during the run cancels out.
            let ratio = |f: fn(&Latency) -> Duration| {
                median(
                    raw.iter()
                        .zip(&br)
                        .map(|(r, b)| f(b).as_secs_f64() / f(r).as_secs_f64())
                        .collect(),
                )
            };
            lat_rows.push(format!(
                "| {} | {} | {} / {} | {} / {} | {:.2}× / {:.2}× |",
                p.name(),
                bytes.len(),
                us(r50),
                us(r99),
                us(b50),
                us(b99),
                ratio(|l| l.p50),
                ratio(|l| l.p99)
            ));
        }
        if throughput {
            let (mut raw, mut br) = (Vec::new(), Vec::new());
            for i in 0..repeat {
                let run = format!("{}-tp{i}", p.tag());
                if only != Some("bridged") {
                    raw.push(raw_throughput(&a, &mut b, &bytes, count, &run));
                }
                if only != Some("raw") {
                    br.push(bridged_throughput(&a, &mut b, p, count, &run));
                }
            }
            let med = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { median(v) };
            let ratios: Vec<f64> = raw.iter().zip(&br).map(|(r, b)| b / r).collect();
            let (r, m, q) = (med(raw), med(br), med(ratios));
            tp_rows.push(format!(
                "| {} | {} | {:.0} | {:.0} | {:.2}× |",
                p.name(),
                count,
                r,
                m,
                q
            ));
        }
    }
    if !lat_rows.is_empty() {
        println!("One-way latency (round trip / 2), p50 / p99; target bridged <= 1.2× raw:");
        println!();
        println!("| payload | bytes on the wire | raw Zenoh | bridged | bridged / raw |");
        println!("| --- | --- | --- | --- | --- |");
        for r in &lat_rows {
            println!("{r}");
        }
        println!();
    }
    if !tp_rows.is_empty() {
        println!("Throughput, records per second at side B; target bridged >= 0.8× raw:");
        println!();
        println!("| payload | records | raw Zenoh /s | bridged /s | bridged / raw |");
        println!("| --- | --- | --- | --- | --- |");
        for r in &tp_rows {
            println!("{r}");
        }
    }
    drop(b);
    let _ = a.close().wait();
}
