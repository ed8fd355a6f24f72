//! The part of a handle that threads share: the writer, the handle's own reader, spare
//! readers of the same mapping, and waiting for a record without holding any of the
//! handle's locks while asleep.
//!
//! Locks, and what each is held for:
//!
//! - `main`, the handle's reader (its FIFO position and its `reset_modified` tracking):
//!   held by FIFO reads and `reset_modified` reads, for one copy, never while asleep.
//!   FIFO readers of one handle share one position, so they take turns here; each record
//!   goes to one of them.
//! - `spares`: idle readers of the same mapping, each with a position of its own; held
//!   only to take or return one. A single-slot read without `reset_modified` copies
//!   through a spare, so threads reading one single-slot handle copy in parallel.
//! - `probe`: a reader used for look-ups that change nothing (the newest commit number,
//!   the writer's status) and to make spares; only `close()` locks it for writing.
//!
//! What "new" means for a handle (`has_new`): FIFO, the handle's reader has an unread
//! record; single-slot, the newest commit is not the one this handle returned last
//! (`last`, shared by all reads of the handle, whichever reader made them).
//!
//! Sleeping ([`Shared::sleep_until_new`]): a waiter takes a spare, notes the newest
//! commit number, looks at the handle once more, and only then sleeps in the kernel
//! through the spare until the commit number changes (`Reader::wait_head_change`). A
//! commit before the note is seen by that last look; a commit after it changes the
//! number and wakes the spare. So no commit is slept through, and nothing of the handle
//! is locked while asleep: a thread blocked in `wait()` never delays another thread's
//! `read()` on the same handle.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, TryLockError};

use crate::spare::{Attached, Spare};
use std::time::Duration;

use flexshm_std::{Dynamic, Error, Mode, ReadInfo, ReadOptions, Reader, Writer, WriterStatus};
use pyo3::prelude::*;

use crate::asyncwait::AsyncWaits;

/// Records larger than this are copied with the GIL released.
pub const RELEASE_GIL_BYTES: usize = 64 * 1024;

/// Locks `m`; if another thread holds it, waits with the GIL released (that thread may
/// need the GIL to finish), then retries.
pub fn lock<'a, T: Send>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    loop {
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => py.detach(|| {
                drop(m.lock());
            }),
        }
    }
}

/// Locks `m` from a thread that does not hold the GIL.
fn lock_detached<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why an operation of a handle could not be done.
#[derive(Debug)]
pub enum Failure {
    /// The handle was closed.
    Closed,
    /// An error of the segment (replaced, corrupt, ...).
    Shm(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Shm(e)
    }
}

/// What a FIFO read that does not wait found.
pub enum ReadNow {
    /// A record, copied into the caller's buffer.
    Got(ReadInfo),
    /// Nothing unread.
    Nothing,
    /// A record is there, but the writer overtook every copy attempt.
    Contended,
}

/// The shared state of a `SharedMemory` handle (see the module docs).
pub struct Shared {
    /// The segment name.
    pub name: String,
    /// Single-slot or FIFO.
    pub mode: Mode,
    closed: AtomicBool,
    /// The writer, for the handle that created the segment.
    pub writer: Mutex<Option<Writer<Dynamic>>>,
    main: Mutex<Option<Reader<Dynamic>>>,
    probe: RwLock<Option<Reader<Dynamic>>>,
    /// Boxed: a reader is several KiB (its layout), too much to move on every read.
    /// One idle spare waits in `spare` (a lock-free cell: the common case of one thread
    /// reading costs no lock); more, from threads reading at the same time, in `spares`.
    spare: Spare<Reader<Dynamic>>,
    spares: Mutex<Vec<Box<Reader<Dynamic>>>>,
    /// The idle spare of reads that hold the GIL throughout (a small single-slot read):
    /// taken and given back without an atomic operation.
    attached_spare: Attached<Box<Reader<Dynamic>>>,
    /// Single-slot: commit number of the newest record this handle returned (0 before
    /// the first read, like a fresh reader).
    last: AtomicU32,
    /// `wait_async` futures of this handle and the thread that serves them.
    pub waits: AsyncWaits,
}

impl Shared {
    /// The state of a handle reading through `reader` (for the writer's handle, a reader
    /// of the writer's own mapping).
    pub fn new(
        name: String,
        writer: Option<Writer<Dynamic>>,
        reader: Reader<Dynamic>,
    ) -> Result<Shared, Error> {
        let probe = reader.another()?;
        Ok(Shared {
            name,
            mode: reader.mode(),
            closed: AtomicBool::new(false),
            writer: Mutex::new(writer),
            main: Mutex::new(Some(reader)),
            probe: RwLock::new(Some(probe)),
            spare: Spare::new(),
            spares: Mutex::new(Vec::new()),
            attached_spare: Attached::new(),
            last: AtomicU32::new(0),
            waits: AsyncWaits::default(),
        })
    }

    /// True once `close()` started.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the handle closed and drops its writer and readers (the mapping goes away
    /// when the last of them, perhaps one a sleeping waiter holds, is dropped).
    pub fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Release);
        let writer = lock(py, &self.writer).take();
        let main = lock(py, &self.main).take();
        let spares = std::mem::take(&mut *lock(py, &self.spares));
        let spare = self.spare.take();
        let attached_spare = self.attached_spare.take(py);
        let probe = self.probe.write().unwrap_or_else(|p| p.into_inner()).take();
        drop((writer, main, spares, spare, attached_spare, probe));
    }

    /// Calls `f` with the probe reader, or fails with `Closed`.
    fn with_probe<T>(&self, f: impl FnOnce(&Reader<Dynamic>) -> T) -> Result<T, Failure> {
        let probe = self.probe.read().unwrap_or_else(|p| p.into_inner());
        probe.as_ref().map(f).ok_or(Failure::Closed)
    }

    /// Who writes the segment.
    pub fn writer_status(&self) -> Option<WriterStatus> {
        self.with_probe(Reader::writer).ok()
    }

    /// Whether there is something this handle has not returned (module docs). `py`:
    /// the caller holds the GIL (then a contended lock is waited for without it).
    pub fn has_new(&self, py: Option<Python<'_>>) -> Result<bool, Failure> {
        if self.mode.is_fifo() {
            let guard = match py {
                Some(py) => lock(py, &self.main),
                None => lock_detached(&self.main),
            };
            guard.as_ref().map(Reader::has_new).ok_or(Failure::Closed)
        } else {
            let head = self.with_probe(Reader::head)?;
            Ok(head != self.last.load(Ordering::Acquire))
        }
    }

    /// Single-slot: records that this handle returned the record of commit `commit`.
    ///
    /// Threads reading one handle may finish in another order than they read: the
    /// stored number is replaced only while it is not the newest commit, so a late
    /// store of an older record never makes the newest one look unread. (Replacing a
    /// number that is not the newest keeps `has_new` true either way, which it is: the
    /// newest commit was not returned yet, or is being returned by the thread whose
    /// store comes next.)
    pub fn note_returned(&self, commit: u32) {
        if self.mode.is_fifo() || self.last.load(Ordering::Acquire) == commit {
            return;
        }
        let Ok(head) = self.with_probe(Reader::head) else {
            return;
        };
        let _ = self
            .last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                (last != head).then_some(commit)
            });
    }

    /// Takes an idle spare reader, or makes one.
    pub fn take_spare(&self) -> Result<Box<Reader<Dynamic>>, Failure> {
        if let Some(r) = self.spare.take() {
            return Ok(r);
        }
        if let Some(r) = lock_detached(&self.spares).pop() {
            return Ok(r);
        }
        Ok(Box::new(self.with_probe(Reader::another)??))
    }

    /// [`take_spare`](Self::take_spare) for a thread attached to the interpreter: the
    /// attached cell first.
    pub fn take_spare_attached(&self, py: Python<'_>) -> Result<Box<Reader<Dynamic>>, Failure> {
        match self.attached_spare.take(py) {
            Some(r) => Ok(r),
            None => self.take_spare(),
        }
    }

    /// [`put_spare`](Self::put_spare) for a thread attached to the interpreter: into the
    /// attached cell if it is empty. `close()` runs attached as well, so it cannot come
    /// between the look at the flag and the put.
    pub fn put_spare_attached(&self, py: Python<'_>, r: Box<Reader<Dynamic>>) {
        if self.is_closed() {
            return;
        }
        if let Err(r) = self.attached_spare.put(py, r) {
            self.put_spare(r);
        }
    }

    /// Gives a spare back (dropped if the handle was closed meanwhile).
    pub fn put_spare(&self, r: Box<Reader<Dynamic>>) {
        if self.is_closed() {
            return;
        }
        match self.spare.put(r) {
            Ok(()) => {
                // `close()` may have emptied the cell between the look at the flag and
                // the put: look again, and take back what it may have missed. `close()`
                // sets the flag, then empties the cell with an AcqRel swap; if that swap
                // came before our exchange, our exchange (AcqRel) read its null and so
                // sees the flag set below; if it came after, it took the reader.
                if self.is_closed() {
                    drop(self.spare.take());
                }
            }
            Err(r) => {
                // `close()` sets the flag before it empties the list, and this looks at
                // the flag under the list's lock.
                let mut spares = lock_detached(&self.spares);
                if !self.is_closed() {
                    spares.push(r);
                }
            }
        }
    }

    /// Locks the handle's own reader (FIFO position, `reset_modified` tracking).
    pub fn main<'a>(&'a self, py: Python<'_>) -> Result<MainGuard<'a>, Failure> {
        let guard = lock(py, &self.main);
        if guard.is_none() {
            return Err(Failure::Closed);
        }
        Ok(MainGuard(guard))
    }

    /// FIFO: copies the handle's next unread record (or the newest with `opts.latest`)
    /// into `buf` if there is one; never waits.
    pub fn read_fifo_now(
        &self,
        py: Python<'_>,
        buf: &mut [u8],
        opts: ReadOptions,
    ) -> Result<ReadNow, Failure> {
        let mut main = self.main(py)?;
        let r = main.reader();
        // Looked at first: a read that finds nothing would also ask whether the writer
        // is alive (a /proc look-up), which only a timeout needs.
        if !r.has_new() {
            return Ok(ReadNow::Nothing);
        }
        let res = if r.snapshot_len() > RELEASE_GIL_BYTES {
            py.detach(|| r.read_into(buf, opts, Duration::ZERO))
        } else {
            r.read_into(buf, opts, Duration::ZERO)
        };
        match res {
            Ok(info) => Ok(ReadNow::Got(info)),
            Err(Error::Timeout {
                no_record: true, ..
            }) => Ok(ReadNow::Nothing),
            Err(Error::Timeout { .. }) => Ok(ReadNow::Contended),
            Err(e) => Err(e.into()),
        }
    }

    /// Sleeps in the kernel until this handle has something new or `chunk` passes; true
    /// if it has. Call without the GIL. A false return may come early (another thread
    /// took the record that woke it): callers loop until their own deadline.
    pub fn sleep_until_new(&self, chunk: Duration) -> Result<bool, Failure> {
        if self.has_new(None)? {
            return Ok(true);
        }
        let mut spare = self.take_spare()?;
        let res = self.sleep_on(&mut spare, chunk);
        self.put_spare(spare);
        res
    }

    fn sleep_on(&self, spare: &mut Reader<Dynamic>, chunk: Duration) -> Result<bool, Failure> {
        let head = spare.head();
        // The last look before sleeping (module docs: why nothing is slept through).
        if self.has_new(None)? {
            return Ok(true);
        }
        if !spare.wait_head_change(head, chunk)? {
            return Ok(false);
        }
        self.has_new(None)
    }
}

/// The handle's own reader, locked.
pub struct MainGuard<'a>(MutexGuard<'a, Option<Reader<Dynamic>>>);

impl MainGuard<'_> {
    /// The reader (present: checked when locking).
    pub fn reader(&mut self) -> &mut Reader<Dynamic> {
        self.0.as_mut().expect("checked in Shared::main")
    }
}
