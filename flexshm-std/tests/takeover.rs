//! Who may write: a writer's own reader keeps its memory, claim words that name no
//! process are taken over, and a writer that is still running is never taken over.

mod common;

use common::SegGuard;
use flexshm_std::{
    Dtype, Dynamic, FieldDef, FieldValue, Kind, ReadOptions, Reader, Value, Writer, WriterStatus,
};

const FIELDS: &[FieldDef] = &[FieldDef::new("x", Kind::Scalar(Dtype::I64))];

fn writer(name: &str) -> Result<Writer<Dynamic>, flexshm_std::Error> {
    Writer::<Dynamic>::create_with_fields(name, FIELDS, &Default::default())
}

fn read_x(r: &mut Reader<Dynamic>) -> FieldValue<'static> {
    match r.try_read(ReadOptions::default()).unwrap().get(0).unwrap() {
        FieldValue::Int(v) => FieldValue::Int(v),
        other => panic!("unexpected value {other:?}"),
    }
}

#[test]
fn writers_reader_follows_its_memory_not_the_name() {
    let g = SegGuard::new("rv-wreader");
    let mut w = writer(&g.name).unwrap();
    w.write_fields(&[(0, Value::Int(1))]).unwrap();
    flexshm_std::unlink(&g.name).unwrap();
    // A new segment under the same name, with another value.
    let mut other = writer(&g.name).unwrap();
    other.write_fields(&[(0, Value::Int(99))]).unwrap();
    let mut r = w.reader().unwrap();
    assert_eq!(read_x(&mut r), FieldValue::Int(1));
    w.write_fields(&[(0, Value::Int(2))]).unwrap();
    assert_eq!(read_x(&mut r), FieldValue::Int(2));
}

#[test]
fn another_reader_follows_its_memory_not_the_name() {
    let g = SegGuard::new("rv-another");
    let mut w = writer(&g.name).unwrap();
    w.write_fields(&[(0, Value::Int(1))]).unwrap();
    let mut first = Reader::<Dynamic>::open(&g.name).unwrap();
    assert_eq!(read_x(&mut first), FieldValue::Int(1));
    flexshm_std::unlink(&g.name).unwrap();
    let mut other = writer(&g.name).unwrap();
    other.write_fields(&[(0, Value::Int(99))]).unwrap();
    // A fresh position and change tracking, on the first reader's memory.
    let mut second = first.another().unwrap();
    assert!(second.has_new() && !first.has_new());
    assert_eq!(read_x(&mut second), FieldValue::Int(1));
    w.write_fields(&[(0, Value::Int(2))]).unwrap();
    assert!(first.has_new() && second.has_new());
    assert_eq!(read_x(&mut second), FieldValue::Int(2));
    assert!(second.is_replaced());
}

#[test]
fn claim_word_naming_no_process_is_taken_over_without_panic() {
    let g = SegGuard::new("rv-badpid");
    let w = writer(&g.name).unwrap();
    drop(w);
    // Claim word at header byte 64: pid in the low half. Ids above i32::MAX and 0 with a
    // non-zero start are no process; a writer must take the segment over (not panic,
    // not probe a process group with a negative id).
    for pid in [u32::MAX, 0x8000_0000, 0] {
        let word = (7u64 << 32) | u64::from(pid);
        g.poke(64, &word.to_le_bytes());
        let r = Reader::<Dynamic>::open(&g.name).unwrap();
        assert!(
            matches!(r.writer(), WriterStatus::Dead { .. }),
            "pid {pid:#x}"
        );
        let w = writer(&g.name).unwrap_or_else(|e| panic!("pid {pid:#x}: {e}"));
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
    let w = writer(&g.name).unwrap();
    drop(w);
    let start: u64 = stat_field(pid, 22).parse().unwrap();
    let word = ((start as u32 as u64) << 32) | u64::from(pid);
    g.poke(64, &word.to_le_bytes());
    let r = Reader::<Dynamic>::open(&g.name).unwrap();
    let alive = r.writer();
    let second = writer(&g.name);
    // Let the child finish: closing its stdin ends the reading thread.
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(alive, WriterStatus::Alive { pid });
    match second {
        Err(flexshm_std::Error::WriterAlive { pid: p }) => assert_eq!(p, pid),
        other => panic!("took over a running writer: {other:?}"),
    }
}

/// A writer that stopped between closing a FIFO record's buffer and publishing it
/// (docs/PROTOCOL.md §12.3): the next writer's attach publishes the record and wakes
/// readers waiting for it (§18.6), instead of leaving them asleep until their poll.
#[test]
fn attach_that_rolls_forward_wakes_waiting_readers() {
    let g = SegGuard::new("rv-rollfwd-wake");
    let opts = flexshm_std::CreateOptions::fifo(4);
    let mut w = Writer::<Dynamic>::create_with_fields(&g.name, FIELDS, &opts).unwrap();
    for x in 1..=3 {
        w.write_fields(&[(0, Value::Int(x))]).unwrap();
        w.finalize().unwrap();
    }
    drop(w);
    // Record 3 is closed in its buffer, but head still says 2.
    g.poke(48, &2u32.to_le_bytes());
    let mut r = Reader::<Dynamic>::open(&g.name).unwrap();
    assert_eq!(read_x(&mut r), FieldValue::Int(1));
    assert_eq!(read_x(&mut r), FieldValue::Int(2));
    // Reads through head would say "nothing new": the reader waits.
    let name = g.name.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let w = Writer::<Dynamic>::create_with_fields(&name, FIELDS, &opts).unwrap();
        assert_eq!(w.head(), 3, "the closed record was published");
        w
    });
    let since = std::time::Instant::now();
    assert!(r.wait(std::time::Duration::from_secs(10)).unwrap());
    let waited = since.elapsed();
    let _w = t.join().unwrap();
    // Without a wake, the reader would sleep until its 1 s poll bound.
    assert!(
        waited < std::time::Duration::from_millis(900),
        "waited {waited:?}"
    );
    assert_eq!(read_x(&mut r), FieldValue::Int(3));
}
