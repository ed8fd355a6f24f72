//! Writer and reader in contexts that preempt each other: the SysTick interrupt and the
//! main loop. Pass/fail never depends on timing except through generous minimums, and
//! every loop has an iteration cap so a stuck timer fails the test instead of hanging.

use core::sync::atomic::Ordering;

use cortex_m::peripheral::SYST;
use flexshm_core::{Error, Mode, Reader, Writer};

use crate::harness::Msg;
use crate::probe::{Probe, Stats};
use crate::shared::{
    region, reset_counters, start_timer, stop_timer, with_isr, Job, ReaderState, COMMITTED, IN_OP,
    PREEMPTED, TICKS,
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

// Stack: the interrupt runs on the same stack as the loops below, at their deepest
// point, and the nRF51 has 16 KiB of RAM in all. So the interrupt's objects are set up
// in place in its static state (`with_isr`), and the main side keeps one
// `ReaderState` or one writer: nothing large is moved through a frame.

/// Creates a segment and its reader for main; the writer goes to the interrupt.
#[inline(never)]
fn writer_to_isr(main: &mut ReaderState, mode: Mode) -> Result<(), Msg> {
    let mut w = Writer::<Probe>::create(region(), mode).map_err(|e| msg!("{e}"))?;
    main.r = Some(Reader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?);
    main.stats = Stats::new();
    let mut n = 0;
    if mode.is_fifo() {
        // Start the reader's cursor on record 1, so from here on every record is either
        // read or reported lost. (A reader that has never read starts at the oldest
        // record still in the ring; records overwritten before that are not its losses.)
        n = 1;
        w.write(&Probe::make(1)).map_err(|e| msg!("{e}"))?;
        w.finalize();
        ensure!(
            main.read_fifo() && main.out.counter == 1,
            "first record not read: {:?}",
            main.stats.first_error
        );
    }
    COMMITTED.store(n, Ordering::Relaxed);
    with_isr(|s| {
        s.writer = Some(w);
        s.n = n;
        s.job = if mode.is_fifo() {
            Job::FifoWriter
        } else {
            Job::SingleWriter
        };
    });
    Ok(())
}

/// Creates a segment and its writer for main; the reader goes to the interrupt.
#[inline(never)]
fn reader_to_isr(mode: Mode) -> Result<Writer<'static, Probe>, Msg> {
    let mut w = Writer::<Probe>::create(region(), mode).map_err(|e| msg!("{e}"))?;
    let r = Reader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?;
    with_isr(|s| -> Result<(), Msg> {
        s.reader.r = Some(r);
        s.reader.stats = Stats::new();
        if mode.is_fifo() {
            // As in `writer_to_isr`: the reader's cursor starts on record 1.
            w.write(&Probe::make(1)).map_err(|e| msg!("{e}"))?;
            w.finalize();
            ensure!(
                s.reader.read_fifo() && s.reader.out.counter == 1,
                "first record not read: {:?}",
                s.reader.stats.first_error
            );
        }
        s.job = if mode.is_fifo() {
            Job::FifoReader
        } else {
            Job::SingleReader
        };
        Ok(())
    })?;
    Ok(w)
}

/// Stops the interrupt's job and drops its writer; returns the records it committed.
#[inline(never)]
fn writer_from_isr() -> u32 {
    with_isr(|s| {
        s.job = Job::Idle;
        s.writer = None;
        s.n
    })
}

/// True once the interrupt's reader has seen `min` distinct records.
fn isr_reads(min: u32) -> bool {
    with_isr(|s| s.reader.stats.distinct >= min)
}

/// Single-slot: writer in SysTick, reader in main.
#[inline(never)]
pub fn single_writer_isr(syst: &mut SYST, main: &mut ReaderState) -> Result<Msg, Msg> {
    reset_counters();
    writer_to_isr(main, Mode::Single)?;
    start_timer(syst, TICK_CYCLES);
    let mut it = 0;
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(it, t0) && (main.stats.reads < MIN_READS || main.stats.distinct < MIN_DISTINCT)
    {
        in_op(|| main.read_single());
        it += 1;
    }
    stop_timer(syst);
    let committed = writer_from_isr();
    let st = &main.stats;
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
pub fn single_reader_isr(syst: &mut SYST, rec: &mut Probe) -> Result<Msg, Msg> {
    reset_counters();
    let mut w = reader_to_isr(Mode::Single)?;
    let mut n = 0u32;
    start_timer(syst, TICK_CYCLES);
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(n, t0) {
        n += 1;
        rec.set(n);
        in_op(|| w.write(rec)).map_err(|e| msg!("write {n}: {e}"))?;
        if n % 64 == 0 && isr_reads(MIN_DISTINCT) {
            break;
        }
    }
    stop_timer(syst);
    with_isr(|s| {
        s.job = Job::Idle;
        s.reader.r = None;
        let st = &s.reader.stats;
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
    })
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
pub fn fifo_writer_isr(syst: &mut SYST, main: &mut ReaderState) -> Result<Msg, Msg> {
    reset_counters();
    writer_to_isr(main, mode_fifo())?;
    let mut laps = 0u32;
    start_timer(syst, TICK_CYCLES);
    let mut it = 0;
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(it, t0) && (main.stats.reads < MIN_FIFO_READS || laps < 5) {
        it += 1;
        let got = in_op(|| main.read_fifo());
        if got && main.stats.reads % 40 == 0 {
            // Fall behind: wait (for the writer, not for time) until it has committed
            // more than a ring's worth past what we read.
            let target = main.stats.last + SLOTS + 2;
            if !wait_for(|| COMMITTED.load(Ordering::Relaxed) >= target) {
                break;
            }
            laps += 1;
        }
    }
    stop_timer(syst);
    let committed = writer_from_isr();
    // Drain what is left: the writer is stopped, so the reader must reach its last record.
    while it < MAX_ITERATIONS && main.read_fifo() {
        it += 1;
    }
    let lost_total = main.r.as_mut().map_or(0, |r| r.lost_total());
    main.r = None;
    let st = &main.stats;
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
        lost_total == st.lost as u64,
        "reader's lost_total {} != sum of per-read losses {}",
        lost_total,
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
pub fn fifo_reader_isr(syst: &mut SYST, rec: &mut Probe) -> Result<Msg, Msg> {
    reset_counters();
    let mut w = reader_to_isr(mode_fifo())?;
    let mut n = 1u32;
    start_timer(syst, TICK_CYCLES);
    let t0 = TICKS.load(Ordering::Relaxed);
    while keep_going(n, t0) {
        n += 1;
        rec.set(n);
        in_op(|| {
            w.write(rec)?;
            w.finalize();
            Ok::<(), Error>(())
        })
        .map_err(|e| msg!("write {n}: {e}"))?;
        if n % 64 == 0 && isr_reads(MIN_FIFO_READS) {
            break;
        }
    }
    stop_timer(syst);
    with_isr(|s| {
        s.job = Job::Idle;
        let isr_reads = s.reader.stats.reads;
        // The interrupt is stopped; the reader is drained here, in place.
        let mut k = 0;
        while k < 2 * SLOTS && s.reader.read_fifo() {
            k += 1;
        }
        s.reader.r = None;
        let st = &s.reader.stats;
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
    })
}
