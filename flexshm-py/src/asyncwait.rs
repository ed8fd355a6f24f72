//! `wait_async()` and `async for`: awaiting a record without blocking the event loop.
//!
//! Design. Waiting for a commit means sleeping on a futex in the segment, which only a
//! thread can do; an event loop can only watch file descriptors. So each handle that
//! has `wait_async` futures pending gets one waiter thread (no more, however many
//! futures and tasks await it), which:
//!
//! - sleeps through [`Shared::sleep_until_new`] in chunks of [`CHUNK`], without the GIL
//!   and without any lock of the handle held while asleep;
//! - when the handle has something new, resolves every pending future with `True`
//!   through `loop.call_soon_threadsafe` (the only moment it takes the GIL); on an error
//!   of the segment, with that error;
//! - between chunks, looks whether futures are still pending: a cancelled or timed-out
//!   future removes itself at once (a done-callback, run by its loop), so the thread
//!   stops waiting within one chunk and no work is left behind;
//! - with nothing pending, lingers [`LINGER`] on a condition variable (so that a loop of
//!   awaits does not start a thread per record), then exits.
//!
//! Timeouts are timers of the future's own loop (`loop.call_later`), cancelled when the
//! future completes otherwise. No file descriptor is created: the loop's own wake-up
//! pipe carries `call_soon_threadsafe`. `close()` resolves pending futures with the
//! closed-handle `ValueError`, stops the thread and joins it (at most one chunk).
//!
//! Why not the alternatives: a thread per await (`run_in_executor`) would tie up one
//! executor thread per waiting task and could not be stopped when the task is
//! cancelled; an eventfd registered with the loop would still need a thread to turn the
//! futex wake-up into a write to it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBool;

use crate::errors::to_pyerr;
use crate::shared::{Failure, Shared};

/// Longest sleep of a waiter thread between looks at its pending futures (and at
/// `close()`).
pub const CHUNK: Duration = Duration::from_millis(50);
/// How long a waiter thread with nothing pending waits for new futures before it exits.
pub const LINGER: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `flexible_shared_memory._aio`.
pub fn aio(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static M: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    M.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("flexible_shared_memory._aio")?.unbind())
    })
    .map(|m| m.bind(py))
}

/// One future awaiting a handle.
struct Pending {
    id: u64,
    future: Py<PyAny>,
    event_loop: Py<PyAny>,
}

/// The waiter thread of a handle.
struct Waiter {
    handle: JoinHandle<()>,
    /// The process that started it: a forked child inherits the record, not the thread.
    pid: u32,
    /// It decided to exit (nothing was pending for [`LINGER`]).
    exiting: bool,
}

#[derive(Default)]
struct State {
    pending: Vec<Pending>,
    next_id: u64,
    waiter: Option<Waiter>,
    shutdown: bool,
}

/// The `wait_async` futures of one handle and its waiter thread.
#[derive(Default)]
pub struct AsyncWaits {
    state: Mutex<State>,
    wake: Condvar,
}

/// How pending futures end.
enum Outcome {
    Ready,
    Closed,
    Failed(flexshm_std::Error),
}

impl AsyncWaits {
    /// Adds `future` (of `event_loop`) to the futures resolved when `shared` has
    /// something new, starting the waiter thread if none runs. Returns the future's id
    /// for [`remove`](Self::remove); `None` if the handle is closing.
    fn register(
        shared: &Arc<Shared>,
        py: Python<'_>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<Option<u64>> {
        let waits = &shared.waits;
        let mut st = lock(&waits.state);
        if st.shutdown {
            return Ok(None);
        }
        let mut inherited = Vec::new();
        let mut finished = None;
        let pid = std::process::id();
        match st.waiter.take() {
            // A forked child: the thread stayed in the parent, and so did the loops
            // those futures belong to. The join handle is not ours to join.
            Some(w) if w.pid != pid => {
                std::mem::forget(w.handle);
                inherited = std::mem::take(&mut st.pending);
            }
            Some(w) if w.exiting => finished = Some(w.handle),
            other => st.waiter = other,
        }
        let id = st.next_id;
        st.next_id += 1;
        st.pending.push(Pending {
            id,
            future,
            event_loop,
        });
        if st.waiter.is_none() {
            let for_thread = Arc::clone(shared);
            let handle = std::thread::Builder::new()
                .name("flexshm-wait".into())
                .spawn(move || serve(for_thread))
                .map_err(pyo3::exceptions::PyOSError::new_err);
            let handle = match handle {
                Ok(h) => h,
                Err(e) => {
                    st.pending.retain(|p| p.id != id);
                    return Err(e);
                }
            };
            st.waiter = Some(Waiter {
                handle,
                pid,
                exiting: false,
            });
        }
        drop(st);
        waits.wake.notify_all();
        drop(inherited);
        if let Some(h) = finished {
            // It has left its loop and only returns: joined so threads never pile up.
            py.detach(|| {
                let _ = h.join();
            });
        }
        Ok(Some(id))
    }

    /// Forgets future `id` (it completed, was cancelled or timed out).
    fn remove(&self, id: u64) {
        let mut st = lock(&self.state);
        let gone: Vec<Pending> = match st.pending.iter().position(|p| p.id == id) {
            Some(i) => vec![st.pending.swap_remove(i)],
            None => Vec::new(),
        };
        drop(st);
        // Dropped after unlocking: releasing a future may run arbitrary Python code.
        drop(gone);
    }

    /// For `close()`: resolves pending futures with the closed-handle error, stops the
    /// waiter thread and waits for it to end (at most one [`CHUNK`]).
    pub fn shutdown(&self, py: Python<'_>, name: &str) {
        let (pending, waiter) = {
            let mut st = lock(&self.state);
            st.shutdown = true;
            (std::mem::take(&mut st.pending), st.waiter.take())
        };
        self.wake.notify_all();
        resolve(py, name, pending, &Outcome::Closed);
        if let Some(w) = waiter {
            if w.pid == std::process::id() {
                py.detach(|| {
                    let _ = w.handle.join();
                });
            } else {
                std::mem::forget(w.handle);
            }
        }
    }

    /// For a handle dropped without `close()`: the waiter thread ends within one chunk.
    pub fn stop(&self) {
        lock(&self.state).shutdown = true;
        self.wake.notify_all();
    }
}

/// The waiter thread's body (module docs).
fn serve(shared: Arc<Shared>) {
    let waits = &shared.waits;
    loop {
        {
            let mut st = lock(&waits.state);
            let idle_since = Instant::now();
            loop {
                if st.shutdown {
                    return;
                }
                if !st.pending.is_empty() {
                    break;
                }
                let idle = idle_since.elapsed();
                if idle >= LINGER {
                    if let Some(w) = st.waiter.as_mut() {
                        w.exiting = true;
                    }
                    return;
                }
                st = waits
                    .wake
                    .wait_timeout(st, LINGER - idle)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let outcome = match shared.sleep_until_new(CHUNK) {
            Ok(false) => continue,
            Ok(true) => Outcome::Ready,
            Err(Failure::Closed) => Outcome::Closed,
            Err(Failure::Shm(e)) => Outcome::Failed(e),
        };
        let pending = std::mem::take(&mut lock(&waits.state).pending);
        if pending.is_empty() {
            continue;
        }
        // None: the interpreter is shutting down; nobody awaits anything any more.
        let _ = Python::try_attach(|py| resolve(py, &shared.name, pending, &outcome));
    }
}

/// Resolves each future on its own loop's thread. A loop that was closed meanwhile
/// refuses (`RuntimeError`); its future is simply dropped.
fn resolve(py: Python<'_>, name: &str, pending: Vec<Pending>, outcome: &Outcome) {
    if pending.is_empty() {
        return;
    }
    let Ok(aio) = aio(py) else {
        return;
    };
    for p in pending {
        let call = match outcome {
            Outcome::Ready => aio
                .getattr("set_result")
                .map(|f| (f, PyBool::new(py, true).to_owned().into_any())),
            Outcome::Closed => aio.getattr("set_exception").map(|f| {
                (
                    f,
                    crate::handle::closed_error(name)
                        .into_value(py)
                        .into_bound(py)
                        .into_any(),
                )
            }),
            Outcome::Failed(e) => aio.getattr("set_exception").map(|f| {
                let err = to_pyerr(py, name, clone_error(e));
                (f, err.into_value(py).into_bound(py).into_any())
            }),
        };
        if let Ok((setter, value)) = call {
            let _ =
                p.event_loop
                    .call_method1(py, "call_soon_threadsafe", (setter, &p.future, value));
        }
    }
}

/// A copy of `e` for one more future (std errors are not `Clone`: an I/O error is kept
/// as its kind and message).
fn clone_error(e: &flexshm_std::Error) -> flexshm_std::Error {
    use flexshm_std::Error as E;
    match e {
        E::Replaced { name } => E::Replaced { name: name.clone() },
        E::Core(c) => E::Core(c.clone()),
        E::Io(io) => E::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => E::Io(std::io::Error::other(other.to_string())),
    }
}

/// The done-callback of a `wait_async` future: cancels its timer and forgets it, so
/// that a cancelled or timed-out wait leaves nothing behind.
#[pyclass(frozen, module = "flexible_shared_memory._native")]
pub struct WaitDone {
    shared: Weak<Shared>,
    id: u64,
    timer: Option<Py<PyAny>>,
}

#[pymethods]
impl WaitDone {
    fn __call__(&self, py: Python<'_>, _future: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Some(t) = &self.timer {
            t.call_method0(py, "cancel")?;
        }
        if let Some(s) = self.shared.upgrade() {
            s.waits.remove(self.id);
        }
        Ok(())
    }
}

/// A future of the running loop that becomes `True` when `shared` has something new,
/// `False` after `timeout` seconds (`None`: never); the body of `wait_async`.
pub fn wait_future<'py>(
    py: Python<'py>,
    shared: &Arc<Shared>,
    timeout: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let get_loop = GET_RUNNING_LOOP.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
    })?;
    let event_loop = get_loop.bind(py).call0()?;
    let future = event_loop.call_method0("create_future")?;
    let closed = || crate::handle::closed_error(&shared.name);
    match shared.has_new(Some(py)) {
        Ok(true) => {
            future.call_method1("set_result", (true,))?;
            return Ok(future);
        }
        Ok(false) => {}
        Err(Failure::Closed) => return Err(closed()),
        Err(Failure::Shm(e)) => return Err(to_pyerr(py, &shared.name, e)),
    }
    if timeout == Some(0.0) {
        future.call_method1("set_result", (false,))?;
        return Ok(future);
    }
    let Some(id) = AsyncWaits::register(
        shared,
        py,
        future.clone().unbind(),
        event_loop.clone().unbind(),
    )?
    else {
        return Err(closed());
    };
    let timer = match timeout {
        Some(t) => Some(
            event_loop
                .call_method1(
                    "call_later",
                    (t, aio(py)?.getattr("set_result")?, &future, false),
                )?
                .unbind(),
        ),
        None => None,
    };
    let done = WaitDone {
        shared: Arc::downgrade(shared),
        id,
        timer,
    };
    future.call_method1("add_done_callback", (Bound::new(py, done)?,))?;
    Ok(future)
}
