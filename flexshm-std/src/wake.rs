//! Waiting for a record without burning a core, while readers never store into the
//! segment: a short adaptive spin, then a futex wait on a word only the writer changes.
//! docs/PROTOCOL.md §18.6 is the normative description of the words and the steps.
//!
//! Words (frontend area, see [`crate::claim`]): `wake_gen` (u32 at 72) is the futex word;
//! `last_wake` (u64 at 80) is the writer's `CLOCK_MONOTONIC` time of its last wake-up, in
//! nanoseconds.
//!
//! ```text
//! writer, after each commit (W7)             reader, before it sleeps
//! fence(SeqCst)                              g = load(wake_gen)        Acquire
//! now = clock                                L = load(last_wake)
//! if now - last >= GAP:                      t = clock
//!     last = now; store(last_wake, now)      fence(SeqCst)
//!     store(wake_gen, gen + 1)  Release      if a record is ready: done
//!     FUTEX_WAKE(wake_gen, all)              until = deadline, or L + GAP + MARGIN if
//!                                                    t < L + GAP + MARGIN
//!                                            FUTEX_WAIT(wake_gen, g, until)
//! ```
//!
//! A reader cannot tell the writer that it sleeps (it has no write access), so the
//! writer cannot make a wake-up system call only "when someone waits". It makes one
//! after a commit unless it made one less than `GAP` (50 µs) before: at most 20 000 a
//! second, whatever the commit rate, and one per commit for commits further apart.
//!
//! Why no record is missed for longer than `GAP + MARGIN`: let the writer skip the wake
//! for commit `c`, so its last wake (time `L_w`) was less than `GAP` before its clock
//! read `now_c`, which follows its store of `head = c`. Take a reader asleep on
//! `wake_gen == g` that has not seen `c`. No wake happened between its load of `g` and
//! the moment it went to sleep (the kernel compares `wake_gen` with `g` when it queues
//! the reader, and every wake changes `wake_gen` first), and later wakes would wake it;
//! so the `last_wake` it loaded after `g` is `L_w` (`last_wake` is stored before
//! `wake_gen`, and the Acquire load of `g` pairs with that Release store). Its clock read
//! `t` precedes its check for a record, which did not see `c`, so `t` precedes the
//! writer's `now_c` (up to the few nanoseconds an out-of-order CPU may move a clock read,
//! which `MARGIN` covers): `t < now_c < L_w + GAP`. So the reader bounded its sleep by
//! `L_w + GAP + MARGIN`, wakes by then (plus the kernel's timer slack, 50 µs by default)
//! and finds `c`. When the writer did wake for `c`,
//! the futex does its usual work: the reader either sees `wake_gen` changed and does not
//! sleep, or is queued and woken.
//!
//! The writer's cost per commit is a fence, a clock read (vDSO) and a compare; the
//! system call only when a wake is due. A reader killed while waiting leaves nothing
//! behind. Waiting readers and the writer must see the same `CLOCK_MONOTONIC` (one
//! machine, one time namespace), as they must share a PID namespace for the claim.
//!
//! The futex is a shared one (no `FUTEX_PRIVATE_FLAG`): waiters and the writer are in
//! different processes, and the kernel keys the futex by the file page, the same through
//! a reader's read-only mapping and the writer's read-write one.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::futex;

use crate::segment::Segment;

/// Offset of the futex word, changed by every wake.
pub(crate) const WAKE_GEN: usize = 72;
/// Offset of the writer's `CLOCK_MONOTONIC` time of its last wake, in nanoseconds.
pub(crate) const LAST_WAKE: usize = 80;

/// Least time between two wake-up system calls of a writer.
pub(crate) const GAP: Duration = Duration::from_micros(50);
/// Added to a reader's sleep bound: clock reads moved by the CPU, clocks of two cores.
const MARGIN: Duration = Duration::from_micros(10);

/// Shortest and longest spin before sleeping, and where a reader starts.
const SPIN_MIN: Duration = Duration::from_micros(1);
const SPIN_MAX: Duration = Duration::from_micros(50);
const SPIN_START: Duration = Duration::from_micros(10);

/// `CLOCK_MONOTONIC` in nanoseconds.
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Writer side: wakes sleeping readers after commits, at most once per [`GAP`].
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    /// This writer's last wake, `CLOCK_MONOTONIC` ns (0: none yet).
    last: u64,
}

impl Notifier {
    /// Call after every commit's Release store of `head`, and once after attaching (which
    /// may have published a record, docs/PROTOCOL.md §12.3).
    pub(crate) fn committed(&mut self, seg: &Segment) {
        // Orders the store of head before the clock read below (module docs).
        fence(Ordering::SeqCst);
        let now = monotonic_ns();
        if self.last != 0 && now.wrapping_sub(self.last) < GAP.as_nanos() as u64 {
            return;
        }
        self.last = now;
        seg.word64(LAST_WAKE).store(now.to_le(), Ordering::Relaxed);
        let word = seg.word(WAKE_GEN);
        // Only the writer stores wake_gen: a load and a store, no read-modify-write.
        let next = u32::from_le(word.load(Ordering::Relaxed)).wrapping_add(1);
        // Release: pairs with the Acquire load of wake_gen in `Waiter::wait`, which then
        // sees this wake's `last_wake`.
        word.store(next.to_le(), Ordering::Release);
        // A failure (EFAULT cannot happen on a mapped word) leaves readers to their
        // timeouts.
        let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
    }
}

/// Reader side: the adaptive spin budget of one reader handle.
#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    spin: Duration,
}

impl Default for Waiter {
    fn default() -> Self {
        Waiter { spin: SPIN_START }
    }
}

impl Waiter {
    /// Waits until `ready()` is true or `deadline` passes; returns the last `ready()`.
    /// Spins briefly first (longer when records recently arrived during the spin, shorter
    /// when they did not), then sleeps on the futex. Every wake-up, whatever woke it,
    /// checks `ready()` and the deadline again. `poll` bounds each sleep, for callers
    /// that check something else now and then (signals, a replaced segment).
    pub(crate) fn wait(
        &mut self,
        seg: &Segment,
        deadline: Instant,
        poll: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        let start = Instant::now();
        let spin_end = (start + self.spin).min(deadline);
        loop {
            for _ in 0..64 {
                if ready() {
                    self.spin = (self.spin * 2).min(SPIN_MAX);
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= spin_end {
                break;
            }
        }
        self.spin = (self.spin / 2).max(SPIN_MIN);
        let gen = seg.word(WAKE_GEN);
        let end = deadline.min(start + poll);
        loop {
            let now = Instant::now();
            if now >= end {
                return ready();
            }
            // Pairs with the Release store of wake_gen in `Notifier::committed`.
            let g = gen.load(Ordering::Acquire);
            let last = u64::from_le(seg.word64(LAST_WAKE).load(Ordering::Relaxed));
            let t = monotonic_ns();
            fence(Ordering::SeqCst);
            if ready() {
                return true;
            }
            let mut until = end;
            let bound = last.saturating_add((GAP + MARGIN).as_nanos() as u64);
            if t < bound {
                // The writer woke readers less than GAP ago and may skip the next wake.
                until = until.min(now + Duration::from_nanos(bound - t));
            }
            let left = until.saturating_duration_since(Instant::now());
            let ts = futex::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            // Returns on a wake-up, a changed wake_gen (EAGAIN), a signal (EINTR) or the
            // timeout; every case re-checks above.
            let _ = futex::wait(gen, futex::Flags::empty(), g, Some(&ts));
            if ready() {
                return true;
            }
        }
    }
}
