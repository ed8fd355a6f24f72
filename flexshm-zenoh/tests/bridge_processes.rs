//! Two `flexshm-bridge` processes over tcp/127.0.0.1 with multicast scouting off: side A
//! publishes a segment this test writes, side B mirrors it under another name, and this
//! test reads the mirror. Includes killing and restarting the publishing bridge.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fields, open_when_there, read_fifo, Name};
use flexshm_std::{CreateOptions, Dynamic, Value, Writer};

const BIN: &str = env!("CARGO_BIN_EXE_flexshm-bridge");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bridge(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .arg("--no-multicast-scouting")
        .env("RUST_LOG", "warn,flexshm_zenoh=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Stops a bridge with SIGTERM and returns what it printed.
fn finish(mut c: Child) -> String {
    if c.try_wait().unwrap().is_none() {
        // SAFETY: plain kill(2) on our own child, which has not been reaped.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let t0 = Instant::now();
    while c.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "bridge did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    out
}

fn write(w: &mut Writer<Dynamic>, k: u32) {
    let msg = format!("record {k}");
    w.write_fields(&[
        (0, Value::Float(k as f64)),
        (3, Value::Str(&msg)),
        (4, Value::UInt(k as u64)),
    ])
    .unwrap();
    w.finalize().unwrap();
}

/// The `seq` field of each record read.
fn seqs(got: &[common::Seen]) -> Vec<u64> {
    got.iter()
        .map(|s| {
            s.values[4]
                .as_deref()
                .and_then(|v| v.strip_prefix("UInt("))
                .and_then(|v| v.strip_suffix(')'))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn fifo_across_processes_survives_a_publisher_restart() {
    const N: u32 = 4000;
    let (src, dst) = (Name::new("proc-src"), Name::new("proc-dst"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src.0, &fields(), &CreateOptions::fifo(4096))
            .unwrap();
    let key = format!("flexshm/test/{}", src.0);
    let b = bridge(&["--listen", &ep, "--mirror", &format!("{key}={}", dst.0)]);
    let pub_args = [
        "--connect",
        ep.as_str(),
        "--publish",
        &format!("{}={key}", src.0),
    ];
    let a = bridge(&pub_args);
    let reader = std::thread::spawn({
        let dst = dst.0.clone();
        move || {
            let mut r = open_when_there(&dst, Duration::from_secs(20));
            read_fifo(&mut r, N as usize, Duration::from_secs(90))
        }
    });
    for k in 1..=N / 2 {
        write(&mut w, k);
        if k % 200 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Kill the publishing bridge mid-stream (no clean shutdown), write on, restart it:
    // it replays the ring from the oldest record; the mirror drops what it already has.
    let progress = open_when_there(&dst.0, Duration::from_secs(20));
    let t0 = Instant::now();
    while progress.head() < N / 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the mirror did not start"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut a = a;
    a.kill().unwrap();
    a.wait().unwrap();
    for k in N / 2 + 1..=3 * N / 4 {
        write(&mut w, k);
    }
    let a = bridge(&pub_args);
    for k in 3 * N / 4 + 1..=N {
        write(&mut w, k);
        if k % 200 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (got, infos) = reader.join().unwrap();
    let a_out = finish(a);
    let b_out = finish(b);
    let s = seqs(&got);
    assert_eq!(s.len(), N as usize, "A:\n{a_out}\nB:\n{b_out}");
    assert_eq!(s, (1..=N as u64).collect::<Vec<_>>());
    assert!(infos.iter().all(|i| i.lost == 0));
    assert!(b_out.contains("sessions: 2"), "{b_out}");
    assert!(b_out.contains("lost: 0"), "{b_out}");
    assert!(
        !b_out.contains("replayed: 0,"),
        "the restart replayed records: {b_out}"
    );
}

#[test]
fn cli_errors_are_reported() {
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
    let out = Command::new(BIN)
        .args(["--mirror", "nokey"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--connect"));
    // A mirror segment that exists with another layout: the bridge says so and fails.
    let dst = Name::new("cli-dst");
    let other = vec![flexshm_std::FieldDef::new(
        "x",
        flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8),
    )];
    drop(Writer::<Dynamic>::create_with_fields(&dst.0, &other, &CreateOptions::default()).unwrap());
    let src = Name::new("cli-src");
    let mut w = Writer::<Dynamic>::create_with_fields(&src.0, &fields(), &CreateOptions::default())
        .unwrap();
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let key = format!("flexshm/test/{}", src.0);
    let b = bridge(&["--listen", &ep, "--mirror", &format!("{key}={}", dst.0)]);
    let a = bridge(&[
        "--connect",
        &ep,
        "--publish",
        &format!("{}={key}", src.0),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    w.write_fields(&[(0, Value::Float(1.0))]).unwrap();
    let mut b = b;
    let t0 = Instant::now();
    while b.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        w.write_fields(&[(0, Value::Float(1.0))]).unwrap();
    }
    let b_out = finish(b);
    finish(a);
    assert!(b_out.contains("another layout"), "{b_out}");
}

fn signal(c: &Child, sig: libc::c_int) {
    // SAFETY: plain kill(2) on our own child, which has not been reaped.
    unsafe {
        libc::kill(c.id() as libc::pid_t, sig);
    }
}

/// Side B stopped while side A keeps writing into a small ring: the publishing bridge
/// blocks on the stalled link, the local writer laps it, and every record that does not
/// reach the mirror is counted (FIFO records are never silently lost).
#[test]
fn a_stalled_mirror_makes_loss_counted_not_silent() {
    const N: u32 = 6000;
    let (src, dst) = (Name::new("stall-src"), Name::new("stall-dst"));
    let ep = format!("tcp/127.0.0.1:{}", free_port());
    let mut w =
        Writer::<Dynamic>::create_with_fields(&src.0, &fields(), &CreateOptions::fifo(64)).unwrap();
    let key = format!("flexshm/test/{}", src.0);
    let b = bridge(&[
        "--listen",
        &ep,
        "--mirror",
        &format!("{key}={}", dst.0),
        "--slots",
        "8192",
    ]);
    let a = bridge(&[
        "--connect",
        &ep,
        "--publish",
        &format!("{}={key}", src.0),
    ]);
    // Record 1 reaches the mirror before anything else happens.
    write(&mut w, 1);
    let mut r = open_when_there(&dst.0, Duration::from_secs(20));
    signal(&b, libc::SIGSTOP);
    for k in 2..N {
        write(&mut w, k);
        if k % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    signal(&b, libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(500));
    write(&mut w, N);
    // Read what arrived; the last record must be among it.
    let mut got = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let (more, _) = read_fifo(&mut r, 100_000, Duration::from_millis(300));
        let done = more.is_empty() && seqs(&got).last() == Some(&(N as u64));
        got.extend(more);
        if done {
            break;
        }
    }
    let a_out = finish(a);
    let b_out = finish(b);
    let s = seqs(&got);
    assert_eq!(s.last(), Some(&(N as u64)), "A:\n{a_out}\nB:\n{b_out}");
    assert!(s.windows(2).all(|p| p[0] < p[1]), "in order, no duplicates");
    let missing = N as u64 - s.len() as u64;
    assert!(
        missing > 0,
        "the stall should have overrun the 64-slot ring"
    );
    // The mirror's report accounts for every missing record.
    let count = |text: &str, what: &str| -> u64 {
        let i = text.rfind(&format!("{what}: ")).unwrap() + what.len() + 2;
        text[i..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mb = b_out.rfind("MirrorStats").map(|i| &b_out[i..]).unwrap();
    assert_eq!(count(mb, "written"), s.len() as u64);
    assert_eq!(count(mb, "lost") + count(mb, "skipped"), missing, "{mb}");
    let pa = a_out.rfind("PublishStats").map(|i| &a_out[i..]).unwrap();
    assert_eq!(count(pa, "source_lost"), missing, "{pa}");
}
