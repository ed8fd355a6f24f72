//! What the main loop and the SysTick interrupt share: the region, the object the
//! interrupt works with, and a few counters.
//!
//! Sharing rules:
//! - The region's bytes are only ever touched through flexshm's 32-bit atomics, from
//!   both contexts (`Region` is `Copy + Sync`). Nothing here locks around them: the
//!   point of the tests is that the interrupt preempts a copy or a write half-way.
//! - The writer or reader object the interrupt uses lives in [`ISR`], a
//!   `critical_section::Mutex<RefCell<_>>`. The main loop only touches it (through
//!   [`with_isr`]) to hand an object over or take it back, and to peek at the
//!   interrupt's statistics; it never holds it while the interrupt is expected to run.
//! - Counters the interrupt publishes are atomics with a single writer (the interrupt),
//!   so plain load + store suffices; thumbv6m has no read-modify-write atomics.

use core::cell::RefCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;
use critical_section::Mutex;
use flexshm_core::{AlignedBuf, ReadOptions, Reader, Region, Writer};

use crate::probe::{Probe, Stats};

/// Bytes of the static region the tests use (the whole `SHARED` memory of memory/*.x).
pub const REGION_LEN: usize = 4096;

/// The region's memory, in the `.shared` linker section (a NOLOAD section in its own
/// memory bank, as a dual-port RAM would be): startup code does not zero it, so it is
/// `MaybeUninit` until [`init_region`] runs. Only reached through the functions below.
#[link_section = ".shared"]
static mut REGION_MEM: MaybeUninit<AlignedBuf<REGION_LEN>> = MaybeUninit::uninit();

fn region_ptr() -> *mut u8 {
    (&raw mut REGION_MEM).cast::<u8>()
}

/// Zeroes the region. Call once, first thing in main.
pub fn init_region() {
    // SAFETY: REGION_MEM is a 'static buffer of REGION_LEN bytes; writing through a raw
    // pointer creates no reference to the uninitialised bytes, and nothing else runs yet
    // (no interrupt is enabled, no Region handle exists).
    unsafe { core::ptr::write_bytes(region_ptr(), 0, REGION_LEN) };
}

/// A flexshm handle on the whole static region.
pub fn region() -> Region<'static> {
    region_of(REGION_LEN)
}

/// A flexshm handle on the first `len` bytes of the static region (at most
/// [`REGION_LEN`]).
pub fn region_of(len: usize) -> Region<'static> {
    let len = len.min(REGION_LEN);
    // SAFETY:
    // - REGION_MEM is a static: valid for reads and writes of REGION_LEN >= len bytes
    //   for 'static, 64-aligned by AlignedBuf, and initialised by `init_region` before
    //   any test runs.
    // - Every other access to it is either flexshm's own 32-bit atomics (through any
    //   number of Region copies, in main or in the interrupt) or `with_plain_bytes`,
    //   which runs only while no flexshm handle is in use (see there).
    unsafe { Region::from_raw_parts(region_ptr(), len) }.expect("a static AlignedBuf is aligned")
}

/// Runs `f` on the region's bytes as a plain slice.
///
/// # Safety
///
/// No flexshm handle (Writer, Reader, Region) may be used during `f`, from main or the
/// interrupt: the caller must have stopped the timer and hold no handle it uses inside
/// `f`. Plain accesses racing with flexshm's atomics would be a data race.
pub unsafe fn with_plain_bytes<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    // SAFETY: the bytes were initialised by `init_region`, and by this function's
    // contract nothing else accesses REGION_MEM while `f` runs, so the exclusive
    // reference is unique for its lifetime.
    let bytes = unsafe { core::slice::from_raw_parts_mut(region_ptr(), REGION_LEN) };
    f(bytes)
}

/// What the SysTick interrupt does on each tick.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Nothing.
    Idle,
    /// Single-slot writer: commit record `n + 1`.
    SingleWriter,
    /// FIFO writer: stage and finalize record `n + 1`.
    FifoWriter,
    /// FIFO writer that commits record 1 on tick `at` and nothing else.
    OneShot {
        /// The tick (counted from the job's start) that commits.
        at: u32,
    },
    /// Single-slot reader: one snapshot per tick.
    SingleReader,
    /// FIFO reader: up to [`FIFO_READS_PER_TICK`] records per tick.
    FifoReader,
}

/// A reader with its snapshot buffer, decoded record and observations.
pub struct ReaderState {
    /// The reader (None while it belongs to nobody).
    pub r: Option<Reader<'static, Probe>>,
    /// Snapshot buffer.
    pub buf: [u8; <Probe as flexshm_core::Record>::SNAPSHOT_LEN],
    /// Decoded record.
    pub out: Probe,
    /// Observations.
    pub stats: Stats,
}

impl ReaderState {
    /// No reader yet.
    pub const fn new() -> Self {
        ReaderState {
            r: None,
            buf: [0; <Probe as flexshm_core::Record>::SNAPSHOT_LEN],
            out: Probe::EMPTY,
            stats: Stats::new(),
        }
    }

    /// One non-blocking read into `out`; `None` if there is no reader.
    pub fn read(&mut self) -> Option<Result<flexshm_core::ReadInfo, flexshm_core::Error>> {
        let r = self.r.as_mut()?;
        Some(
            r.try_read(&mut self.buf, ReadOptions::default())
                .and_then(|s| s.decode(&mut self.out)),
        )
    }

    /// A single-slot read, accounted in `stats`.
    pub fn read_single(&mut self) {
        if let Some(res) = self.read() {
            self.stats.single(res, &self.out);
        }
    }

    /// A FIFO read, accounted in `stats`; false if there was no record.
    pub fn read_fifo(&mut self) -> bool {
        match self.read() {
            Some(res) => self.stats.fifo(res, &self.out),
            None => false,
        }
    }
}

/// Everything the interrupt works with. It lives in a static and is changed in place,
/// so no writer, reader or buffer is ever moved through a stack frame (the nRF51 has
/// 16 KiB of RAM in all).
pub struct IsrState {
    /// What to do on a tick.
    pub job: Job,
    /// The writer for the writer jobs.
    pub writer: Option<Writer<'static, Probe>>,
    /// Writer jobs: records committed so far. OneShot: ticks so far.
    pub n: u32,
    /// The reader for the reader jobs.
    pub reader: ReaderState,
}

/// The interrupt's state; see the module docs for who touches it when.
pub static ISR: Mutex<RefCell<IsrState>> = Mutex::new(RefCell::new(IsrState {
    job: Job::Idle,
    writer: None,
    n: 0,
    reader: ReaderState::new(),
}));

/// Records a FIFO reader in the interrupt takes per tick at most.
pub const FIFO_READS_PER_TICK: u32 = 4;

/// Runs `f` on the interrupt's state with interrupts masked: to hand objects over
/// before starting the timer, take them back after stopping it, or peek briefly.
pub fn with_isr<R>(f: impl FnOnce(&mut IsrState) -> R) -> R {
    critical_section::with(|cs| f(&mut ISR.borrow_ref_mut(cs)))
}

/// SysTick interrupts taken since reset (written by the interrupt only).
pub static TICKS: AtomicU32 = AtomicU32::new(0);
/// Records the interrupt's writer has committed in the current test (interrupt only).
pub static COMMITTED: AtomicU32 = AtomicU32::new(0);
/// Set by main around each read or write it does; the interrupt counts the ticks that
/// land inside one in [`PREEMPTED`].
pub static IN_OP: AtomicBool = AtomicBool::new(false);
/// Ticks that preempted main in the middle of a read or write (interrupt only).
pub static PREEMPTED: AtomicU32 = AtomicU32::new(0);

/// Resets the per-test counters. Call with the timer stopped.
pub fn reset_counters() {
    COMMITTED.store(0, Ordering::Relaxed);
    PREEMPTED.store(0, Ordering::Relaxed);
    IN_OP.store(false, Ordering::Relaxed);
}

/// Starts the SysTick interrupt every `reload + 1` core cycles.
pub fn start_timer(syst: &mut SYST, reload: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(reload);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Stops the SysTick interrupt. When this returns no further tick handler runs.
pub fn stop_timer(syst: &mut SYST) {
    syst.disable_interrupt();
    syst.disable_counter();
    // A tick that became pending just before is dropped, not run later.
    cortex_m::peripheral::SCB::clear_pendst();
}

#[exception]
fn SysTick() {
    // Single writer (this handler) for TICKS, COMMITTED and PREEMPTED.
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
    if IN_OP.load(Ordering::Relaxed) {
        PREEMPTED.store(PREEMPTED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    with_isr(|s| match s.job {
        Job::Idle => {}
        Job::SingleWriter | Job::FifoWriter => {
            let Some(w) = s.writer.as_mut() else { return };
            s.n += 1;
            if w.write(&Probe::make(s.n)).is_ok() {
                if s.job == Job::FifoWriter {
                    w.finalize();
                }
                COMMITTED.store(s.n, Ordering::Relaxed);
            }
        }
        Job::OneShot { at } => {
            let Some(w) = s.writer.as_mut() else { return };
            s.n += 1;
            if s.n == at && w.write(&Probe::make(1)).is_ok() {
                w.finalize();
                COMMITTED.store(1, Ordering::Relaxed);
            }
        }
        Job::SingleReader => s.reader.read_single(),
        Job::FifoReader => {
            for _ in 0..FIFO_READS_PER_TICK {
                if !s.reader.read_fifo() {
                    break;
                }
            }
        }
    });
}
