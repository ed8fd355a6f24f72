//! Multi-process tests: every writer here is a child process (this test binary
//! re-executed in a role, see `common`), readers are the test process itself.

#![allow(missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{child_role, hear, tell, ChildProc, SegGuard};
use flexshm_std::{
    record, CreateOptions, Dynamic, Error, FieldValue, ReadInfo, ReadOptions, Reader, Record,
    Schema, Value, Writer, WriterStatus,
};

const LONG: Duration = Duration::from_secs(10);

/// Reads a record into `out` (typed records decode at their constant offsets).
fn read_into<R: Record + Schema>(
    r: &mut Reader<R>,
    out: &mut R,
    opts: ReadOptions,
    timeout: Duration,
) -> Result<ReadInfo, Error> {
    let snap = r.read(opts, timeout)?;
    snap.decode(out)?;
    Ok(snap.info())
}

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct SensorData {
        pub temperature: f64,
        pub pressure: f64,
        pub timestamp: f64,
        pub status_msg: str[32],
    }
}

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Sample {
        pub seq: u64,
        pub check: u64,
    }
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        check: seq * 3 + 1,
    }
}

record! {
    /// Fields that must agree: b[i] = a * (i + 1), c = !a, s = a in decimal.
    #[derive(Debug, Clone)]
    pub struct Agree {
        pub a: u64,
        pub b: [u64; 64],
        pub c: u64,
        pub s: str[24],
        pub tag: u32,
    }
}

impl Agree {
    fn new(a: u64) -> Agree {
        let mut r = Agree {
            a,
            b: [0; 64],
            c: !a,
            s: Default::default(),
            tag: 0,
        };
        for (i, v) in r.b.iter_mut().enumerate() {
            *v = a.wrapping_mul(i as u64 + 1);
        }
        r.s.push_str(&a.to_string()).unwrap();
        r
    }

    fn blank() -> Agree {
        Agree {
            a: 0,
            b: [0; 64],
            c: 0,
            s: Default::default(),
            tag: 0,
        }
    }

    /// Panics with the record if its fields disagree.
    fn check(&self) {
        let ok = self.c == !self.a
            && self.s.as_str() == self.a.to_string()
            && self
                .b
                .iter()
                .enumerate()
                .all(|(i, v)| *v == self.a.wrapping_mul(i as u64 + 1));
        assert!(ok, "torn record: a={} c={} s={}", self.a, !self.c, self.s);
    }
}

record! {
    /// A large record (64 KiB) so that a writer spends most of its time mid-write.
    pub struct Big {
        pub a: u64,
        pub b: [u64; 8192],
        pub c: u64,
        pub tag: u32,
    }
}

impl Big {
    fn boxed() -> Box<Big> {
        Box::new(Big {
            a: 0,
            b: [0; 8192],
            c: 0,
            tag: 0,
        })
    }

    fn set(&mut self, a: u64) {
        self.a = a;
        self.c = !a;
        for (i, v) in self.b.iter_mut().enumerate() {
            *v = a ^ i as u64;
        }
    }

    fn check(&self) {
        let ok = self.c == !self.a
            && self
                .b
                .iter()
                .enumerate()
                .all(|(i, v)| *v == self.a ^ i as u64);
        assert!(ok, "torn record: a={} c={}", self.a, !self.c);
    }
}

/// A flag set when the parent closes our stdin: hammering children stop on it.
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        while hear().is_some() {}
        s.store(true, Ordering::Relaxed);
    });
    stop
}

/// Runs this process's role if it is a child; true if it was one.
fn dispatch() -> bool {
    let Some((role, seg)) = child_role() else {
        return false;
    };
    match role.as_str() {
        // The seed's Quick Start writer: create, write, (reader reads), close, unlink.
        "qs-writer" => {
            let mut shm = Writer::<SensorData>::create(&seg, &CreateOptions::default()).unwrap();
            let mut rec = SensorData {
                temperature: 23.5,
                pressure: 1013.25,
                timestamp: 1_700_000_000.5,
                ..Default::default()
            };
            rec.status_msg.push_str("OK").unwrap();
            shm.write(&rec).unwrap();
            tell("READY");
            hear();
            drop(shm);
            flexshm_std::unlink(&seg).unwrap();
        }
        // FIFO producer driven by "go N" lines: commits the next N samples.
        "fifo-producer" => {
            let mut fifo = Writer::<Sample>::create(&seg, &CreateOptions::fifo(8)).unwrap();
            tell("READY");
            let mut seq = 0;
            while let Some(line) = hear() {
                let n: u64 = line.strip_prefix("go ").unwrap().parse().unwrap();
                for _ in 0..n {
                    seq += 1;
                    fifo.write(&sample(seq)).unwrap();
                    fifo.finalize().unwrap();
                }
                tell("DONE");
            }
        }
        // Commits one sample only once a reader sleeps in the kernel waiting for it.
        // Commits one sample when the parent says its reader sleeps in the kernel.
        "wake-writer" => {
            let mut w = Writer::<Dynamic>::create_with_fields(
                &seg,
                Sample::FIELDS,
                &CreateOptions::fifo(4),
            )
            .unwrap();
            tell("READY");
            hear();
            w.write_fields(&[(0, Value::UInt(1)), (1, Value::UInt(4))])
                .unwrap();
            w.finalize().unwrap();
            tell("DONE");
            hear();
        }
        "hammer-single" | "hammer-fifo" => {
            let opts = if role == "hammer-fifo" {
                CreateOptions::fifo(16)
            } else {
                CreateOptions::default()
            };
            let mut shm = Writer::<Agree>::create(&seg, &opts).unwrap();
            let stop = stop_flag();
            let mut a = 0u64;
            while !stop.load(Ordering::Relaxed) {
                a += 1;
                shm.write(&Agree::new(a)).unwrap();
                if role == "hammer-fifo" {
                    shm.finalize().unwrap();
                }
                if a == 1 {
                    tell("READY");
                }
            }
        }
        // Writes big records until killed.
        "big-writer" => {
            let mut shm = Writer::<Big>::create(&seg, &CreateOptions::default()).unwrap();
            let mut rec = Big::boxed();
            for a in 1.. {
                rec.set(a);
                shm.write(&rec).unwrap();
                if a == 1 {
                    tell("READY");
                }
            }
        }
        // Takes over from a dead big-writer: partial writes first (the carried-over
        // fields must stay whole), then full records from 1_000_000 on.
        "big-taker" => {
            let mut shm = Writer::<Big>::create(&seg, &CreateOptions::default()).unwrap();
            tell("TOOK");
            let stop = stop_flag();
            for t in 1..=200u32 {
                shm.write_fields(&[(Big::tag.index(), Value::UInt(t as u64))])
                    .unwrap();
            }
            let mut rec = Big::boxed();
            let mut a = 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                rec.set(a);
                rec.tag = 7;
                shm.write(&rec).unwrap();
                a += 1;
            }
        }
        // Commits records 1 and 2, stages record 999 into the next buffer without
        // committing it (its seq stays odd), then waits to be killed.
        "dies-staging" => {
            let mut fifo = Writer::<Agree>::create(&seg, &CreateOptions::fifo(4)).unwrap();
            for a in [1, 2] {
                fifo.write(&Agree::new(a)).unwrap();
                fifo.finalize().unwrap();
            }
            fifo.write(&Agree::new(999)).unwrap();
            tell("READY");
            hear();
        }
        // Echoes every sample of segment "A" into segment "B" (names: "A,B"), blocking
        // in the kernel for each one.
        "echo" => {
            let (a, b) = seg.split_once(',').unwrap();
            let mut back = Writer::<Sample>::create(b, &CreateOptions::fifo(4)).unwrap();
            let mut fwd = Reader::<Sample>::open(a).unwrap();
            tell("READY");
            let mut s = Sample::default();
            while s.seq < PING_PONGS {
                read_into(&mut fwd, &mut s, ReadOptions::default(), LONG).unwrap();
                back.write(&s).unwrap();
                back.finalize().unwrap();
            }
        }
        // Races other processes to create the same new segment; reports the outcome and
        // keeps what it got until stdin closes.
        "racer" => {
            hear();
            let got = Writer::<SensorData>::create(&seg, &CreateOptions::default());
            match &got {
                Ok(_) => tell("WRITER"),
                Err(Error::WriterAlive { pid }) => tell(&format!("ALIVE {pid}")),
                Err(e) => tell(&format!("ERROR {e}")),
            }
            hear();
        }
        // Holds the writer role until told to exit (then releases it by dropping).
        "claim-holder" => {
            let mut shm = Writer::<SensorData>::create(&seg, &CreateOptions::default()).unwrap();
            shm.write(&SensorData {
                temperature: 7.0,
                ..Default::default()
            })
            .unwrap();
            tell("READY");
            hear();
        }
        other => panic!("unknown child role {other}"),
    }
    true
}

/// The seed's Quick Start: a writer process writes SensorData, a reader process reads it
/// with status, the writer closes and unlinks.
#[test]
fn quick_start_flow() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("qs");
    let mut writer = ChildProc::spawn("quick_start_flow", "qs-writer", &seg.name);
    assert_eq!(writer.expect_msg(), "READY");

    let mut shm = Reader::<SensorData>::open(&seg.name).unwrap();
    let mut data = SensorData::default();
    let info = read_into(
        &mut shm,
        &mut data,
        ReadOptions::default(),
        Duration::from_secs(1),
    )
    .unwrap();
    let temp = info.status(SensorData::temperature);
    assert!(temp.valid() && temp.modified);
    assert_eq!(data.temperature, 23.5);
    assert_eq!(data.pressure, 1013.25);
    assert_eq!(data.timestamp, 1_700_000_000.5);
    assert_eq!(data.status_msg.as_str(), "OK");
    assert!(info.status(SensorData::status_msg).valid());
    assert_eq!(shm.writer(), WriterStatus::Alive { pid: writer.pid() });

    writer.send("done");
    writer.finish();
    assert!(!flexshm_std::exists(&seg.name), "the writer unlinked it");
    assert!(shm.is_replaced());
    // Our mapping stays valid after the unlink and the writer's exit.
    read_into(
        &mut shm,
        &mut data,
        ReadOptions::default(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(data.temperature, 23.5);
    assert_eq!(
        shm.writer(),
        WriterStatus::None,
        "the writer released its claim"
    );
}

fn read_sample(r: &mut Reader<Sample>, latest: bool) -> Result<(Sample, u32), Error> {
    let mut s = Sample::default();
    let opts = ReadOptions {
        latest,
        ..Default::default()
    };
    let info = read_into(r, &mut s, opts, LONG)?;
    assert_eq!(s.check, s.seq * 3 + 1, "torn sample {s:?}");
    Ok((s, info.lost))
}

/// FIFO across processes: order, `latest`, loss counts when lapped, timeout when empty.
#[test]
fn fifo_order_latest_and_losses() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("fifo");
    let mut p = ChildProc::spawn("fifo_order_latest_and_losses", "fifo-producer", &seg.name);
    assert_eq!(p.expect_msg(), "READY");
    let mut r = Reader::<Sample>::open(&seg.name).unwrap();

    p.send("go 5");
    assert_eq!(p.expect_msg(), "DONE");
    for seq in 1..=5 {
        assert_eq!(read_sample(&mut r, false).unwrap(), (sample(seq), 0));
    }
    let mut s = Sample::default();
    match read_into(
        &mut r,
        &mut s,
        ReadOptions::default(),
        Duration::from_millis(5),
    ) {
        Err(Error::Timeout {
            no_record: true,
            writer_alive: Some(true),
        }) => {}
        other => panic!("expected a timeout with a live writer, got {other:?}"),
    }

    // 20 more into a ring of 8: records 6..=17 are overwritten before we read them.
    p.send("go 20");
    assert_eq!(p.expect_msg(), "DONE");
    assert_eq!(read_sample(&mut r, false).unwrap(), (sample(18), 12));
    for seq in 19..=25 {
        assert_eq!(read_sample(&mut r, false).unwrap(), (sample(seq), 0));
    }
    assert_eq!(r.lost_total(), 12);

    // latest skips unread records without counting them as lost.
    p.send("go 3");
    assert_eq!(p.expect_msg(), "DONE");
    assert_eq!(read_sample(&mut r, true).unwrap(), (sample(28), 0));
    assert!(matches!(
        read_into(
            &mut r,
            &mut s,
            ReadOptions::default(),
            Duration::from_millis(5)
        ),
        Err(Error::Timeout {
            no_record: true,
            ..
        })
    ));
    assert_eq!(r.lost_total(), 12);

    // A reader opened now starts at the oldest record still in the ring.
    let mut late = Reader::<Sample>::open(&seg.name).unwrap();
    assert_eq!(read_sample(&mut late, false).unwrap(), (sample(21), 0));
    p.finish();
}

/// The system call number of `futex` (see /proc/<pid>/task/<tid>/syscall).
#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: &str = "202";
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: &str = "98";

/// A blocked FIFO read sleeps in the kernel (its thread is seen inside `futex` in
/// /proc) and is woken by the writer's commit in another process, although the reader
/// never wrote anything the writer could see.
#[test]
fn blocking_read_is_woken_by_commit() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("wake");
    let mut w = ChildProc::spawn("blocking_read_is_woken_by_commit", "wake-writer", &seg.name);
    assert_eq!(w.expect_msg(), "READY");
    let mut r = Reader::<Sample>::open(&seg.name).unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        tid_tx
            .send(rustix::thread::gettid().as_raw_nonzero().get())
            .unwrap();
        let snap = r.read(ReadOptions::default(), LONG).unwrap();
        (snap.commit(), snap.record().unwrap())
    });
    let tid = tid_rx.recv().unwrap();
    let syscall = format!("/proc/self/task/{tid}/syscall");
    // Until the reader thread sits in futex(2): that is the event the writer waits for.
    let since = std::time::Instant::now();
    loop {
        let now = std::fs::read_to_string(&syscall).unwrap_or_default();
        if now.split_whitespace().next() == Some(SYS_FUTEX) {
            break;
        }
        assert!(
            since.elapsed() < LONG,
            "the reader never slept in futex: {now}"
        );
        std::thread::yield_now();
    }
    w.send("go");
    let (commit, rec) = reader.join().unwrap();
    assert_eq!((commit, rec), (1, Sample { seq: 1, check: 4 }));
    assert_eq!(w.expect_msg(), "DONE");
    w.finish();
}

const PING_PONGS: u64 = 2_000;

/// Two processes bounce records through two FIFO segments, each blocking in the kernel
/// until the other commits: a lost wake-up would stall a read for its whole 10 s
/// timeout and fail the test.
#[test]
fn ping_pong_never_loses_a_wakeup() {
    if dispatch() {
        return;
    }
    let a = SegGuard::new("ping");
    let b = SegGuard::new("pong");
    let mut fwd = Writer::<Sample>::create(&a.name, &CreateOptions::fifo(4)).unwrap();
    let mut echo = ChildProc::spawn(
        "ping_pong_never_loses_a_wakeup",
        "echo",
        &format!("{},{}", a.name, b.name),
    );
    assert_eq!(echo.expect_msg(), "READY");
    let mut back = Reader::<Sample>::open(&b.name).unwrap();
    let mut s = Sample::default();
    for seq in 1..=PING_PONGS {
        fwd.write(&sample(seq)).unwrap();
        fwd.finalize().unwrap();
        let info = read_into(&mut back, &mut s, ReadOptions::default(), LONG).unwrap();
        assert_eq!((s.clone(), info.lost), (sample(seq), 0));
    }
    echo.finish();
}

fn hammer(test: &str, role: &str, latest: bool) {
    let seg = SegGuard::new(role);
    let mut w = ChildProc::spawn(test, role, &seg.name);
    assert_eq!(w.expect_msg(), "READY");
    let mut r = Reader::<Agree>::open(&seg.name).unwrap();
    let mut rec = Agree::blank();
    let mut seen = HashSet::new();
    let mut reads = 0u64;
    let mut last_a = 0;
    let opts = ReadOptions {
        latest,
        ..Default::default()
    };
    // Until enough reads raced enough distinct commits (the writer is never paused).
    while reads < 5_000 || seen.len() < 500 {
        let info = read_into(&mut r, &mut rec, opts, LONG).unwrap();
        rec.check();
        if r.mode().is_fifo() && !latest && reads > 0 {
            // In order, with every gap accounted for as lost (a new reader starts at
            // the oldest record still in the ring, so the first read sets the base).
            assert_eq!(rec.a, last_a + 1 + info.lost as u64, "FIFO order/loss");
        } else {
            assert!(rec.a >= last_a, "went back in time");
        }
        last_a = rec.a;
        seen.insert(info.commit);
        reads += 1;
        assert!(reads < 50_000_000, "writer made no progress");
    }
    w.finish();
}

/// No torn record while a writer process hammers a single-slot segment.
#[test]
fn no_torn_reads_single_slot() {
    if dispatch() {
        return;
    }
    hammer("no_torn_reads_single_slot", "hammer-single", false);
}

/// No torn record, in order, with exact loss counts, while a writer hammers a FIFO.
#[test]
fn no_torn_reads_fifo() {
    if dispatch() {
        return;
    }
    hammer("no_torn_reads_fifo", "hammer-fifo", false);
}

/// A writer killed with SIGKILL mid-stream is detected; a new writer process takes over
/// (repairing the half-written buffer), readers recover, and no read is ever torn.
#[test]
fn killed_writer_is_taken_over() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("kill");
    let mut w = ChildProc::spawn("killed_writer_is_taken_over", "big-writer", &seg.name);
    assert_eq!(w.expect_msg(), "READY");
    let dead_pid = w.pid();
    let mut r = Reader::<Big>::open(&seg.name).unwrap();
    let mut rec = Big::boxed();
    let mut last = 0;
    while last < 50 {
        read_into(&mut r, &mut *rec, ReadOptions::default(), LONG).unwrap();
        rec.check();
        last = rec.a;
    }
    assert_eq!(r.writer(), WriterStatus::Alive { pid: dead_pid });
    w.kill();

    assert_eq!(r.writer(), WriterStatus::Dead { pid: dead_pid });
    let info = read_into(&mut r, &mut *rec, ReadOptions::default(), LONG).unwrap();
    rec.check();
    assert!(rec.a >= last);
    let before = (info.commit, rec.a);
    // The last committed record stays put while nobody writes.
    read_into(&mut r, &mut *rec, ReadOptions::default(), LONG).unwrap();
    assert_eq!((r.head(), rec.a), before);

    let mut taker = ChildProc::spawn("killed_writer_is_taken_over", "big-taker", &seg.name);
    assert_eq!(taker.expect_msg(), "TOOK");
    assert_eq!(r.writer(), WriterStatus::Alive { pid: taker.pid() });
    loop {
        let info = read_into(&mut r, &mut *rec, ReadOptions::default(), LONG).unwrap();
        rec.check();
        if rec.tag != 0 && rec.tag != 7 {
            // A tag-only write: the rest was carried over from the dead writer's record.
            assert_eq!(rec.a, before.1);
            assert!(info.status(Big::tag).modified && !info.status(Big::a).modified);
        }
        if rec.a >= 1_000_000 {
            assert_eq!(rec.tag, 7);
            break;
        }
    }
    taker.finish();
}

/// A FIFO writer killed with a record staged (its buffer mid-write): the staged record
/// never appears, and a new writer's partial commit into that same buffer carries the
/// last committed values over whole.
#[test]
fn killed_mid_write_buffer_is_repaired() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("staged");
    let mut w = ChildProc::spawn(
        "killed_mid_write_buffer_is_repaired",
        "dies-staging",
        &seg.name,
    );
    assert_eq!(w.expect_msg(), "READY");
    let mut r = Reader::<Agree>::open(&seg.name).unwrap();
    w.kill();
    let mut rec = Agree::blank();
    for a in [1, 2] {
        read_into(&mut r, &mut rec, ReadOptions::default(), LONG).unwrap();
        rec.check();
        assert_eq!(rec.a, a);
    }
    assert!(matches!(
        read_into(
            &mut r,
            &mut rec,
            ReadOptions::default(),
            Duration::from_millis(5)
        ),
        Err(Error::Timeout {
            no_record: true,
            writer_alive: Some(false)
        })
    ));

    let mut nw = Writer::<Agree>::create(&seg.name, &CreateOptions::fifo(4)).unwrap();
    nw.write_fields(&[(Agree::tag.index(), Value::UInt(5))])
        .unwrap();
    assert_eq!(nw.finalize().unwrap(), 3);
    let info = read_into(&mut r, &mut rec, ReadOptions::default(), LONG).unwrap();
    rec.check();
    assert_eq!((info.commit, rec.a, rec.tag), (3, 2, 5));
    assert!(info.status(Agree::tag).modified && !info.status(Agree::a).modified);
}

/// A second writer is refused while the first writer's process is alive, and takes
/// over (keeping the last record) once it has exited.
#[test]
fn second_live_writer_is_refused() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("second");
    let mut holder = ChildProc::spawn("second_live_writer_is_refused", "claim-holder", &seg.name);
    assert_eq!(holder.expect_msg(), "READY");
    let before = seg.bytes();
    match Writer::<SensorData>::create(&seg.name, &CreateOptions::default()) {
        Err(e @ Error::WriterAlive { .. }) => {
            let Error::WriterAlive { pid } = e else {
                unreachable!()
            };
            assert_eq!(pid, holder.pid());
            assert!(e.to_string().contains(&holder.pid().to_string()));
        }
        other => panic!("expected WriterAlive, got {other:?}"),
    }
    assert_eq!(seg.bytes(), before, "a refused writer changes nothing");
    holder.send("exit");
    holder.finish();

    let shm = Writer::<SensorData>::create(&seg.name, &CreateOptions::default()).unwrap();
    let mut data = SensorData::default();
    let info = read_into(
        &mut shm.reader().unwrap(),
        &mut data,
        ReadOptions::default(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(
        data.temperature, 7.0,
        "the last record is kept across writers"
    );
    assert!(info.status(SensorData::temperature).valid());
}

/// Processes racing to create one new segment: exactly one becomes its writer, every
/// other one is told that writer's process id.
#[test]
fn creation_race_has_one_winner() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("race");
    let mut racers: Vec<ChildProc> = (0..4)
        .map(|_| ChildProc::spawn("creation_race_has_one_winner", "racer", &seg.name))
        .collect();
    for r in &mut racers {
        r.send("go");
    }
    let outcomes: Vec<(u32, String)> = racers
        .iter_mut()
        .map(|r| (r.pid(), r.expect_msg()))
        .collect();
    let winners: Vec<u32> = outcomes
        .iter()
        .filter(|(_, m)| m == "WRITER")
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for (pid, m) in &outcomes {
        if *pid != winners[0] {
            assert_eq!(m, &format!("ALIVE {}", winners[0]), "{outcomes:?}");
        }
    }
    for r in racers {
        r.finish();
    }
}

/// A slot left odd (mid-write) in the record readers are directed to, with its writer
/// dead: a read times out with an error that says the writer is dead.
#[test]
fn dead_writer_holding_a_slot_is_reported() {
    if dispatch() {
        return;
    }
    let seg = SegGuard::new("stuck");
    let mut w = ChildProc::spawn(
        "dead_writer_holding_a_slot_is_reported",
        "claim-holder",
        &seg.name,
    );
    assert_eq!(w.expect_msg(), "READY");
    w.kill();
    // Emulate a writer that died while rewriting the current buffer: make its seq odd.
    // Header words: 28 slots_offset, 36 slot_stride, 48 head (docs/PROTOCOL.md).
    let head = seg.word(48);
    let buf = seg.word(28) as u64 + (head as u64 % 2) * seg.word(36) as u64;
    let seq = seg.word(buf as usize);
    seg.poke(buf, &(seq | 1).to_le_bytes());

    let mut r = Reader::<Dynamic>::open(&seg.name).unwrap();
    match r
        .read(ReadOptions::default(), Duration::from_millis(20))
        .map(|s| s.info())
    {
        Err(
            e @ Error::Timeout {
                no_record: false,
                writer_alive: Some(false),
            },
        ) => assert!(e.to_string().contains("dead"), "{e}"),
        other => panic!("expected a dead-writer timeout, got {other:?}"),
    }
    // A new writer takes over and readers recover.
    let mut nw = Writer::<SensorData>::create(&seg.name, &CreateOptions::default()).unwrap();
    nw.write(&SensorData {
        temperature: 8.0,
        ..Default::default()
    })
    .unwrap();
    let snap = r.read(ReadOptions::default(), LONG).unwrap();
    assert_eq!(snap.get(0).unwrap(), FieldValue::Float(8.0));
    assert!(snap.status(0).modified);
}
