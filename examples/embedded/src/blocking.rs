//! Blocking reads with a timeout through embedded-hal's `DelayNs`.

use cortex_m::delay::Delay;
use cortex_m::peripheral::SYST;
use embedded_hal::delay::DelayNs;
use flexshm_core::{Error, Mode, ReadOptions, Reader, Writer, DEFAULT_POLL_US};

use crate::harness::Msg;
use crate::preempt::{SLOTS, TICK_CYCLES};
use crate::probe::Probe;
use crate::shared::{region, reset_counters, start_timer, stop_timer, with_isr, Job};
use crate::{ensure, msg};

/// Core clock assumed for `Delay` and `CycleDelay` (the boards' nominal clocks). It
/// only scales how long a delay lasts; no test result depends on it.
#[cfg(machine = "lm3s6965evb")]
pub const CORE_HZ: u32 = 12_000_000;
/// See above.
#[cfg(machine = "microbit")]
pub const CORE_HZ: u32 = 16_000_000;

/// A `DelayNs` that spins a number of core cycles (`cortex_m::asm::delay`), leaving
/// SysTick free for the interrupt that writes.
pub struct CycleDelay;

impl DelayNs for CycleDelay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = (ns as u64 * CORE_HZ as u64 / 1_000_000_000).max(1);
        cortex_m::asm::delay(cycles.min(u32::MAX as u64) as u32);
    }
}

/// A FIFO reader blocks until the SysTick interrupt commits a record (success path).
#[inline(never)]
pub fn success(syst: &mut SYST) -> Result<Msg, Msg> {
    reset_counters();
    let w =
        Writer::<Probe>::create(region(), Mode::Fifo { slots: SLOTS }).map_err(|e| msg!("{e}"))?;
    let mut r = Reader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?;
    let mut buf = [0u8; <Probe as flexshm_core::Record>::SNAPSHOT_LEN];
    let mut out = Probe::default();
    // Nothing yet: a non-blocking read says so.
    let first = r
        .try_read(&mut buf, ReadOptions::default())
        .and_then(|s| s.decode(&mut out));
    ensure!(first == Err(Error::NoRecord), "empty FIFO gave {first:?}");
    with_isr(|s| {
        s.writer = Some(w);
        s.n = 0;
        s.job = Job::OneShot { at: 3 };
    });
    start_timer(syst, TICK_CYCLES);
    // A generous bound (2 s of delay): the record comes after three ticks.
    let res = r
        .read_blocking(
            &mut buf,
            ReadOptions::default(),
            &mut CycleDelay,
            2_000_000,
            DEFAULT_POLL_US,
        )
        .and_then(|s| s.decode(&mut out));
    stop_timer(syst);
    with_isr(|s| {
        s.job = Job::Idle;
        s.writer = None;
    });
    let info = res.map_err(|e| msg!("blocking read failed: {e}"))?;
    ensure!(
        out.counter == 1 && out.consistent() && info.lost == 0,
        "got record {} (consistent={}, lost={})",
        out.counter,
        out.consistent(),
        info.lost
    );
    Ok(msg!(
        "record {} arrived from the interrupt while blocked",
        out.counter
    ))
}

/// Nothing committed: a blocking read with the SysTick `Delay` times out; a staged
/// record that is not finalized does not end the wait; once finalized it is returned.
#[inline(never)]
pub fn timeout(syst: SYST) -> (SYST, Result<Msg, Msg>) {
    let mut delay = Delay::new(syst, CORE_HZ);
    let res = timeout_with(&mut delay);
    (delay.free(), res)
}

fn timeout_with(delay: &mut Delay) -> Result<Msg, Msg> {
    let mut w =
        Writer::<Probe>::create(region(), Mode::Fifo { slots: SLOTS }).map_err(|e| msg!("{e}"))?;
    let mut r = Reader::<Probe>::open(region()).map_err(|e| msg!("{e}"))?;
    let mut buf = [0u8; <Probe as flexshm_core::Record>::SNAPSHOT_LEN];
    let mut out = Probe::default();
    let opts = ReadOptions::default();
    let res = r
        .read_blocking(&mut buf, opts, delay, 2_000, DEFAULT_POLL_US)
        .and_then(|s| s.decode(&mut out));
    ensure!(
        res == Err(Error::Timeout { no_record: true }),
        "empty FIFO: expected Timeout {{ no_record: true }}, got {res:?}"
    );
    w.write(&Probe::make(1)).map_err(|e| msg!("{e}"))?;
    let res = r
        .read_blocking(&mut buf, opts, delay, 2_000, DEFAULT_POLL_US)
        .and_then(|s| s.decode(&mut out));
    ensure!(
        res == Err(Error::Timeout { no_record: true }),
        "staged, unfinalized record: expected Timeout, got {res:?}"
    );
    w.finalize();
    let info = r
        .read_blocking(&mut buf, opts, delay, 2_000, DEFAULT_POLL_US)
        .and_then(|s| s.decode(&mut out))
        .map_err(|e| msg!("after finalize: {e}"))?;
    ensure!(
        out.counter == 1 && out.consistent() && info.lost == 0,
        "after finalize got record {} (consistent={})",
        out.counter,
        out.consistent()
    );
    Ok(msg!("Timeout {{ no_record: true }} twice, then record 1"))
}
