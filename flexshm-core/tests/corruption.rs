//! Live corruption: a writer and two readers run while another thread flips random bytes
//! of the region (at least 100 000 flips per mode, single-slot then FIFO). Readers must
//! return records or typed errors, never panic, and every blocking read must return
//! within its timeout plus a generous margin (a liveness bound, not a speed test).
//!
//! The flipper keeps at most `WINDOW` bytes corrupted at a time: each flip is undone
//! (XORed again) `WINDOW` flips later, so the segment keeps being valid enough for reads
//! to succeed too, and is whole again once the flipper stops. A flipped byte may be one
//! the writer overwrites before the flip is undone; undoing it then corrupts the
//! writer's value until the writer stores that word again, which is corruption as well.
//! At the end the writer commits a few more records and a new reader must read the last
//! one exactly: corruption that is gone leaves no damage.
//!
//! Every access to the region, the flipper's included, is a 32-bit atomic (the flipper
//! uses `fetch_xor`), so the test is free of data races and runs under Miri (scaled
//! down).
#![cfg(not(loom))]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::scaled;
use embedded_hal::delay::DelayNs;
use flexshm_core::{
    record, Dynamic, Error, FieldDef, Layout, Mode, ReadOptions, Reader, Record, Region, Writer,
};

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Rec {
        n: u64,
        x: f64,
        on: bool,
        label: str[8],
        m: [[i16; 2]; 3],
    }
}

/// The record the writer commits as its `n`th.
fn rec(n: u64) -> Rec {
    let mut r = Rec {
        n,
        x: n as f64 * 0.25,
        on: n % 2 == 1,
        ..Default::default()
    };
    let _ = r
        .label
        .push_str(["", "a", "ñé", "🌍x", "12345678"][n as usize % 5]);
    for (k, row) in r.m.iter_mut().enumerate() {
        *row = [n as i16 ^ k as i16, -(k as i16)];
    }
    r
}

/// Flips in total per mode (the acceptance bound is 100 000).
fn flips() -> u64 {
    scaled(100_000, 300) as u64
}

/// Bytes corrupted at once.
const WINDOW: usize = 4;
/// Timeout of a blocking read, in microseconds, and its poll interval.
const TIMEOUT_US: u32 = 50_000;
const POLL_US: u32 = 500;
/// A blocking read of `TIMEOUT_US` must return within this (under Miri, time is not
/// checked: everything is orders of magnitude slower).
const LIVENESS: Duration = Duration::from_secs(1);
/// A reader whose current call has not returned after this long is hung: the test
/// stops the process rather than wait forever.
const HUNG: Duration = Duration::from_secs(30);

/// One cache line of the region; the region is a vector of them, so it is 64-aligned
/// and every word of it is an `AtomicU32`.
#[repr(C, align(64))]
struct Line([AtomicU32; 16]);

/// The region's memory.
struct Shared {
    lines: Vec<Line>,
    len: usize,
}

impl Shared {
    fn new(len: usize) -> Shared {
        let lines = (0..len.div_ceil(64))
            .map(|_| Line(std::array::from_fn(|_| AtomicU32::new(0))))
            .collect();
        Shared { lines, len }
    }

    fn region(&self) -> Region<'_> {
        // SAFETY: the lines are valid for `len` bytes (rounded up to whole lines) while
        // `self` is borrowed, and every access to them is atomic: flexshm's own 32-bit
        // loads and stores, and the flipper's `fetch_xor` on the same words. AtomicU32
        // is an UnsafeCell, so writing through a pointer derived from `&self` is allowed.
        unsafe { Region::from_raw_parts(self.lines.as_ptr() as *mut u8, self.len) }.unwrap()
    }

    /// XORs byte `off` of the region with `mask`.
    fn flip(&self, off: usize, mask: u8) {
        let word = &self.lines[off / 64].0[off % 64 / 4];
        let shift = if cfg!(target_endian = "little") {
            8 * (off % 4)
        } else {
            8 * (3 - off % 4)
        };
        word.fetch_xor((mask as u32) << shift, Ordering::Relaxed);
    }
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A `DelayNs` that sleeps, and notes a delay asked for after its deadline (the read's
/// timeout plus the margin): a blocking read that keeps polling past it is overrunning.
struct SleepDelay {
    deadline: Instant,
    overran: bool,
}

impl DelayNs for SleepDelay {
    fn delay_ns(&mut self, ns: u32) {
        if Instant::now() > self.deadline {
            self.overran = true;
        }
        thread::sleep(Duration::from_nanos(ns as u64));
    }
}

/// Errors a read may legitimately return on a corrupted segment.
fn read_error_ok(e: &Error, fifo: bool, blocking: bool) -> bool {
    match e {
        Error::CorruptHeader { .. } | Error::CorruptBuffer { .. } | Error::CorruptRecord { .. } => {
            true
        }
        Error::Contended => !blocking,
        Error::NoRecord => fifo && !blocking,
        Error::Timeout { .. } => blocking,
        _ => false,
    }
}

/// Errors opening a corrupted segment may return.
fn open_error_ok(e: &Error) -> bool {
    matches!(
        e,
        Error::RegionTooSmall { .. }
            | Error::BadMagic { .. }
            | Error::UnsupportedVersion { .. }
            | Error::CorruptHeader { .. }
            | Error::SchemaMismatch { .. }
            | Error::TooLarge
    )
}

/// What the threads share besides the region.
struct Run {
    start: Instant,
    stop: AtomicBool,
    /// Per reader: milliseconds since `start` when its current call began (0: idle).
    busy_since: [AtomicU64; 2],
    failures: Mutex<Vec<String>>,
}

impl Run {
    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs `f` (one reader call) with a panic turned into a failure and the call's
    /// start published for the watchdog.
    fn call<T>(&self, reader: usize, what: &str, f: impl FnOnce() -> T) -> Option<T> {
        let t = self.start.elapsed().as_millis() as u64 + 1;
        self.busy_since[reader].store(t, Ordering::Relaxed);
        let r = catch_unwind(AssertUnwindSafe(f));
        self.busy_since[reader].store(0, Ordering::Relaxed);
        match r {
            Ok(v) => Some(v),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                self.fail(format!("reader {reader}: {what} panicked: {msg}"));
                None
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    ok: u64,
    /// Records equal to what the writer wrote for their `n` (typed reader only).
    exact: u64,
    /// Errors by variant.
    errors: BTreeMap<String, u64>,
    blocking: u64,
    reopened: u64,
}

impl Counts {
    fn error(&mut self, e: &Error) {
        let name = format!("{e:?}");
        let name = name
            .split([' ', '{'])
            .next()
            .unwrap_or_default()
            .to_string();
        *self.errors.entry(name).or_default() += 1;
    }
}

/// Reader 0: run-time schema, non-blocking reads cycling through plain, latest,
/// reset_modified and both; every field of a snapshot decodes or is a CorruptRecord.
fn plain_reader(run: &Run, mut r: Reader<'_, Dynamic<&[FieldDef]>>, fifo: bool) -> Counts {
    let mut c = Counts::default();
    let mut buf = vec![0u8; r.snapshot_len()];
    let mut k = 0u32;
    while !run.stopped() {
        k = k.wrapping_add(1);
        let opts = ReadOptions {
            latest: k & 1 != 0,
            reset_modified: k & 2 != 0,
        };
        let res = run.call(0, "try_read", || match r.try_read(&mut buf, opts) {
            Ok(snap) => {
                for i in 0..snap.len() {
                    match snap.get(i) {
                        Ok(_) | Err(Error::CorruptRecord { .. }) => {}
                        Err(e) => return Err(format!("field {i} decoded with {e:?}")),
                    }
                }
                Ok(None)
            }
            Err(e) if read_error_ok(&e, fifo, false) => Ok(Some(e)),
            Err(e) => Err(format!("try_read returned {e:?}")),
        });
        match res {
            Some(Ok(None)) => c.ok += 1,
            Some(Ok(Some(e))) => c.error(&e),
            Some(Err(msg)) => run.fail(format!("reader 0: {msg}")),
            None => {}
        }
        if k.is_multiple_of(8) {
            thread::yield_now();
        }
    }
    c
}

/// Reader 1: typed, blocking reads with a sleeping delay (options cycling), each timed;
/// every 16th call instead opens the segment anew, typed and from its header.
fn blocking_reader(run: &Run, region: Region<'_>, mut r: Reader<'_, Rec>, fifo: bool) -> Counts {
    let mut c = Counts::default();
    let mut buf = [0u8; Rec::SNAPSHOT_LEN];
    let mut k = 0u32;
    while !run.stopped() {
        k = k.wrapping_add(1);
        if k.is_multiple_of(16) {
            let res = run.call(1, "open", || {
                for e in [
                    Reader::<Dynamic>::open(region).err(),
                    Reader::<Rec>::open(region).err(),
                ]
                .into_iter()
                .flatten()
                {
                    if !open_error_ok(&e) {
                        return Err(format!("open returned {e:?}"));
                    }
                }
                Ok(())
            });
            if let Some(Err(msg)) = res {
                run.fail(format!("reader 1: {msg}"));
            }
            c.reopened += 1;
            continue;
        }
        let opts = ReadOptions {
            latest: k & 1 != 0,
            reset_modified: k & 2 != 0,
        };
        let begin = Instant::now();
        let mut delay = SleepDelay {
            deadline: begin + Duration::from_micros(TIMEOUT_US as u64) + LIVENESS,
            overran: false,
        };
        let res = run.call(1, "read_blocking", || {
            match r.read_blocking(&mut buf, opts, &mut delay, TIMEOUT_US, POLL_US) {
                Ok(snap) => {
                    let mut out = Rec::default();
                    match snap.decode(&mut out) {
                        Ok(_) => Ok(Ok(out == rec(out.n))),
                        Err(e @ Error::CorruptRecord { .. }) => Ok(Err(e)),
                        Err(e) => Err(format!("decode returned {e:?}")),
                    }
                }
                Err(e) if read_error_ok(&e, fifo, true) => Ok(Err(e)),
                Err(e) => Err(format!("read_blocking returned {e:?}")),
            }
        });
        let took = begin.elapsed();
        c.blocking += 1;
        match res {
            Some(Ok(Ok(exact))) => {
                c.ok += 1;
                c.exact += exact as u64;
            }
            Some(Ok(Err(e))) => c.error(&e),
            Some(Err(msg)) => run.fail(format!("reader 1: {msg}")),
            None => {}
        }
        let limit = Duration::from_micros(TIMEOUT_US as u64) + LIVENESS;
        if !cfg!(miri) && (took > limit || delay.overran) {
            run.fail(format!(
                "reader 1: a blocking read with a {TIMEOUT_US} us timeout took {took:?}"
            ));
        }
    }
    c
}

fn corrupt_live(mode: Mode, seed: u64) {
    let layout = Layout::new(Rec::FIELDS).unwrap();
    let len = layout.segment_size(mode.slots()).unwrap();
    let shared = Shared::new(len);
    let region = shared.region();
    let mut w = Writer::<Rec>::create(region, mode).unwrap();
    w.write(&rec(1)).unwrap();
    w.finalize();
    let fifo = mode.is_fifo();
    // The readers open the segment before the corruption starts.
    let plain = Reader::<Dynamic<&[FieldDef]>>::open_with(region, Rec::FIELDS).unwrap();
    let typed = Reader::<Rec>::open(region).unwrap();
    let run = Run {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        busy_since: [AtomicU64::new(0), AtomicU64::new(0)],
        failures: Mutex::new(Vec::new()),
    };
    let flips_done = AtomicU64::new(0);
    let commits = AtomicU64::new(0);

    let (c0, c1, mut w, mut n) = thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 2u64;
            while !run.stopped() {
                let res =
                    catch_unwind(AssertUnwindSafe(|| w.write(&rec(n)).map(|()| w.finalize())));
                match res {
                    Ok(Ok(_)) => n += 1,
                    Ok(Err(e)) => run.fail(format!("writer: write returned {e:?}")),
                    Err(_) => run.fail("writer: write panicked".into()),
                }
                commits.store(n - 1, Ordering::Relaxed);
                thread::yield_now();
            }
            (w, n)
        });
        let flipper = s.spawn(|| {
            let mut rng = Rng(seed);
            let mut window = VecDeque::with_capacity(WINDOW + 1);
            for _ in 0..flips() {
                if run.stopped() {
                    break;
                }
                let v = rng.next();
                let off = (v >> 8) as usize % len;
                let mask = (v as u8).max(1);
                shared.flip(off, mask);
                window.push_back((off, mask));
                if window.len() > WINDOW {
                    let (o, m) = window.pop_front().unwrap();
                    shared.flip(o, m);
                }
                flips_done.fetch_add(1, Ordering::Relaxed);
                thread::yield_now();
            }
            for (o, m) in window {
                shared.flip(o, m);
            }
        });
        let r0 = s.spawn(|| plain_reader(&run, plain, fifo));
        let r1 = s.spawn(|| blocking_reader(&run, region, typed, fifo));

        // Watchdog: a reader call that does not return is a hang; nothing else would
        // end the test, so stop the process with the reason.
        while !flipper.is_finished() {
            thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
            let now = run.start.elapsed().as_millis() as u64;
            for (i, b) in run.busy_since.iter().enumerate() {
                let since = b.load(Ordering::Relaxed);
                if !cfg!(miri) && since != 0 && now.saturating_sub(since) > HUNG.as_millis() as u64
                {
                    eprintln!("reader {i}: one call has not returned for {HUNG:?}: hung");
                    std::process::exit(101);
                }
            }
        }
        flipper.join().unwrap();
        run.stop.store(true, Ordering::Relaxed);
        let (w, n) = writer.join().unwrap();
        let c0 = r0.join().unwrap();
        let c1 = r1.join().unwrap();
        (c0, c1, w, n)
    });

    let failures = run.failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{mode:?}: {failures:#?}");
    let total_flips = flips_done.load(Ordering::Relaxed);
    println!(
        "{mode:?}: {total_flips} flips, {} commits; plain reader {c0:?}; blocking reader {c1:?}",
        commits.load(Ordering::Relaxed)
    );
    assert_eq!(total_flips, flips());
    // Both readers ran all along, and reads succeeded as well as failed.
    assert!(c0.ok > 0 && c1.ok > 0 && c1.blocking > 0, "{c0:?} {c1:?}");

    // The flips are undone: after one more commit per buffer (every buffer rewritten), a
    // new reader reads the newest record exactly, in both decodes.
    for _ in 0..=mode.slots() {
        w.write(&rec(n)).unwrap();
        w.finalize();
        n += 1;
    }
    let last = rec(n - 1);
    let latest = ReadOptions {
        latest: true,
        ..Default::default()
    };
    let mut r = Reader::<Rec>::open(region).expect("the header is whole again");
    let mut buf = [0u8; Rec::SNAPSHOT_LEN];
    let snap = r.try_read(&mut buf, latest).unwrap();
    assert_eq!(snap.record().unwrap(), last);
    assert_eq!(snap.commit(), w.head());
    let mut d = Reader::<Dynamic>::open(region).expect("the header is whole again");
    let mut buf = vec![0u8; d.snapshot_len()];
    let snap = d.try_read(&mut buf, latest).unwrap();
    assert_eq!(snap.get(0).unwrap(), flexshm_core::FieldValue::UInt(last.n));
}

#[test]
fn single_slot_survives_live_corruption() {
    corrupt_live(Mode::Single, 0xF11F_0001);
}

#[test]
fn fifo_survives_live_corruption() {
    corrupt_live(Mode::Fifo { slots: 4 }, 0xF11F_0002);
}
