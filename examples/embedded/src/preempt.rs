//! Writer and reader in contexts that preempt each other: the SysTick interrupt and the
//! main loop. Pass/fail never depends on timing except through generous minimums, and
//! every loop has an iteration cap so a stuck timer fails the test instead of hanging.

use core::sync::atomic::Ordering;

use cortex_m::peripheral::SYST;
use flexshm_core::{Error, Mode, ReadOptions, TypedReader, TypedWriter};

use crate::harness::Msg;
use crate::probe::{Probe, Stats};
use crate::shared::{
    peek_job, region, reset_counters, set_job, start_timer, stop_timer, Job, ReaderJob, COMMITTED,
    IN_OP, PREEMPTED, TICKS,
};
use crate::{ensure, msg};

/// SysTick period in core cycles while a test runs.
pub const TICK_CYCLES: u32 = 20_000;
/// Main-loop reads a test wants at least.
const MIN_READS: u32 = 5_000;
/// Distinct commits a reader must see at least.
const MIN_DISTINCT: u32 = 1_000;
/// Records a FIFO reader must read at least.
const MIN_FIFO_READS: u32 = 300;
/// Hard cap on main-loop iterations of any test.
const MAX_ITERATIONS: u32 = 4_000_000;
/// Cap on the spins of one wait for the interrupt.
const MAX_WAIT_SPINS: u32 = 20_000_000;
/// FIFO ring size in these tests.
pub const SLOTS: u32 = 4;

fn mode_fifo() -> Mode {
    Mode::Fifo { slots: SLOTS }
}

/// Iterations after which a timer that has not ticked once counts as dead.
const DEAD_TIMER_ITERATIONS: u32 = 200_000;

/// True while the loop may go on: under the cap, and the timer has ticked at least once
/// within the first [`DEAD_TIMER_ITERATIONS`] (so a dead timer fails in a second, not
/// after the whole cap).
fn keep_going(it: u32, ticks_at_start: u32) -> bool {
    it < MAX_ITERATIONS
        && (it < DEAD_TIMER_ITERATIONS || TICKS.load(Ordering::Relaxed) != ticks_at_start)
}

/// Marks main as inside a read or write while `f` runs (for the preemption count).
fn in_op<R>(f: impl FnOnce() -> R) -> R {
    IN_OP.store(true, Ordering::Relaxed);
    let r = f();
    IN_OP.store(false, Ordering::Relaxed);
    r
}

/// Single-slot: writer in SysTick, reader in main.
#[inline(never)]
pub fn single_writer_isr(syst: &mut SYST) -> Result<Msg, Msg> {
    reset_counters();
    let w = TypedWriter::<Probe>::create(region(), Mode::Single).map_err(|e| msg!("{e}"))?;
    let mut r = TypedReader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?;
    set_job(Job::SingleWriter { w, n: 0 });
    let mut buf = [0u8; <Probe as flexshm_core::Record>::SNAPSHOT_LEN];
    let mut out = Probe::default();
    let mut st = Stats::default();
    start_timer(syst, TICK_CYCLES);
    let mut it = 0;
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(it, t0) && (st.reads < MIN_READS || st.distinct < MIN_DISTINCT) {
        let res = in_op(|| r.try_read(&mut buf, ReadOptions::default(), &mut out));
        st.single(res, &out);
        it += 1;
    }
    stop_timer(syst);
    set_job(Job::Idle);
    let committed = COMMITTED.load(Ordering::Relaxed);
    let preempted = PREEMPTED.load(Ordering::Relaxed);
    if let Some(p) = st.problems() {
        return Err(p);
    }
    ensure!(
        st.reads >= MIN_READS && st.distinct >= MIN_DISTINCT,
        "only {} reads, {} distinct commits after {} iterations (commits={})",
        st.reads,
        st.distinct,
        it,
        committed
    );
    ensure!(preempted > 0, "no tick ever landed inside a read");
    Ok(msg!(
        "reads={} distinct={} commits={} ticks_inside_reads={} contended={}",
        st.reads,
        st.distinct,
        committed,
        preempted,
        st.contended
    ))
}

/// Single-slot: writer in main, reader in SysTick.
#[inline(never)]
pub fn single_reader_isr(syst: &mut SYST) -> Result<Msg, Msg> {
    reset_counters();
    let mut w = TypedWriter::<Probe>::create(region(), Mode::Single).map_err(|e| msg!("{e}"))?;
    let r = TypedReader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?;
    set_job(Job::SingleReader(ReaderJob::new(r)));
    let mut rec = Probe::default();
    let mut n = 0u32;
    start_timer(syst, TICK_CYCLES);
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(n, t0) {
        n += 1;
        rec.set(n);
        in_op(|| w.write(&rec)).map_err(|e| msg!("write {n}: {e}"))?;
        if n % 64 == 0 && isr_reads(MIN_DISTINCT) {
            break;
        }
    }
    stop_timer(syst);
    let Job::SingleReader(j) = set_job(Job::Idle) else {
        return Err(msg!("interrupt job was replaced"));
    };
    let st = j.stats;
    if let Some(p) = st.problems() {
        return Err(p);
    }
    ensure!(
        st.distinct >= MIN_DISTINCT,
        "interrupt saw only {} distinct commits in {} reads ({} written)",
        st.distinct,
        st.reads,
        n
    );
    ensure!(
        st.contended == 0,
        "a reader that preempts the writer was contended"
    );
    Ok(msg!(
        "isr_reads={} distinct={} written={} ticks_inside_writes={}",
        st.reads,
        st.distinct,
        n,
        PREEMPTED.load(Ordering::Relaxed)
    ))
}

/// True once the interrupt's reader has seen `min` distinct records.
fn isr_reads(min: u32) -> bool {
    peek_job(|j| match j {
        Job::SingleReader(j) | Job::FifoReader(j) => j.stats.distinct >= min,
        _ => false,
    })
}

type Started = (
    TypedWriter<'static, Probe>,
    TypedReader<'static, Probe>,
    [u8; <Probe as flexshm_core::Record>::SNAPSHOT_LEN],
    Probe,
    Stats,
);

/// A FIFO segment with record 1 committed and already read: the reader's cursor is
/// started, so from here on every record is either read or reported lost. (A reader
/// that has never read starts at the oldest record still in the ring, and records
/// overwritten before that are not its losses.)
// Inlined: a separate frame holding these objects would nest under the caller's.
#[inline(always)]
fn fifo_started() -> Result<Started, Msg> {
    let mut w = TypedWriter::<Probe>::create(region(), mode_fifo()).map_err(|e| msg!("{e}"))?;
    let mut r = TypedReader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?;
    w.write(&Probe::make(1)).map_err(|e| msg!("{e}"))?;
    w.finalize();
    COMMITTED.store(1, Ordering::Relaxed);
    let mut buf = [0u8; <Probe as flexshm_core::Record>::SNAPSHOT_LEN];
    let mut out = Probe::default();
    let mut st = Stats::default();
    let got = st.fifo(r.try_read(&mut buf, ReadOptions::default(), &mut out), &out);
    ensure!(
        got && out.counter == 1,
        "first record not read: {:?}",
        st.first_error
    );
    Ok((w, r, buf, out, st))
}

/// Spins until `cond` holds; false if it did not within a generous cap (a stopped
/// timer must fail the test, not hang it).
fn wait_for(cond: impl Fn() -> bool) -> bool {
    let start = TICKS.load(Ordering::Relaxed);
    for _ in 0..MAX_WAIT_SPINS {
        if cond() {
            return true;
        }
        // Waiting for the writer, never for more than a few hundred of its ticks.
        if TICKS.load(Ordering::Relaxed).wrapping_sub(start) > 500 {
            return false;
        }
    }
    false
}

/// FIFO: writer in SysTick, reader in main; the reader is made to fall behind by more
/// than the ring now and then, and its loss counts must add up to what the writer
/// committed.
#[inline(never)]
pub fn fifo_writer_isr(syst: &mut SYST) -> Result<Msg, Msg> {
    reset_counters();
    let (w, mut r, mut buf, mut out, mut st) = fifo_started()?;
    set_job(Job::FifoWriter { w, n: 1 });
    let mut laps = 0u32;
    start_timer(syst, TICK_CYCLES);
    let mut it = 0;
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(it, t0) && (st.reads < MIN_FIFO_READS || laps < 5) {
        it += 1;
        let res = in_op(|| r.try_read(&mut buf, ReadOptions::default(), &mut out));
        let got = st.fifo(res, &out);
        if got && st.reads % 40 == 0 {
            // Fall behind: wait (for the writer, not for time) until it has committed
            // more than a ring's worth past what we read.
            let target = st.last + SLOTS + 2;
            if !wait_for(|| COMMITTED.load(Ordering::Relaxed) >= target) {
                break;
            }
            laps += 1;
        }
    }
    stop_timer(syst);
    let Job::FifoWriter { n: committed, .. } = set_job(Job::Idle) else {
        return Err(msg!("interrupt job was replaced"));
    };
    // Drain what is left: the writer is stopped, so the reader must reach its last record.
    while it < MAX_ITERATIONS
        && st.fifo(r.try_read(&mut buf, ReadOptions::default(), &mut out), &out)
    {
        it += 1;
    }
    if let Some(p) = st.problems() {
        return Err(p);
    }
    ensure!(
        st.reads >= MIN_FIFO_READS && laps >= 5,
        "only {} records read, {} laps forced, after {} iterations (committed={})",
        st.reads,
        laps,
        it,
        committed
    );
    ensure!(
        st.reads + st.lost == committed && st.last == committed,
        "read {} + lost {} != committed {} (last read {})",
        st.reads,
        st.lost,
        committed,
        st.last
    );
    ensure!(
        st.lost >= laps * 2,
        "lost {} records over {} forced laps: each lap loses at least 2",
        st.lost,
        laps
    );
    ensure!(
        r.inner().lost_total() == st.lost as u64,
        "reader's lost_total {} != sum of per-read losses {}",
        r.inner().lost_total(),
        st.lost
    );
    Ok(msg!(
        "committed={} read={} lost={} forced_laps={} contended={}",
        committed,
        st.reads,
        st.lost,
        laps,
        st.contended
    ))
}

/// FIFO: writer in main, reader in SysTick (lapped all the time by the fast writer).
#[inline(never)]
pub fn fifo_reader_isr(syst: &mut SYST) -> Result<Msg, Msg> {
    reset_counters();
    let (mut w, r, buf, out, stats) = fifo_started()?;
    set_job(Job::FifoReader(ReaderJob { r, buf, out, stats }));
    let mut rec = Probe::default();
    let mut n = 1u32;
    start_timer(syst, TICK_CYCLES);
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(n, t0) {
        n += 1;
        rec.set(n);
        in_op(|| {
            w.write(&rec)?;
            w.finalize();
            Ok::<(), Error>(())
        })
        .map_err(|e| msg!("write {n}: {e}"))?;
        if n % 64 == 0 && isr_reads(MIN_FIFO_READS) {
            break;
        }
    }
    stop_timer(syst);
    let Job::FifoReader(mut j) = set_job(Job::Idle) else {
        return Err(msg!("interrupt job was replaced"));
    };
    let isr_reads = j.stats.reads;
    // The reader moves to main (single-owner handoff) and drains the ring.
    let mut k = 0;
    while k < 2 * SLOTS
        && j.stats.fifo(
            j.r.try_read(&mut j.buf, ReadOptions::default(), &mut j.out),
            &j.out,
        )
    {
        k += 1;
    }
    let st = &j.stats;
    if let Some(p) = st.problems() {
        return Err(p);
    }
    ensure!(
        isr_reads >= MIN_FIFO_READS,
        "interrupt read only {} records ({} written)",
        isr_reads,
        n
    );
    ensure!(
        st.reads + st.lost == n && st.last == n,
        "read {} + lost {} != written {} (last read {})",
        st.reads,
        st.lost,
        n,
        st.last
    );
    Ok(msg!(
        "written={} isr_reads={} drained={} lost={} ticks_inside_writes={}",
        n,
        isr_reads,
        k,
        st.lost,
        PREEMPTED.load(Ordering::Relaxed)
    ))
}
