//! The writer claim: which process is a segment's one writer, and is it still alive.
//!
//! # The std frontend's words in the header (bytes 64..128)
//!
//! The core reserves header bytes 64..128 for a frontend: it zeroes them when it creates
//! a segment and never touches them again. flexshm-std keeps these words there, all
//! little-endian, all accessed only with atomics (docs/PROTOCOL.md §18 is normative):
//!
//! ```text
//! offset  size  word          who stores                 meaning
//! 64      8     claim         writers, compare-and-swap  0: no writer; else bits 0..32 =
//!                                                        process id, bits 32..64 = low 32
//!                                                        bits of the process start time
//!                                                        (clock ticks since boot, field 22
//!                                                        of /proc/<pid>/stat; 0 if unknown)
//! 72      4     wake_gen      the writer                 futex word: changed by every wake
//! 76      4     reserved      -                          0
//! 80      8     last_wake     the writer                 CLOCK_MONOTONIC ns of the last wake
//! 88      8     segment_id    the creator                random, non-zero: names this
//!                                                        segment (kept on takeover)
//! 96..128       reserved      -                          0
//! ```
//!
//! Readers never store into the segment (they map it read-only); only the writer stores
//! the claim, `wake_gen` and `last_wake` (see [`crate::wake`]).
//!
//! The claim is one 64-bit word so that a single compare-and-swap takes it: a process id
//! together with its start time names a process uniquely even after the id is reused.
//! These words are std-only: an MCU peer (no compare-and-swap) must not rely on them.
//!
//! Processes in different PID namespaces (containers) sharing `/dev/shm` see each
//! other's ids as meaningless: run a segment's writer and readers in one namespace.
//!
//! # Taking over from a dead writer
//!
//! A new writer takes the claim only when its holder has exited: no `/proc/<pid>` entry
//! (or a different start time: the id was reused), or a zombie whose threads are all
//! gone. By then the kernel has torn down the dead process's address space, so every
//! store it made to the segment happened before the exit that `/proc` reports, and the
//! new writer's `/proc` read (a system call) comes after it: the happens-before that
//! `Writer::attach` requires (docs/PROTOCOL.md §12.3).
//!
//! # Fork
//!
//! A child forked from the writer inherits its mapping but not its role: the claim names
//! the parent. [`fork_generation`] changes in every child (a `pthread_atfork` handler), so
//! a writer handle compares it on each write and refuses in a child.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::segment::Segment;

/// Offset of the 64-bit claim word.
pub(crate) const CLAIM: usize = 64;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    // Only an atomic increment: async-signal-safe, as a fork handler must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// A number that differs in every process forked from this one (after the first call).
/// A writer handle records it when it is made and refuses to write when it changes.
pub(crate) fn fork_generation() -> u64 {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `after_fork_in_child` is an `extern "C" fn()` that stays valid for the
        // life of the process and only does an atomic increment.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        // ENOMEM is the only documented failure; fork detection is then unavailable,
        // and the claim's process id check in `release` still protects the parent.
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Offset of the 64-bit random id of the segment, stored by its creator.
pub(crate) const SEGMENT_ID: usize = 88;

/// A random non-zero id for a new segment.
pub(crate) fn new_segment_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the operating system's random source.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::wake::monotonic_ns());
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// The segment's id (0 for a segment made by a creator that did not store one).
pub(crate) fn segment_id(seg: &Segment) -> u64 {
    // Stored before the segment got its name (§18.3), and never changed.
    u64::from_le(seg.word64(SEGMENT_ID).load(Ordering::Relaxed))
}

/// True if process `pid` exists (any state). For temporaries of dead creators.
pub(crate) fn pid_alive(pid: u32) -> bool {
    Claimant { pid, start: 0 }.is_alive()
}

/// A process identity as stored in the claim word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimant {
    pub pid: u32,
    /// Low 32 bits of the start time in clock ticks; 0 if it could not be read.
    pub start: u32,
}

impl Claimant {
    fn pack(self) -> u64 {
        (self.start as u64) << 32 | self.pid as u64
    }

    fn unpack(w: u64) -> Option<Claimant> {
        if w == 0 {
            None
        } else {
            Some(Claimant {
                pid: w as u32,
                start: (w >> 32) as u32,
            })
        }
    }

    /// This process.
    pub(crate) fn current() -> Claimant {
        let pid = std::process::id();
        let start = proc_stat(pid).map(|s| s.start as u32).unwrap_or(0);
        Claimant { pid, start }
    }

    /// True if this process is still running (and is the same process that claimed,
    /// not a later one that got the same id).
    pub(crate) fn is_alive(self) -> bool {
        if self.pid == 0 || self.pid > i32::MAX as u32 {
            // Not a process id (a corrupt claim word): nobody holds the role.
            return false;
        }
        match proc_stat(self.pid) {
            Some(s) => !s.zombie && (self.start == 0 || s.start as u32 == self.start),
            // No /proc entry to read: either the process is gone, or /proc hides other
            // users' processes (mounted with hidepid) or is not mounted. Ask the kernel
            // whether the id exists; a hidden live writer must not be taken over (its
            // start time cannot be checked, so a reused id counts as alive).
            None => match rustix::process::Pid::from_raw(self.pid as i32) {
                Some(p) => !matches!(
                    rustix::process::test_kill_process(p),
                    Err(rustix::io::Errno::SRCH)
                ),
                None => false,
            },
        }
    }
}

struct ProcStat {
    start: u64,
    zombie: bool,
}

/// Reads the state and start time of process `pid` from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    if pid == 0 || pid > i32::MAX as u32 {
        return None;
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after
    // the last ')'. Fields after it start with field 3 (state); num_threads is field
    // 20, starttime field 22.
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_ascii_whitespace();
    let state = it.next()?;
    let threads: u64 = it.nth(20 - 4)?.parse().ok()?;
    let start = it.nth(22 - 21)?.parse().ok()?;
    Some(ProcStat {
        start,
        // A main thread that ended with pthread_exit shows "Z" while the process's other
        // threads still run (and may write): dead only when no other thread is left.
        zombie: (state == "Z" || state == "X") && threads <= 1,
    })
}

/// The process that claims the segment's writer role, if any.
pub(crate) fn claimant(seg: &Segment) -> Option<Claimant> {
    // Pairs with the AcqRel compare-and-swap in `take` and the Release store in
    // `release`: we see the latest claim or release.
    Claimant::unpack(u64::from_le(seg.word64(CLAIM).load(Ordering::Acquire)))
}

/// Whether the segment's writer is alive: `None` if no writer claims it.
pub(crate) fn writer_alive(seg: &Segment) -> Option<bool> {
    claimant(seg).map(Claimant::is_alive)
}

/// Claims the writer role for this process: succeeds if no writer holds it or its
/// holder is dead; `WriterAlive` if a running process holds it.
pub(crate) fn take(seg: &Segment) -> Result<Claimant, Error> {
    let me = Claimant::current();
    let word = seg.word64(CLAIM);
    let mut seen = word.load(Ordering::Acquire);
    loop {
        if let Some(holder) = Claimant::unpack(u64::from_le(seen)) {
            if holder.is_alive() {
                return Err(Error::WriterAlive { pid: holder.pid });
            }
        }
        // Acquire pairs with the Release of the previous holder's `release` (or its own
        // claim), so everything it published is visible before we attach; Release
        // publishes our claim to the next claimant.
        match word.compare_exchange(seen, me.pack().to_le(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(me),
            // Someone claimed (or released) in between: judge the new holder.
            Err(now) => seen = now,
        }
    }
}

/// Gives up the writer role if `me` still holds it and `me` is this process. A child
/// forked from the writer drops a copy of the writer's handle, but the claim is the
/// parent's: releasing it there would let a second writer in while the parent runs.
pub(crate) fn release(seg: &Segment, me: Claimant) {
    if me.pid != std::process::id() {
        return;
    }
    // Release pairs with the Acquire of the next claimant's compare-and-swap in `take`:
    // our last commit happens-before its attach.
    let _ = seg.word64(CLAIM).compare_exchange(
        me.pack().to_le(),
        0,
        Ordering::Release,
        Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_id_is_not() {
        let me = Claimant::current();
        assert_eq!(me.pid, std::process::id());
        assert_ne!(me.start, 0, "/proc/self/stat gives a start time");
        assert!(me.is_alive());
        let other_start = Claimant {
            start: me.start.wrapping_add(1),
            ..me
        };
        assert!(!other_start.is_alive());
        assert_eq!(Claimant::unpack(me.pack()), Some(me));
    }

    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let c = Claimant {
            pid: child.id(),
            start: proc_stat(child.id()).map(|s| s.start as u32).unwrap_or(0),
        };
        child.wait().unwrap();
        assert!(!c.is_alive());
    }
}
