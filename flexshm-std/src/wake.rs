//! Waiting for a record without burning a core: a short adaptive spin, then a futex.
//!
//! Words (see the table in [`crate::claim`]): `wake_seq` at header byte 72 is the futex
//! word, `waiters` at byte 76 counts readers that are about to sleep or asleep on it.
//!
//! ```text
//! reader (wait)                              writer (notify, after publishing head)
//! waiters += 1            (SeqCst)           fence(SeqCst)
//! s = wake_seq            (Acquire)          if waiters != 0:
//! fence(SeqCst)                                  wake_seq += 1   (Release)
//! if a record is ready: done                     FUTEX_WAKE(wake_seq, all)
//! FUTEX_WAIT(wake_seq, s, remaining)
//! waiters -= 1
//! ```
//!
//! The two SeqCst fences make this a Dekker handshake: either the reader's check after
//! its fence sees the writer's new head, or the writer's load after its fence sees the
//! reader's `waiters` increment and wakes it. A wake-up that lands between the reader's
//! load of `s` and its FUTEX_WAIT changes `wake_seq`, so the kernel refuses to sleep.
//! The writer pays one fence and one load per commit, and a system call only when
//! someone waits. A reader killed while waiting leaves `waiters` too high, which costs
//! the writer needless FUTEX_WAKE calls, never a missed wake-up.
//!
//! The futex is a shared one (no `FUTEX_PRIVATE_FLAG`): waiters and the writer are in
//! different processes and the kernel keys the futex by the shared page.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::futex;

use crate::segment::Segment;

/// Offset of the futex word bumped by commits that have waiters.
pub(crate) const WAKE_SEQ: usize = 72;
/// Offset of the count of waiting readers.
pub(crate) const WAITERS: usize = 76;

/// Shortest and longest spin before sleeping, and where a reader starts.
const SPIN_MIN: Duration = Duration::from_micros(1);
const SPIN_MAX: Duration = Duration::from_micros(50);
const SPIN_START: Duration = Duration::from_micros(10);

/// Writer side: wakes every waiting reader, if there is one. Call after the commit's
/// Release store of head.
pub(crate) fn notify(seg: &Segment) {
    // Pairs with the SeqCst fence in `Waiter::wait` (Dekker handshake, module docs).
    fence(Ordering::SeqCst);
    if seg.word(WAITERS).load(Ordering::Relaxed) != 0 {
        let seq = seg.word(WAKE_SEQ);
        // Release pairs with the Acquire load of wake_seq in `Waiter::wait`.
        seq.fetch_add(1, Ordering::Release);
        // A failure (EFAULT cannot happen on a mapped word) leaves readers to time out.
        let _ = futex::wake(seq, futex::Flags::empty(), i32::MAX as u32);
    }
}

/// Readers waiting on the segment now (a snapshot).
pub(crate) fn waiters(seg: &Segment) -> u32 {
    seg.word(WAITERS).load(Ordering::Relaxed)
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
    /// when they did not), then sleeps on the futex.
    pub(crate) fn wait(
        &mut self,
        seg: &Segment,
        deadline: Instant,
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
        let waiters = seg.word(WAITERS);
        let seq = seg.word(WAKE_SEQ);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return ready();
            }
            waiters.fetch_add(1, Ordering::SeqCst);
            // Pairs with the Release fetch_add in `notify`.
            let s = seq.load(Ordering::Acquire);
            // Pairs with the SeqCst fence in `notify` (Dekker handshake, module docs).
            fence(Ordering::SeqCst);
            if ready() {
                waiters.fetch_sub(1, Ordering::Relaxed);
                return true;
            }
            let left = deadline - now;
            let ts = futex::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            };
            // Returns on a wake-up, a changed wake_seq (EAGAIN), a signal (EINTR) or the
            // timeout; every case re-checks below.
            let _ = futex::wait(seq, futex::Flags::empty(), s, Some(&ts));
            waiters.fetch_sub(1, Ordering::Relaxed);
            if ready() {
                return true;
            }
        }
    }
}
