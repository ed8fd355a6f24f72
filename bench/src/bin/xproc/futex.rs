//! The baseline of the wake-up figures: a counter and a timestamp in shared memory and a
//! shared (inter-process) futex on the counter, with nothing else around it.

use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use flexshm_bench::{mono_ns, ShmFile};

use crate::Res;

/// FUTEX_WAKE of every waiter on `word` (a shared futex: no FUTEX_PRIVATE_FLAG).
pub fn wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, mapped, aligned u32; the kernel only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            0,
            0,
            0,
        );
    }
}

/// FUTEX_WAIT while `word` holds `expected`, up to `timeout` (`None`: no limit). Returns
/// on a wake-up, a changed word, a signal or the timeout.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT on a valid, mapped, aligned u32 with a valid (or null) timeout;
    // it returns at once if the word is no longer `expected`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            0,
            0,
        );
    }
}

/// A counter (the futex word) and the poster's timestamp, on two cache lines of a file
/// both processes map; and a second counter with its own timestamp, posted without a
/// wake-up (for the timeout baseline).
pub struct RawFutex {
    _file: ShmFile,
    base: *mut u8,
}

impl RawFutex {
    /// The parent creates the file (`create`), the child maps it.
    pub fn new(tag: &str, create: bool) -> Res<RawFutex> {
        let name = format!("flexshm-bench-{tag}-futex");
        let file = if create {
            ShmFile::create(&name, 4096)?
        } else {
            ShmFile::open(&name)?
        };
        let base = file.ptr();
        Ok(RawFutex { _file: file, base })
    }

    /// The futex word.
    pub fn word(&self) -> &AtomicU32 {
        // SAFETY: first word of the page-aligned mapping, atomics only.
        unsafe { &*(self.base as *const AtomicU32) }
    }

    fn stamp(&self) -> &AtomicU64 {
        self.line(1)
    }

    fn line(&self, i: usize) -> &AtomicU64 {
        assert!(i < 64);
        // SAFETY: line i of the 4096-byte page-aligned mapping, atomics only.
        unsafe { &*(self.base.add(64 * i) as *const AtomicU64) }
    }

    /// The counter and the stamp of its last post.
    pub fn current(&self) -> (u32, u64) {
        // Pairs with the Release fetch_add in `post`.
        let v = self.word().load(Ordering::Acquire);
        (v, self.stamp().load(Ordering::Relaxed))
    }

    /// The second counter.
    pub fn silent_count(&self) -> u64 {
        // Pairs with the Release store in `post_silent`.
        self.line(2).load(Ordering::Acquire)
    }

    /// Stores the time and bumps the second counter, without a wake-up.
    pub fn post_silent(&self) {
        self.line(3).store(mono_ns(), Ordering::Relaxed);
        let n = self.line(2).load(Ordering::Relaxed);
        // Pairs with the Acquire load in `silent_count`.
        self.line(2).store(n + 1, Ordering::Release);
    }

    /// Waits until the second counter moves past `count`, sleeping on the futex word
    /// (which holds `word`) until `until_ns` (CLOCK_MONOTONIC), then spinning; returns
    /// the stamp of that post.
    pub fn wait_silent(&self, word: u32, count: u64, until_ns: u64) -> u64 {
        loop {
            if self.silent_count() != count {
                return self.line(3).load(Ordering::Relaxed);
            }
            let now = mono_ns();
            if now < until_ns {
                wait(
                    self.word(),
                    word,
                    Some(Duration::from_nanos(until_ns - now)),
                );
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Stores the time, bumps the counter and wakes the waiters.
    pub fn post(&self) {
        self.stamp().store(mono_ns(), Ordering::Relaxed);
        // Pairs with the Acquire load in `wait`.
        self.word().fetch_add(1, Ordering::Release);
        wake_all(self.word());
    }

    /// Sleeps until the counter moves past `last`; returns (new value, stamp).
    pub fn wait(&self, last: u32) -> (u32, u64) {
        loop {
            // Pairs with the Release fetch_add in `post`.
            let v = self.word().load(Ordering::Acquire);
            if v != last {
                return (v, self.stamp().load(Ordering::Relaxed));
            }
            wait(self.word(), last, None);
        }
    }
}
