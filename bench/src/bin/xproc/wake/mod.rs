//! Blocking reads: how long a sleeping reader takes to return after a commit, next to a
//! raw futex wake between the same two processes, and how much CPU a reader uses while it
//! waits for nothing.
//!
//! The parent writes, the child reads. Before each commit the parent pauses long enough
//! (`--gap-us`) for the reader to finish its adaptive spin and sleep in the kernel, and
//! the child acknowledges every record it read before the next commit, so no two
//! wake-ups coalesce. The child stores each latency in a results file that the parent
//! reads at the end.
//!
//! A flexshm-std writer makes at most one FUTEX_WAKE per 50 µs (flexshm-std/src/wake.rs).
//! The last system measures a commit whose wake-up the writer skipped for that reason:
//! the reader, asleep with its sleep bounded by the writer's last wake-up + 60 µs, finds
//! it when that bound expires.
//!
//! `idle`: the reader's CPU time while it waits for nothing, measured by the child once
//! the wake-ups are done.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flexshm_bench::stats::{fmt_ns, Blocks};
use flexshm_bench::table::Table;
use flexshm_bench::{mono_ns, sample_sensor, spin_until, Args, SensorData, ShmFile, WakeCounter};
use flexshm_std::{CreateOptions, ReadOptions, Reader, Writer};

use crate::futex::RawFutex;
use crate::pair::{
    cpus, one_cpu_note, pin_child, pin_parent, tag_for, Ctl, Pair, C_BLOCK_START, C_RESULT,
    SETUP_LIMIT,
};
use crate::Res;

mod idle;

/// The systems of the wake-up table, in schedule order.
const SYSTEMS: [&str; 7] = [
    "raw futex wake",
    "flexshm-std FIFO, asleep in Reader::read()",
    "flexshm-std single-slot, asleep in Reader::wait()",
    "raw pair: 2nd post 5 µs after a woken one, no FUTEX_WAKE, FUTEX_WAIT timeout",
    "flexshm-std FIFO read(), 2nd commit 5 µs after a woken one (wake-up skipped)",
    "… the same, reader's timer slack 1 ns",
    "flexshm-std FIFO read(), 2nd commit 55 µs after a woken one (woken)",
];
const RAW: usize = 0;
const FIFO_READ: usize = 1;
const SINGLE_WAIT: usize = 2;
const RAW_PAIR: usize = 3;
const SKIPPED: usize = 4;
const SKIPPED_SLACK: usize = 5;
const WOKEN_PAIR: usize = 6;

/// Room for the wake-up latencies, one u64 each, then the idle figures.
const MAX_SAMPLES: usize = 1 << 16;
const RESULT_WORDS: usize = MAX_SAMPLES + 2 * idle::IDLE.len() * idle::MAX_IDLE_RUNS;

/// How long the writer waits after the reader acknowledged the first commit of a pair
/// before it commits the one whose wake-up it will skip: time for the reader to fall
/// asleep again.
const SKIP_DELAY: Duration = Duration::from_micros(5);
/// When the writer commits the second record of a pair that it does wake for: after its
/// least gap between two wake-ups (50 µs) since the first.
const WOKEN_DELAY: Duration = Duration::from_micros(55);
/// Waits that end at once, each halving the reader's spin (flexshm-std starts it at
/// 10 µs and keeps it within 1–50 µs).
const SPIN_RESETS: usize = 8;

/// The child's results: a file of u64 words.
struct Results(ShmFile);

impl Results {
    fn open(tag: &str, create: bool) -> Res<Results> {
        let name = format!("flexshm-bench-{tag}-results");
        Ok(Results(if create {
            ShmFile::create(&name, 8 * RESULT_WORDS)?
        } else {
            ShmFile::open(&name)?
        }))
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < RESULT_WORDS);
        // SAFETY: in bounds (checked), 8-aligned in a page-aligned mapping; accessed only
        // through this atomic by both processes.
        unsafe { &*(self.0.ptr().add(8 * i) as *const AtomicU64) }
    }

    /// Wake-up `k` of system `s` in block `b`.
    fn latency(&self, plan: &Plan, b: usize, s: usize, k: usize) -> &AtomicU64 {
        self.word((b * SYSTEMS.len() + s) * plan.iters + k)
    }

    /// Idle run `r` of idle system `s`: (CPU time, wall time) in ns.
    fn idle(&self, s: usize, r: usize) -> (&AtomicU64, &AtomicU64) {
        let i = MAX_SAMPLES + (s * idle::MAX_IDLE_RUNS + r) * 2;
        (self.word(i), self.word(i + 1))
    }
}

struct Plan {
    blocks: usize,
    iters: usize,
    gap: Duration,
    idle_runs: usize,
}

impl Plan {
    fn from(args: &Args) -> Res<Plan> {
        let plan = Plan {
            blocks: args.get("blocks", 10),
            iters: args.get("iters", 50),
            gap: Duration::from_micros(args.get("gap-us", 2000)),
            idle_runs: args.get("idle-runs", 3),
        };
        if plan.blocks * SYSTEMS.len() * plan.iters > MAX_SAMPLES
            || plan.idle_runs > idle::MAX_IDLE_RUNS
        {
            return Err("too many blocks, wake-ups or idle runs for the results file".into());
        }
        Ok(plan)
    }
}

/// The names of the run's segments.
struct Names {
    fifo: String,
    single: String,
    skip: String,
    idle_fifo: String,
    idle_single: String,
}

impl Names {
    fn new(tag: &str) -> Names {
        let n = |what: &str| format!("flexshm-bench-{tag}-{what}");
        Names {
            fifo: n("fifo"),
            single: n("single"),
            skip: n("skip"),
            idle_fifo: n("idle-fifo"),
            idle_single: n("idle-single"),
        }
    }
}

/// `xproc wake`: the writer, which prints the tables.
pub fn parent(args: &Args) -> Res {
    let tag = tag_for(args, "wake");
    let two = cpus().2;
    let plan = Plan::from(args)?;
    let names = Names::new(&tag);
    let ctl = Ctl::create(&tag)?;
    let res = Results::open(&tag, true)?;
    let raw = RawFutex::new(&tag, true)?;
    let fifo = CreateOptions::fifo(16);
    let single = CreateOptions::default();
    let mut w_fifo = Writer::<SensorData>::create(&names.fifo, &fifo)?;
    let mut w_single = Writer::<SensorData>::create(&names.single, &single)?;
    let mut w_skip = Writer::<SensorData>::create(&names.skip, &fifo)?;
    let skip_file = ShmFile::open_read_only(&names.skip)?;
    let skip_wakes = WakeCounter::new(&skip_file);
    let idle = (
        Writer::<SensorData>::create(&names.idle_fifo, &fifo)?,
        Writer::<SensorData>::create(&names.idle_single, &single)?,
    );
    let mut pair = Pair::start("wake-child", args, &tag, ctl)?;
    pair.wait_ready()?;
    pin_parent();
    let mut rec = sample_sensor(0);
    let mut acks = 0u64;
    let mut first_commits = 0u64;
    // Per block and system: was the wake-up of each timed commit skipped?
    let mut skipped = vec![vec![Vec::new(); SYSTEMS.len()]; plan.blocks];
    let ack = |acks: u64| -> Res {
        let word = pair.ctl.word(C_RESULT);
        if spin_until(SETUP_LIMIT, || word.load(Ordering::Acquire) == acks) {
            Ok(())
        } else {
            Err("the reader did not wake up".into())
        }
    };
    for (b, block_skipped) in skipped.iter_mut().enumerate() {
        for k in 0..SYSTEMS.len() {
            let s = (b + k) % SYSTEMS.len();
            for _ in 0..plan.iters {
                // Long enough for the reader to finish its spin and sleep.
                std::thread::sleep(plan.gap);
                // `pressure` tells the reader which records it times (1.0).
                rec.pressure = 1.0;
                match s {
                    RAW => raw.post(),
                    FIFO_READ => {
                        rec.timestamp = mono_ns() as f64;
                        w_fifo.write(&rec)?;
                        w_fifo.finalize()?;
                    }
                    SINGLE_WAIT => {
                        rec.timestamp = mono_ns() as f64;
                        w_single.write(&rec)?;
                    }
                    RAW_PAIR => {
                        raw.post();
                        first_commits += 1;
                        // Pairs with the child's Acquire load: it reads the post now.
                        pair.ctl
                            .word(C_BLOCK_START)
                            .store(first_commits, Ordering::Release);
                        acks += 1;
                        ack(acks)?;
                        let at = Instant::now() + SKIP_DELAY;
                        while Instant::now() < at {
                            std::hint::spin_loop();
                        }
                        raw.post_silent();
                    }
                    _ => {
                        // A commit that wakes (nobody sleeps yet), then, once the reader
                        // has read it and sleeps again, one within the writer's least
                        // gap between two wake-ups (SKIPPED*) or after it (WOKEN_PAIR).
                        rec.pressure = 0.0;
                        w_skip.write(&rec)?;
                        w_skip.finalize()?;
                        let first = Instant::now();
                        let woken = skip_wakes.get();
                        first_commits += 1;
                        // Pairs with the child's Acquire load: it reads the record now.
                        pair.ctl
                            .word(C_BLOCK_START)
                            .store(first_commits, Ordering::Release);
                        acks += 1;
                        ack(acks)?;
                        let at = if s == WOKEN_PAIR {
                            first + WOKEN_DELAY
                        } else {
                            Instant::now() + SKIP_DELAY
                        };
                        while Instant::now() < at {
                            std::hint::spin_loop();
                        }
                        rec.pressure = 1.0;
                        rec.timestamp = mono_ns() as f64;
                        w_skip.write(&rec)?;
                        w_skip.finalize()?;
                        block_skipped[s].push(skip_wakes.get() == woken);
                    }
                }
                acks += 1;
                ack(acks)?;
            }
        }
    }
    // The child now measures idle waits on the segments nobody writes.
    pair.finish()?;
    drop(idle);
    for n in [
        &names.fifo,
        &names.single,
        &names.skip,
        &names.idle_fifo,
        &names.idle_single,
    ] {
        let _ = flexshm_std::unlink(n);
    }
    let mut blocks = Blocks::new(&SYSTEMS);
    // Pairs count only if the writer did what the row says: skipped, or woke.
    let (mut kept, mut pairs) = ([0; SYSTEMS.len()], [0; SYSTEMS.len()]);
    for (b, skipped) in skipped.iter().enumerate() {
        for (s, skipped) in skipped.iter().enumerate() {
            let keep = |k: usize| match s {
                SKIPPED | SKIPPED_SLACK => skipped[k],
                WOKEN_PAIR => !skipped[k],
                _ => true,
            };
            let v: Vec<f64> = (0..plan.iters)
                .filter(|&k| keep(k))
                .map(|k| res.latency(&plan, b, s, k).load(Ordering::Relaxed) as f64)
                .collect();
            kept[s] += v.len();
            pairs[s] += skipped.len();
            blocks.push(s, v);
        }
    }
    let mut t = Table::new(
        "Blocking wait: wake-up latency, commit to a sleeping reader's return",
        &[
            "system",
            "p50",
            "p99",
            "ratio to raw futex wake",
            "ratio to raw pair",
        ],
    );
    for s in 0..SYSTEMS.len() {
        t.row(vec![
            blocks.name(s).to_string(),
            fmt_ns(blocks.pooled(s, 50.0)),
            fmt_ns(blocks.pooled(s, 99.0)),
            blocks.ratio(s, RAW).show(),
            if s >= RAW_PAIR {
                blocks.ratio(s, RAW_PAIR).show()
            } else {
                "–".into()
            },
        ]);
    }
    t.note(format!(
        "{} blocks × {} wake-ups per system, interleaved; the writer waits {} µs before \
         each commit, so the reader has finished its adaptive spin and sleeps in the \
         kernel. Latency = CLOCK_MONOTONIC when the read returns − the timestamp the \
         writer stored just before committing. The baseline stores a counter and calls \
         FUTEX_WAKE; its reader sleeps in FUTEX_WAIT. The flexshm-std writer makes a \
         FUTEX_WAKE after a commit unless it made one less than 50 µs before. Pairs (last \
         four rows): the raw pair posts (and wakes) once, waits for the reader to see it \
         and 5 µs more, then bumps a second counter without a wake-up; its reader, \
         asleep on the futex word with a timeout at the first post + 60 µs, finds it then \
         (what a flexshm-std reader does when a wake-up is skipped, in raw calls). In the \
         flexshm-std pairs the writer commits a record (it wakes; the reader, told through \
         another word, reads it without sleeping and shortens its adaptive spin to the \
         minimum, as after sparse records), and once the reader has acknowledged it and \
         sleeps again, commits the timed record {} µs after the acknowledgement (its \
         wake-up skipped: the reader finds it when its sleep, bounded by the writer's last \
         wake-up + 60 µs, ends; that timeout is late by up to the thread's timer slack, \
         50 µs by default, 1 ns in the second pair row through PR_SET_TIMERSLACK) or {} µs \
         after the first commit (woken). Only pairs where the writer skipped, resp. made, \
         the wake-up are counted: {} of {}, {} of {} and {} of {}.{}",
        plan.blocks,
        plan.iters,
        plan.gap.as_micros(),
        SKIP_DELAY.as_micros(),
        WOKEN_DELAY.as_micros(),
        kept[SKIPPED],
        pairs[SKIPPED],
        kept[SKIPPED_SLACK],
        pairs[SKIPPED_SLACK],
        kept[WOKEN_PAIR],
        pairs[WOKEN_PAIR],
        one_cpu_note(two)
    ));
    t.print();
    idle::table(&res, plan.idle_runs);
    Ok(())
}

/// The child's readers.
struct Readers {
    fifo: Reader<SensorData>,
    single: Reader<SensorData>,
    skip: Reader<SensorData>,
    idle_fifo: Reader<SensorData>,
    idle_single: Reader<SensorData>,
}

/// Reads the next record of a FIFO, sleeping until there is one.
fn read_next(r: &mut Reader<SensorData>, out: &mut SensorData) -> Res {
    r.read(ReadOptions::default(), Duration::from_secs(10))?
        .decode(out)?;
    Ok(())
}

/// Nanoseconds from the writer's timestamp in `out` to now; checks that it is a timed
/// record.
fn since_stamp(out: &SensorData) -> Res<u64> {
    if out.pressure != 1.0 {
        return Err("read an untimed record where a timed one was due".into());
    }
    Ok(mono_ns().saturating_sub(out.timestamp as u64))
}

/// Sets this thread's timer slack (the lateness the kernel may add to its timeouts) to
/// `ns`; 0 restores the default.
fn set_timer_slack(ns: libc::c_ulong) {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread's setting.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns) };
}

/// `xproc wake-child`: the reader.
pub fn child(args: &Args) -> Res {
    let tag = tag_for(args, "wake");
    pin_child(args);
    let ctl = Ctl::open(&tag)?;
    let plan = Plan::from(args)?;
    let names = Names::new(&tag);
    let setup = || -> Res<_> {
        let open = |n: &str| Reader::<SensorData>::open(n);
        Ok((
            Results::open(&tag, false)?,
            RawFutex::new(&tag, false)?,
            Readers {
                fifo: open(&names.fifo)?,
                single: open(&names.single)?,
                skip: open(&names.skip)?,
                idle_fifo: open(&names.idle_fifo)?,
                idle_single: open(&names.idle_single)?,
            },
        ))
    };
    let (res, raw, mut r) = ctl.report_setup(setup())?;
    let mut last = raw.word().load(Ordering::Acquire);
    let mut out = SensorData::default();
    let mut acks = 0u64;
    let mut first_commits = 0u64;
    let mut acknowledge = || {
        acks += 1;
        // Pairs with the parent's Acquire load before its next commit.
        ctl.word(C_RESULT).store(acks, Ordering::Release);
    };
    for b in 0..plan.blocks {
        for k in 0..SYSTEMS.len() {
            let s = (b + k) % SYSTEMS.len();
            for i in 0..plan.iters {
                let lat = match s {
                    RAW => {
                        let (v, stamp) = raw.wait(last);
                        last = v;
                        mono_ns().saturating_sub(stamp)
                    }
                    FIFO_READ => {
                        read_next(&mut r.fifo, &mut out)?;
                        since_stamp(&out)?
                    }
                    SINGLE_WAIT => {
                        if !r.single.wait(Duration::from_secs(10))? {
                            return Err("wait() timed out".into());
                        }
                        r.single
                            .try_read(ReadOptions::default())?
                            .decode(&mut out)?;
                        since_stamp(&out)?
                    }
                    RAW_PAIR => {
                        first_commits += 1;
                        let start = ctl.word(C_BLOCK_START);
                        if !spin_until(SETUP_LIMIT, || {
                            start.load(Ordering::Acquire) == first_commits
                        }) {
                            return Err("the writer did not post".into());
                        }
                        let (v, first) = raw.current();
                        last = v;
                        let count = raw.silent_count();
                        acknowledge();
                        let stamp = raw.wait_silent(v, count, first + 60_000);
                        mono_ns().saturating_sub(stamp)
                    }
                    _ => {
                        // The first record, read without sleeping as soon as the writer
                        // says it is there. Then waits that end at once bring the
                        // reader's adaptive spin down to its shortest, where it is after
                        // sparse records: otherwise the spin, lengthened by every pair
                        // found while spinning, would catch the second record before
                        // the reader sleeps.
                        first_commits += 1;
                        let start = ctl.word(C_BLOCK_START);
                        if !spin_until(SETUP_LIMIT, || {
                            start.load(Ordering::Acquire) == first_commits
                        }) {
                            return Err("the writer did not commit".into());
                        }
                        r.skip.try_read(ReadOptions::default())?.decode(&mut out)?;
                        for _ in 0..SPIN_RESETS {
                            r.skip.wait(Duration::ZERO)?;
                        }
                        if s == SKIPPED_SLACK {
                            set_timer_slack(1);
                        }
                        acknowledge();
                        read_next(&mut r.skip, &mut out)?;
                        if s == SKIPPED_SLACK {
                            set_timer_slack(0);
                        }
                        since_stamp(&out)?
                    }
                };
                res.latency(&plan, b, s, i).store(lat, Ordering::Relaxed);
                acknowledge();
            }
        }
    }
    idle::measure(
        &res,
        plan.idle_runs,
        &raw,
        &mut r.idle_fifo,
        &mut r.idle_single,
    )
}
