//! `SharedMemory`: a handle on one named segment, as the creating writer or as a reader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use flexshm_std::{
    CreateOptions, Dynamic, Error, Mode, OpenOptions, ReadInfo, ReadOptions, Reader, Value, Writer,
};
use pyo3::exceptions::{PyTimeoutError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::args;
use crate::convert::{stage, Staged};
use crate::errors::{to_pyerr, unsupported};
use crate::record::{take_buf, Pool, Record, SnapBuf};
use crate::schema::Schema;

/// Records or writes larger than this are copied with the GIL released.
const RELEASE_GIL_BYTES: usize = 64 * 1024;
/// A blocking read wakes up at least this often to let Python handle signals (Ctrl-C).
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Locks `m`; if another thread holds it, waits with the GIL released (that thread may
/// need the GIL to finish), then retries.
fn lock<'a, T: Send>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
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

fn mode_name(mode: Mode) -> &'static str {
    if mode.is_fifo() {
        "fifo"
    } else {
        "single"
    }
}

/// A shared-memory segment holding records of a dataclass.
///
/// The handle that creates the segment (`create=True`, the default) is its writer; handles
/// opened with `create=False` are readers. Every handle can read.
#[pyclass(
    frozen,
    generic,
    module = "flexible_shared_memory",
    name = "SharedMemory"
)]
pub struct SharedMemory {
    name: String,
    schema: Arc<Schema>,
    mode: Mode,
    is_writer: bool,
    closed: AtomicBool,
    writer: Mutex<Option<Writer<Dynamic>>>,
    reader: Mutex<Option<Reader<Dynamic>>>,
    pool: Pool,
}

impl SharedMemory {
    /// The error for any use after `close()`, worded like Python's closed files.
    fn closed_error(&self) -> PyErr {
        PyValueError::new_err(format!(
            "I/O operation on closed SharedMemory '{}'",
            self.name
        ))
    }

    fn check_open(&self) -> PyResult<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn timeout_error(&self, waited: Option<f64>, e: &Error) -> PyErr {
        let Error::Timeout {
            no_record,
            writer_alive,
        } = e
        else {
            return PyTimeoutError::new_err(e.to_string());
        };
        let after = match waited {
            Some(t) => format!("after {t} s"),
            None => "immediately (timeout=0)".to_string(),
        };
        let what = if *no_record {
            if self.mode.is_fifo() {
                "no unread record arrived".to_string()
            } else {
                "no record was committed".to_string()
            }
        } else {
            "a record exists, but the writer held its slot mid-write (or kept overtaking the copy) the whole time".to_string()
        };
        let writer = match writer_alive {
            Some(true) => "its writer is alive",
            Some(false) => "its writer process has exited",
            None => "no writer has the segment open",
        };
        PyTimeoutError::new_err(format!(
            "read of '{}' timed out {after}: {what}; {writer}",
            self.name
        ))
    }

    /// Reads into `buf` following the mode's rules, waiting up to `timeout`.
    fn read_into(
        &self,
        py: Python<'_>,
        r: &mut Reader<Dynamic>,
        buf: &mut SnapBuf,
        opts: ReadOptions,
        timeout: Option<f64>,
    ) -> PyResult<ReadInfo> {
        let big = r.snapshot_len() > RELEASE_GIL_BYTES;
        let bytes = buf.bytes_mut();
        // A first attempt that does not wait (with the GIL held for small records).
        let first = if big {
            py.detach(|| r.read_into(bytes, opts, Duration::ZERO))
        } else {
            r.read_into(bytes, opts, Duration::ZERO)
        };
        let first_err = match first {
            Ok(info) => return Ok(info),
            Err(e @ Error::Timeout { .. }) => e,
            Err(e) => return Err(to_pyerr(py, &self.name, e)),
        };
        if timeout == Some(0.0) {
            return Err(self.timeout_error(None, &first_err));
        }
        // A timeout too large to represent waits without limit.
        let deadline = timeout.and_then(|t| {
            Duration::try_from_secs_f64(t)
                .ok()
                .and_then(|d| Instant::now().checked_add(d))
        });
        loop {
            let chunk = match deadline {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(SIGNAL_CHECK),
                None => SIGNAL_CHECK,
            };
            match py.detach(|| r.read_into(bytes, opts, chunk)) {
                Ok(info) => return Ok(info),
                Err(e @ Error::Timeout { .. }) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(self.timeout_error(timeout, &e));
                    }
                    py.check_signals()?;
                    // Another thread called close(): stop waiting.
                    self.check_open()?;
                }
                Err(e) => return Err(to_pyerr(py, &self.name, e)),
            }
        }
    }
}

#[pymethods]
impl SharedMemory {
    /// Creates (`create=True`) or opens (`create=False`) the segment `name` for records
    /// of `record_type`. `slots` > 1 makes a FIFO of that many records.
    #[new]
    #[pyo3(signature = (record_type, name, create=true, slots=None))]
    fn new(
        py: Python<'_>,
        record_type: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::name)] name: Bound<'_, PyString>,
        #[pyo3(from_py_with = args::create)] create: bool,
        #[pyo3(from_py_with = args::slots)] slots: Option<i64>,
    ) -> PyResult<Self> {
        let name = name.to_cow()?.into_owned();
        let mut schema = Schema::from_class(record_type, &name)?;
        let fields = schema.layout.fields().to_vec();
        let wanted = match slots {
            None => None,
            Some(n) if n < 1 || n > i64::from(flexshm_core::MAX_SLOTS) => {
                return Err(PyValueError::new_err(format!(
                    "slots must be 1 (single-slot) or 2..={} (FIFO), got {n}",
                    flexshm_core::MAX_SLOTS
                )))
            }
            Some(1) => Some(Mode::Single),
            Some(n) => Some(Mode::Fifo { slots: n as u32 }),
        };
        let (writer, reader, mode) = if create {
            let opts = CreateOptions {
                mode: wanted.unwrap_or(Mode::Single),
                ..CreateOptions::default()
            };
            let w = Writer::<Dynamic>::create_with_fields(&name, &fields, &opts)
                .map_err(|e| to_pyerr(py, &name, e))?;
            let mode = w.mode();
            (Some(w), None, mode)
        } else {
            let r = Reader::<Dynamic>::open_expecting(&name, &fields, &OpenOptions::default())
                .map_err(|e| to_pyerr(py, &name, e))?;
            let mode = r.mode();
            if let Some(want) = wanted {
                if want != mode {
                    return Err(PyValueError::new_err(format!(
                        "segment '{name}' has {} slot(s) ({} mode), this handle asked for {}",
                        mode.slots(),
                        mode_name(mode),
                        want.slots()
                    )));
                }
            }
            (None, Some(r), mode)
        };
        schema.fifo = mode.is_fifo();
        Ok(SharedMemory {
            name,
            schema: Arc::new(schema),
            mode,
            is_writer: create,
            closed: AtomicBool::new(false),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            pool: Arc::new(Mutex::new(None)),
        })
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// `"single"` or `"fifo"`.
    #[getter]
    fn mode(&self) -> &'static str {
        mode_name(self.mode)
    }

    /// Record slots: 1 in single-slot mode, the FIFO's capacity otherwise.
    #[getter]
    fn slots(&self) -> u32 {
        self.mode.slots()
    }

    /// True for the handle that created the segment (the only one that may write).
    #[getter]
    fn is_writer(&self) -> bool {
        self.is_writer
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// The record class.
    #[getter]
    fn record_type<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.schema.record_type.bind(py).clone()
    }

    /// `{field name: type}` with types spelled like annotations (`"float64"`,
    /// `"str[32]"`, `"uint8[480,640,3]"`).
    #[getter]
    fn layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, f) in self.schema.names.iter().zip(self.schema.layout.fields()) {
            d.set_item(n.bind(py), f.kind.to_string())?;
        }
        Ok(d)
    }

    /// Writes fields by keyword. Single-slot mode: commits at once. FIFO mode: stages into
    /// the pending record (commit with `finalize()`). Every value is checked first; on
    /// error nothing is written.
    #[pyo3(signature = (**fields))]
    fn write(&self, py: Python<'_>, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.check_open()?;
        if !self.is_writer {
            return Err(unsupported(
                py,
                format!(
                    "SharedMemory '{}' was opened with create=False: it is a reader; only the handle that created the segment writes",
                    self.name
                ),
            ));
        }
        let mut staged: Vec<(usize, Staged<'_>)> = Vec::new();
        if let Some(fields) = fields {
            for (key, value) in fields.iter() {
                let index = self.schema.index.bind(py).get_item(&key)?;
                let Some(index) = index else {
                    let known: Vec<String> =
                        self.schema.specs.iter().map(|s| s.to_string()).collect();
                    return Err(PyTypeError::new_err(format!(
                        "{} has no field {}; its fields are {}",
                        self.schema.type_name,
                        key.repr()?,
                        known.join(", ")
                    )));
                };
                let i: usize = index.extract()?;
                staged.push((i, stage(&self.schema.layout.fields()[i], &value)?));
            }
        }
        if staged.is_empty() {
            return Ok(()); // nothing to write: no new commit, nothing staged
        }
        let total: usize = staged.iter().map(|(_, s)| s.byte_len()).sum();
        let values: Vec<(usize, Value<'_>)> = staged.iter().map(|(i, s)| (*i, s.value())).collect();
        let mut guard = lock(py, &self.writer);
        let w = guard.as_mut().ok_or_else(|| self.closed_error())?;
        let res = if total > RELEASE_GIL_BYTES {
            py.detach(|| w.write_fields(&values))
        } else {
            w.write_fields(&values)
        };
        res.map_err(|e| to_pyerr(py, &self.name, e))
    }

    /// FIFO mode: commits the staged record atomically and returns its commit number.
    /// Single-slot mode: nothing to do (each write commits); returns the newest commit.
    fn finalize(&self, py: Python<'_>) -> PyResult<u32> {
        self.check_open()?;
        if !self.is_writer {
            return Err(unsupported(
                py,
                format!(
                    "SharedMemory '{}' was opened with create=False: it is a reader and has nothing to finalize",
                    self.name
                ),
            ));
        }
        let mut guard = lock(py, &self.writer);
        let w = guard.as_mut().ok_or_else(|| self.closed_error())?;
        if !self.mode.is_fifo() {
            // Each write already committed; committing again would only repeat values.
            return Ok(w.head());
        }
        w.finalize().map_err(|e| to_pyerr(py, &self.name, e))
    }

    /// Reads a record. Single-slot mode: the newest record, at once (`timeout` only
    /// bounds retries while a writer keeps overtaking the copy). FIFO mode: this handle's
    /// next unread record, or with `latest=True` the newest (skipping older ones), waiting
    /// up to `timeout` seconds (`None`: no limit). With `reset_modified=True`, `modified`
    /// means "written since this handle's previous `reset_modified` read".
    #[pyo3(signature = (timeout=None, latest=false, reset_modified=false))]
    fn read(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::latest)] latest: bool,
        #[pyo3(from_py_with = args::reset_modified)] reset_modified: bool,
    ) -> PyResult<Record> {
        self.check_open()?;
        if let Some(t) = timeout {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(PyValueError::new_err(format!(
                    "timeout must be a finite number >= 0 or None, got {t}"
                )));
            }
        }
        let mut guard = lock(py, &self.reader);
        if guard.is_none() {
            // The writer's own reader, opened on first use.
            if !self.is_writer || self.closed.load(Ordering::Relaxed) {
                return Err(self.closed_error());
            }
            // On the writer's own mapping, not by name: the name may have been unlinked
            // or taken by another segment since this handle created it.
            let r = lock(py, &self.writer)
                .as_ref()
                .ok_or_else(|| self.closed_error())?
                .reader()
                .map_err(|e| to_pyerr(py, &self.name, e))?;
            *guard = Some(r);
        }
        let r = guard
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("closed"))?;
        let mut buf = take_buf(&self.pool, r.snapshot_len());
        let opts = ReadOptions {
            latest,
            reset_modified,
        };
        let info = self.read_into(py, r, &mut buf, opts, timeout)?;
        Ok(Record::new(
            buf,
            info,
            Arc::clone(&self.schema),
            Arc::clone(&self.pool),
        ))
    }

    /// Closes the handle (the segment stays; see `unlink()`). A writer's staged, not
    /// finalized FIFO record is discarded. Further use raises `ValueError`; closing twice
    /// is allowed.
    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::Relaxed);
        lock(py, &self.writer).take();
        lock(py, &self.reader).take();
    }

    /// Removes the segment's name from the system: handles that have it open keep
    /// working, new opens fail. Raises `FileNotFoundError` if it is already gone.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        flexshm_std::unlink(&self.name).map_err(|e| to_pyerr(py, &self.name, e))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed.load(Ordering::Relaxed) {
            "closed "
        } else {
            ""
        };
        let role = if self.is_writer { "writer" } else { "reader" };
        let mode = match self.mode {
            Mode::Single => "single-slot".to_string(),
            Mode::Fifo { slots } => format!("fifo, slots={slots}"),
        };
        format!(
            "<{state}SharedMemory '{}' ({role}, {mode}) of {} {{{}}}>",
            self.name,
            self.schema.type_name,
            self.schema.specs.join(", ")
        )
    }
}
