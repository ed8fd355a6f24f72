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

/// Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat.
fn stat_field(pid: u32, n: usize) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    rest.split_ascii_whitespace()
        .nth(n - 3)
        .unwrap()
        .to_string()
}

#[test]
fn writer_whose_main_thread_exited_is_still_alive() {
    // A process whose main thread ended with pthread_exit while another thread runs is
    // listed as a zombie ("Z") but is alive and could still write.
    let code = "import ctypes, sys, threading\n\
                threading.Thread(target=sys.stdin.read).start()\n\
                print('ready', flush=True)\n\
                ctypes.CDLL(None).pthread_exit(None)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", code])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the child that ends its main thread with pthread_exit");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id();
    // Wait until the main thread has exited and the process shows as "Z" (the bound
    // only guards against a hang).
    let since = std::time::Instant::now();
    while stat_field(pid, 3) != "Z" {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(60),
            "child never showed its main thread as exited"
        );
        std::thread::yield_now();
    }
    assert!(stat_field(pid, 20).parse::<u32>().unwrap() >= 2);

    let g = SegGuard::new("rv-zombie-leader");
    let w = DynWriter::create(&g.name, fields(), &Default::default()).unwrap();
    drop(w);
    let start: u64 = stat_field(pid, 22).parse().unwrap();
    let word = ((start as u32 as u64) << 32) | u64::from(pid);
    g.poke(64, &word.to_le_bytes());
    let r = DynReader::open(&g.name, None).unwrap();
    let alive = r.writer_alive();
    let second = DynWriter::create(&g.name, fields(), &Default::default());
    // Let the child finish: closing its stdin ends the reading thread.
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(alive, Some(true));
    match second {
        Err(flexshm_std::Error::WriterAlive { pid: p }) => assert_eq!(p, pid),
        other => panic!("took over a running writer: {other:?}"),
    }
}
