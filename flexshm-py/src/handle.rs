//! `SharedMemory`: a handle on one named segment, as the creating writer or as a reader.
//!
//! The state threads share lives in [`Shared`] (readers, writer, locks; see
//! `shared.rs`), the `wait_async` machinery in `asyncwait.rs`; this file is the Python
//! face: arguments, records, errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flexshm_std::{
    CreateOptions, Dynamic, Error, FieldDef, Mode, OpenOptions, ReadInfo, ReadOptions, Reader,
    Value, Writer, WriterStatus,
};
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyTimeoutError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyString, PyTuple, PyType};

use crate::args;
use crate::asyncwait::{aio, wait_future};
use crate::batch::RowLayout;
use crate::convert::{stage, stage_direct, Staged};
use crate::errors::{to_pyerr, unsupported};
use crate::record::{take_buf, Record, Snap, SnapBuf};
use crate::schema::Schema;
use crate::shared::{lock, Failure, ReadNow, Shared, RELEASE_GIL_BYTES};
use crate::spare::Parked;

/// A blocking call wakes up at least this often to let Python handle signals (Ctrl-C)
/// and to notice `close()` from another thread.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);
/// Mode bits of a new segment unless `permissions=` says otherwise.
const DEFAULT_PERMISSIONS: u32 = 0o600;
/// Records with snapshots up to this size are kept for reuse by `read()`: two of them,
/// so at most 128 KiB per handle.
const PARK_MAX_BYTES: usize = 64 * 1024;

fn mode_name(mode: Mode) -> &'static str {
    if mode.is_fifo() {
        "fifo"
    } else {
        "single"
    }
}

/// The error for any use of a handle after `close()`, worded like Python's closed files.
pub fn closed_error(name: &str) -> PyErr {
    PyValueError::new_err(format!("I/O operation on closed SharedMemory '{name}'"))
}

/// `now + seconds`; `None` for no limit (also for a limit too far away to represent).
fn deadline_after(seconds: Option<f64>) -> Option<Instant> {
    seconds.and_then(|t| {
        Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))
    })
}

/// The time left until `deadline`, at most [`SIGNAL_CHECK`].
fn chunk_until(deadline: Option<Instant>) -> Duration {
    match deadline {
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .min(SIGNAL_CHECK),
        None => SIGNAL_CHECK,
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Opens segment `name` for reading (with the record fields `expect`, or any), waiting
/// up to `open_timeout` seconds (`None`: no limit) for a writer to create it. Waits in
/// chunks with the GIL released, so Ctrl-C interrupts it.
fn open_reader(
    py: Python<'_>,
    name: &str,
    expect: Option<&[FieldDef]>,
    open_timeout: Option<f64>,
) -> PyResult<Reader<Dynamic>> {
    let deadline = deadline_after(open_timeout);
    loop {
        let opts = OpenOptions {
            timeout: chunk_until(deadline),
        };
        let res = py.detach(|| match expect {
            Some(fields) => Reader::<Dynamic>::open_expecting(name, fields, &opts),
            None => Reader::<Dynamic>::open_with(name, &opts),
        });
        match res {
            Ok(r) => return Ok(r),
            Err(e @ (Error::NotFound { .. } | Error::Uninitialised { .. })) => {
                if passed(deadline) {
                    return Err(match (&e, open_timeout) {
                        (Error::NotFound { .. }, Some(t)) if t > 0.0 => {
                            PyFileNotFoundError::new_err(format!(
                                "{e} (waited {t} s for it to be created)"
                            ))
                        }
                        _ => to_pyerr(py, name, e),
                    });
                }
                py.check_signals()?;
            }
            Err(e) => return Err(to_pyerr(py, name, e)),
        }
    }
}

/// `write()` calls with at most this many keyword values, none of them an array, stage
/// them on the stack (`SharedMemory::write_pairs`).
const DIRECT_FIELDS: usize = 8;

/// A shared-memory segment holding records of a dataclass.
///
/// The handle that creates the segment (`create=True`, the default) is its writer; handles
/// opened with `create=False` or `SharedMemory.open()` are readers. Every handle can read.
#[pyclass(
    frozen,
    generic,
    module = "flexible_shared_memory",
    name = "SharedMemory"
)]
pub struct SharedMemory {
    shared: Arc<Shared>,
    schema: Arc<Schema>,
    is_writer: bool,
    snapshot_len: usize,
    /// The `Record` objects `read()` returned last, for reuse (`record_object`).
    last_records: Parked<Record>,
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // Dropped without close(): its waiter thread (if any) ends within one chunk.
        self.shared.waits.stop();
    }
}

impl SharedMemory {
    /// The body of `write(**fields)`: `pairs` are the (name, value) keyword arguments in
    /// call order. Every value is staged (checked and converted) before the writer is
    /// touched, so a bad one writes nothing.
    ///
    /// Up to [`DIRECT_FIELDS`] scalar and string values are staged into an array on the
    /// stack, strings borrowed from their `str` objects (CPython keeps a call's arguments
    /// alive until it returns). A call with an array value, or with more values, stages
    /// into owned [`Staged`] values instead, which keep converted arrays alive.
    fn write_pairs<'py, I>(&self, py: Python<'py>, pairs: I) -> PyResult<()>
    where
        I: ExactSizeIterator<Item = (Borrowed<'py, 'py, PyAny>, Borrowed<'py, 'py, PyAny>)> + Clone,
    {
        self.check_open()?;
        if !self.is_writer {
            return Err(self.write_refused(py, "only the handle that created the segment writes"));
        }
        if pairs.len() == 0 {
            return Ok(()); // nothing to write: no new commit, nothing staged
        }
        if pairs.len() <= DIRECT_FIELDS {
            let mut values = [(0, Value::Bool(false)); DIRECT_FIELDS];
            let mut bytes = 0;
            let mut n = 0;
            for ((key, value), slot) in pairs.clone().zip(values.iter_mut()) {
                let i = self.field_of(&key)?;
                slot.0 = i;
                if !stage_direct(&self.schema.layout.fields()[i], value, &mut slot.1)? {
                    break; // an array: staged below, from the first value on
                }
                bytes += match slot.1 {
                    Value::Str(s) => s.len(),
                    _ => 8,
                };
                n += 1;
            }
            if n == pairs.len() {
                // Strings are immutable and scalars copied: nothing another thread runs
                // can change what the core copies, so a long write may release the GIL.
                return self.write_values(py, &values[..n], bytes > RELEASE_GIL_BYTES);
            }
        }
        let mut staged: Vec<(usize, Staged<'py>)> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let i = self.field_of(&key)?;
            staged.push((i, stage(&self.schema.layout.fields()[i], &value)?));
        }
        let total: usize = staged.iter().map(|(_, s)| s.byte_len()).sum();
        // The GIL is released for a large write only if no Python code can change the
        // bytes Rust reads meanwhile. An array the caller passed (or a view of one) is
        // memory other Python threads may write while we copy it, which would be a data
        // race on memory Rust reads (undefined behaviour): the GIL stays held for those,
        // which keeps every Python thread out for the copy. Arrays that staging made
        // itself (a cast, a contiguous copy) and strings (immutable) are safe to read.
        let release = total > RELEASE_GIL_BYTES && staged.iter().all(|(_, s)| s.is_private());
        let values: Vec<(usize, Value<'_>)> = staged.iter().map(|(i, s)| (*i, s.value())).collect();
        self.write_values(py, &values, release)
    }

    /// The index of the field `key` names, or the `TypeError` of `write()` listing the
    /// fields.
    fn field_of(&self, key: &Bound<'_, PyAny>) -> PyResult<usize> {
        match self.schema.field_index(key)? {
            Some(i) => Ok(i),
            None => {
                let known: Vec<String> = self.schema.specs.iter().map(|s| s.to_string()).collect();
                Err(PyTypeError::new_err(format!(
                    "{} has no field {}; its fields are {}",
                    self.schema.type_name,
                    key.repr()?,
                    known.join(", ")
                )))
            }
        }
    }

    /// Writes staged values through the writer (one commit in single-slot mode), with the
    /// GIL released during the copy if `release`.
    fn write_values(
        &self,
        py: Python<'_>,
        values: &[(usize, Value<'_>)],
        release: bool,
    ) -> PyResult<()> {
        let mut guard = lock(py, &self.shared.writer);
        let w = guard
            .as_mut()
            .ok_or_else(|| closed_error(self.name_str()))?;
        let res = if release {
            py.detach(|| w.write_fields(values))
        } else {
            w.write_fields(values)
        };
        res.map_err(|e| to_pyerr(py, self.name_str(), e))
    }

    fn build(
        py: Python<'_>,
        name: String,
        mut schema: Schema,
        writer: Option<Writer<Dynamic>>,
        reader: Reader<Dynamic>,
    ) -> PyResult<Self> {
        let is_writer = writer.is_some();
        let snapshot_len = reader.snapshot_len();
        schema.fifo = reader.mode().is_fifo();
        let shared =
            Shared::new(name.clone(), writer, reader).map_err(|e| to_pyerr(py, &name, e))?;
        Ok(SharedMemory {
            shared: Arc::new(shared),
            schema: Arc::new(schema),
            is_writer,
            snapshot_len,
            last_records: Parked::new(),
        })
    }

    fn name_str(&self) -> &str {
        &self.shared.name
    }

    fn check_open(&self) -> PyResult<()> {
        if self.shared.is_closed() {
            return Err(closed_error(self.name_str()));
        }
        Ok(())
    }

    fn failure(&self, py: Python<'_>, f: Failure) -> PyErr {
        match f {
            Failure::Closed => closed_error(self.name_str()),
            Failure::Shm(e) => to_pyerr(py, self.name_str(), e),
        }
    }

    /// The `TimeoutError` of a read: what was waited for, how long, and the writer's state.
    fn timeout_error(&self, waited: Option<f64>, no_record: bool) -> PyErr {
        let after = match waited {
            Some(t) if t > 0.0 => format!("after {t} s"),
            _ => "immediately (timeout=0)".to_string(),
        };
        let what = if no_record {
            if self.shared.mode.is_fifo() {
                "no unread record arrived"
            } else {
                "no record was committed"
            }
        } else {
            "a record exists, but the writer held its slot mid-write (or kept overtaking the copy) the whole time"
        };
        let writer = match self.shared.writer_status() {
            Some(WriterStatus::Alive { .. }) => "its writer is alive",
            Some(WriterStatus::Dead { .. }) => "its writer process has exited",
            _ => "no writer has the segment open",
        };
        PyTimeoutError::new_err(format!(
            "read of '{}' timed out {after}: {what}; {writer}",
            self.name_str()
        ))
    }

    /// Single-slot: copies the newest record into `buf` with `r`, retrying up to
    /// `timeout` while a writer keeps overtaking the copy.
    fn read_single_with(
        &self,
        py: Python<'_>,
        r: &mut Reader<Dynamic>,
        buf: &mut SnapBuf,
        opts: ReadOptions,
        timeout: Option<f64>,
    ) -> PyResult<ReadInfo> {
        let big = self.snapshot_len > RELEASE_GIL_BYTES;
        let bytes = buf.bytes_mut();
        let first = if big {
            py.detach(|| r.read_into(bytes, opts, Duration::ZERO))
        } else {
            r.read_into(bytes, opts, Duration::ZERO)
        };
        match first {
            Ok(info) => return Ok(info),
            Err(Error::Timeout { .. }) => {}
            Err(e) => return Err(to_pyerr(py, self.name_str(), e)),
        }
        if timeout == Some(0.0) {
            return Err(self.timeout_error(None, false));
        }
        let deadline = deadline_after(timeout);
        loop {
            let chunk = chunk_until(deadline);
            match py.detach(|| r.read_into(bytes, opts, chunk)) {
                Ok(info) => return Ok(info),
                Err(Error::Timeout { no_record, .. }) => {
                    if passed(deadline) {
                        return Err(self.timeout_error(timeout, no_record));
                    }
                    py.check_signals()?;
                    // Another thread called close(): stop trying.
                    self.check_open()?;
                }
                Err(e) => return Err(to_pyerr(py, self.name_str(), e)),
            }
        }
    }

    /// Single-slot read: through the handle's own reader for `reset_modified` (it keeps
    /// that tracking), else through a spare reader, so threads copy in parallel.
    fn read_single(
        &self,
        py: Python<'_>,
        buf: &mut SnapBuf,
        opts: ReadOptions,
        timeout: Option<f64>,
    ) -> PyResult<ReadInfo> {
        let info = if opts.reset_modified {
            let mut main = self.shared.main(py).map_err(|f| self.failure(py, f))?;
            self.read_single_with(py, main.reader(), buf, opts, timeout)?
        } else {
            let mut spare = self
                .shared
                .take_spare_attached(py)
                .map_err(|f| self.failure(py, f))?;
            let res = self.read_single_with(py, &mut spare, buf, opts, timeout);
            self.shared.put_spare_attached(py, spare);
            res?
        };
        self.shared.note_returned(info.commit);
        Ok(info)
    }

    /// FIFO read: the handle's next unread record (or the newest), waiting up to
    /// `timeout` without holding the handle's reader while asleep.
    fn read_fifo(
        &self,
        py: Python<'_>,
        buf: &mut SnapBuf,
        opts: ReadOptions,
        timeout: Option<f64>,
    ) -> PyResult<ReadInfo> {
        let deadline = deadline_after(timeout);
        loop {
            let no_record = match self
                .shared
                .read_fifo_now(py, buf.bytes_mut(), opts)
                .map_err(|f| self.failure(py, f))?
            {
                ReadNow::Got(info) => return Ok(info),
                ReadNow::Nothing => true,
                ReadNow::Contended => false,
            };
            if timeout == Some(0.0) {
                return Err(self.timeout_error(None, no_record));
            }
            if passed(deadline) {
                return Err(self.timeout_error(timeout, no_record));
            }
            let chunk = chunk_until(deadline);
            if no_record {
                py.detach(|| self.shared.sleep_until_new(chunk))
                    .map_err(|f| self.failure(py, f))?;
            } else {
                py.detach(std::thread::yield_now);
            }
            py.check_signals()?;
            self.check_open()?;
        }
    }

    /// The record this handle has not returned yet, if there is one; never waits.
    /// FIFO: the next unread record. Single-slot: the newest, if it is newer than the
    /// last one this handle returned.
    fn take_new<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, Record>>> {
        self.check_open()?;
        let mut buf = take_buf(py, &self.schema.pool, self.snapshot_len);
        let opts = ReadOptions::default();
        let info = if self.shared.mode.is_fifo() {
            match self
                .shared
                .read_fifo_now(py, buf.bytes_mut(), opts)
                .map_err(|f| self.failure(py, f))?
            {
                ReadNow::Got(info) => info,
                ReadNow::Nothing | ReadNow::Contended => return Ok(None),
            }
        } else {
            if !self
                .shared
                .has_new(Some(py))
                .map_err(|f| self.failure(py, f))?
            {
                return Ok(None);
            }
            self.read_single(py, &mut buf, opts, None)?
        };
        self.record_object(py, buf, info).map(Some)
    }

    fn record(&self, buf: Box<SnapBuf>, info: ReadInfo) -> Record {
        Record::new(buf, info, Arc::clone(&self.schema))
    }

    /// The record object of a read: one of the two `read()` returned last, with the new
    /// snapshot in it, if nothing holds it any more (`crate::spare::Parked`); a new one
    /// otherwise. A loop of `rec = shm.read()` then allocates no `Record`. Records of
    /// more than [`PARK_MAX_BYTES`] are not kept: their copy costs far more than the
    /// object, and a kept record keeps its buffer.
    fn record_object<'py>(
        &self,
        py: Python<'py>,
        buf: Box<SnapBuf>,
        info: ReadInfo,
    ) -> PyResult<Bound<'py, Record>> {
        let snap = Snap::new(buf, info);
        if self.snapshot_len > PARK_MAX_BYTES {
            return Bound::new(py, Record::from_snap(snap, Arc::clone(&self.schema)));
        }
        match self.last_records.reuse(py, snap) {
            Ok((rec, old)) => {
                old.recycle(py, &self.schema.pool);
                Ok(rec)
            }
            Err(snap) => {
                let rec = Bound::new(py, Record::from_snap(snap, Arc::clone(&self.schema)))?;
                self.last_records.park(&rec);
                Ok(rec)
            }
        }
    }

    fn write_refused(&self, py: Python<'_>, what: &str) -> PyErr {
        unsupported(
            py,
            format!(
                "SharedMemory '{}' was opened with create=False (or by SharedMemory.open(), or unpickled): it is a reader; {what}",
                self.name_str()
            ),
        )
    }
}

#[pymethods]
impl SharedMemory {
    /// Creates (`create=True`) or opens (`create=False`) the segment `name` for records
    /// of `record_type`. `slots` > 1 makes a FIFO of that many records. `permissions`:
    /// mode bits of a new segment (readers need only read permission). `open_timeout`
    /// (`create=False`): seconds to wait for the writer to create the segment (`None`:
    /// no limit).
    #[new]
    #[pyo3(
        signature = (record_type, name, create=true, slots=None, *, permissions=DEFAULT_PERMISSIONS, open_timeout=Some(0.0)),
        text_signature = "(record_type, name, create=True, slots=None, *, permissions=0o600, open_timeout=0.0)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        record_type: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::name)] name: Bound<'_, PyString>,
        #[pyo3(from_py_with = args::create)] create: bool,
        #[pyo3(from_py_with = args::slots)] slots: Option<i64>,
        #[pyo3(from_py_with = args::permissions)] permissions: u32,
        #[pyo3(from_py_with = args::open_timeout)] open_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let name = name.to_cow()?.into_owned();
        let schema = Schema::from_class(record_type, &name)?;
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
        if create {
            if open_timeout != Some(0.0) {
                return Err(PyValueError::new_err(
                    "open_timeout is for readers (create=False): a writer creates the segment at once",
                ));
            }
            let opts = CreateOptions {
                mode: wanted.unwrap_or(Mode::Single),
                permissions,
            };
            let w = py
                .detach(|| Writer::<Dynamic>::create_with_fields(&name, &fields, &opts))
                .map_err(|e| to_pyerr(py, &name, e))?;
            // The writer's own reader, on its mapping: the name may later be unlinked or
            // taken by another segment.
            let r = w.reader().map_err(|e| to_pyerr(py, &name, e))?;
            SharedMemory::build(py, name, schema, Some(w), r)
        } else {
            if permissions != DEFAULT_PERMISSIONS {
                return Err(PyValueError::new_err(
                    "permissions are set by the writer (create=True); a reader needs only read permission",
                ));
            }
            let r = open_reader(py, &name, Some(&fields), open_timeout)?;
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
            SharedMemory::build(py, name, schema, None, r)
        }
    }

    /// Opens any flexshm segment for reading without its record class: the layout comes
    /// from the segment, and `record_type` is a dataclass generated from it.
    #[classmethod]
    #[pyo3(
        signature = (name, *, open_timeout=Some(0.0)),
        text_signature = "(name, *, open_timeout=0.0)"
    )]
    fn open(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        #[pyo3(from_py_with = args::name)] name: Bound<'_, PyString>,
        #[pyo3(from_py_with = args::open_timeout)] open_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let name = name.to_cow()?.into_owned();
        let r = open_reader(py, &name, None, open_timeout)?;
        let fields = r.layout().fields();
        let specs: Vec<(String, String)> = fields
            .iter()
            .map(|f| (f.name.as_str().to_string(), f.kind.to_string()))
            .collect();
        let record_type = py
            .import("flexible_shared_memory._schema")?
            .call_method1("dataclass_for", (&name, specs))?;
        let mut schema = Schema::from_class(&record_type, &name)?;
        if schema.layout.fields() != fields {
            return Err(PyValueError::new_err(format!(
                "segment '{name}': its layout cannot be expressed as a record class"
            )));
        }
        schema.generated = true;
        SharedMemory::build(py, name, schema, None, r)
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        self.name_str()
    }

    /// `"single"` or `"fifo"`.
    #[getter]
    fn mode(&self) -> &'static str {
        mode_name(self.shared.mode)
    }

    /// Record slots: 1 in single-slot mode, the FIFO's capacity otherwise.
    #[getter]
    fn slots(&self) -> u32 {
        self.shared.mode.slots()
    }

    /// True for the handle that created the segment (the only one that may write).
    #[getter]
    fn is_writer(&self) -> bool {
        self.is_writer
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.is_closed()
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

    /// FIFO mode: commits the staged record atomically and returns its commit number.
    /// Single-slot mode: nothing to do (each write commits); returns the newest commit.
    fn finalize(&self, py: Python<'_>) -> PyResult<u32> {
        self.check_open()?;
        if !self.is_writer {
            return Err(self.write_refused(py, "it has nothing to finalize"));
        }
        let mut guard = lock(py, &self.shared.writer);
        let w = guard
            .as_mut()
            .ok_or_else(|| closed_error(self.name_str()))?;
        // Single-slot: each write already committed; this returns the newest commit (and,
        // like a write, refuses in a forked child).
        w.finalize().map_err(|e| to_pyerr(py, self.name_str(), e))
    }

    /// Reads a record. Single-slot mode: the newest record, at once (`timeout` only
    /// bounds retries while a writer keeps overtaking the copy). FIFO mode: this handle's
    /// next unread record, or with `latest=True` the newest (skipping older ones), waiting
    /// up to `timeout` seconds (`None`: no limit). With `reset_modified=True`, `modified`
    /// means "written since this handle's previous `reset_modified` read".
    #[pyo3(signature = (timeout=None, latest=false, reset_modified=false))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::latest)] latest: bool,
        #[pyo3(from_py_with = args::reset_modified)] reset_modified: bool,
    ) -> PyResult<Bound<'py, Record>> {
        self.check_open()?;
        let mut buf = take_buf(py, &self.schema.pool, self.snapshot_len);
        let opts = ReadOptions {
            latest,
            reset_modified,
        };
        let info = if self.shared.mode.is_fifo() {
            self.read_fifo(py, &mut buf, opts, timeout)?
        } else {
            self.read_single(py, &mut buf, opts, timeout)?
        };
        self.record_object(py, buf, info)
    }

    /// Up to `max_records` records at once. FIFO mode: this handle's unread records in
    /// commit order; it waits up to `timeout` seconds (`None`: no limit) for the first and
    /// takes the others that are already there, so a slow consumer catches up in few
    /// calls. At the timeout it returns an empty result instead of raising. Single-slot
    /// mode: the newest record (as `read()`). Each record's `lost` counts the records lost
    /// just before it. With `as_array=True` the records are the rows of a NumPy
    /// structured array (columns `commit`, `lost`, the status masks `written`,
    /// `truncated`, `modified`, `corrupt` with bit `i` for field `i`, then one column per
    /// field; unwritten fields are zero), and no Python object is made per record.
    #[pyo3(signature = (max_records, timeout=None, *, as_array=false))]
    fn read_many<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = args::max_records)] max_records: usize,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
        #[pyo3(from_py_with = args::as_array)] as_array: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        let rows = if as_array {
            Some(match self.schema.rows.get() {
                Some(r) => r,
                None => {
                    let r = RowLayout::new(py, &self.schema)?;
                    // Another thread may have made it meanwhile: either is the same.
                    let _ = self.schema.rows.set(r);
                    self.schema.rows.get().expect("row layout just set")
                }
            })
        } else {
            None
        };
        let mut records: Vec<Record> = Vec::new();
        let mut table: Vec<u8> = Vec::new();
        let mut keep = |buf: Box<SnapBuf>, info: ReadInfo, records: &mut Vec<Record>| {
            if let Some(rows) = rows {
                let at = table.len();
                table.resize(at + rows.itemsize, 0);
                rows.fill(&self.schema, buf.bytes(), info, &mut table[at..]);
                Some(buf)
            } else {
                records.push(self.record(buf, info));
                None
            }
        };
        let mut buf = take_buf(py, &self.schema.pool, self.snapshot_len);
        let opts = ReadOptions::default();
        if self.shared.mode.is_fifo() {
            match self.read_fifo(py, &mut buf, opts, timeout) {
                Ok(info) => {
                    let mut spare = keep(buf, info, &mut records);
                    let mut n = 1;
                    while n < max_records {
                        let mut next = spare
                            .take()
                            .unwrap_or_else(|| Box::new(SnapBuf::new(self.snapshot_len)));
                        match self
                            .shared
                            .read_fifo_now(py, next.bytes_mut(), opts)
                            .map_err(|f| self.failure(py, f))?
                        {
                            ReadNow::Got(info) => spare = keep(next, info, &mut records),
                            ReadNow::Nothing | ReadNow::Contended => break,
                        }
                        n += 1;
                    }
                }
                Err(e) if e.is_instance_of::<PyTimeoutError>(py) => {}
                Err(e) => return Err(e),
            }
        } else {
            let info = self.read_single(py, &mut buf, opts, timeout)?;
            keep(buf, info, &mut records);
        }
        match rows {
            Some(rows) => {
                let n = table.len() / rows.itemsize.max(1);
                let np = py.import("numpy")?;
                let arr = np.call_method1("empty", (n, rows.dtype.bind(py)))?;
                let untyped = arr.cast::<PyUntypedArray>()?;
                debug_assert_eq!(untyped.len() * rows.itemsize, table.len());
                // SAFETY: `arr` is a new, C-contiguous, writable array of `n` rows of
                // `itemsize` bytes (`table.len()` in all) that no other code can see yet,
                // alive for the copy (`untyped` borrows it); `table` is private memory.
                unsafe {
                    let data = (*untyped.as_array_ptr()).fields.data.cast::<u8>();
                    std::ptr::copy_nonoverlapping(table.as_ptr(), data, table.len());
                }
                Ok(arr)
            }
            None => Ok(PyList::new(py, records)?.into_any()),
        }
    }

    /// Writes several records: each item of `records` is a mapping of field names to
    /// values, written as one `write(**item)`, and in FIFO mode committed as one record
    /// (`finalize()`). Every value of every item is checked before anything is written,
    /// so a bad value anywhere writes nothing (the error names the item and the field).
    /// Returns the newest commit number.
    fn write_many(&self, py: Python<'_>, records: &Bound<'_, PyAny>) -> PyResult<u32> {
        self.check_open()?;
        if !self.is_writer {
            return Err(self.write_refused(py, "only the handle that created the segment writes"));
        }
        let mut staged_rows: Vec<Vec<(usize, Staged<'_>)>> = Vec::new();
        for (k, item) in records.try_iter()?.enumerate() {
            let item = item?;
            let mapping = item.cast::<PyMapping>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "write_many: record {k} must be a mapping of field names to values, got {}",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            // A dict (the usual item) is walked in place; any other mapping through
            // its `items()`.
            let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = match item.cast::<PyDict>() {
                Ok(d) => d.iter().collect(),
                Err(_) => mapping
                    .items()?
                    .iter()
                    .map(|pair| pair.extract())
                    .collect::<PyResult<_>>()?,
            };
            let mut staged = Vec::with_capacity(pairs.len());
            for (key, value) in &pairs {
                let at = |e: PyErr| {
                    PyErr::from_type(
                        e.get_type(py),
                        format!("write_many: record {k}: {}", e.value(py)),
                    )
                };
                let Some(i) = self.schema.field_index(key)? else {
                    return Err(PyTypeError::new_err(format!(
                        "write_many: record {k}: {} has no field {}",
                        self.schema.type_name,
                        key.repr()?
                    )));
                };
                staged.push((
                    i,
                    stage(&self.schema.layout.fields()[i], value).map_err(at)?,
                ));
            }
            staged_rows.push(staged);
        }
        let mut guard = lock(py, &self.shared.writer);
        let w = guard
            .as_mut()
            .ok_or_else(|| closed_error(self.name_str()))?;
        let fifo = self.shared.mode.is_fifo();
        for (k, staged) in staged_rows.iter().enumerate() {
            let values: Vec<(usize, Value<'_>)> =
                staged.iter().map(|(i, s)| (*i, s.value())).collect();
            let res = if values.is_empty() {
                Ok(())
            } else {
                w.write_fields(&values)
            };
            res.and_then(|()| {
                if fifo {
                    w.finalize().map(|_| ())
                } else {
                    Ok(())
                }
            })
            .map_err(|e| {
                let e = to_pyerr(py, self.name_str(), e);
                PyErr::from_type(
                    e.get_type(py),
                    format!(
                        "write_many: record {k} (records before it were committed): {}",
                        e.value(py)
                    ),
                )
            })?;
        }
        Ok(w.head())
    }

    /// Waits until there is something this handle has not read (single-slot: a commit
    /// newer than the last one it returned; FIFO: an unread record): `True`, or `False`
    /// after `timeout` seconds (`None`: no limit). Sleeps in the kernel with the GIL
    /// released; Ctrl-C interrupts it. Reads nothing.
    #[pyo3(signature = (timeout=None))]
    fn wait(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<bool> {
        self.check_open()?;
        if self
            .shared
            .has_new(Some(py))
            .map_err(|f| self.failure(py, f))?
        {
            return Ok(true);
        }
        if timeout == Some(0.0) {
            return Ok(false);
        }
        let deadline = deadline_after(timeout);
        loop {
            let chunk = chunk_until(deadline);
            if py
                .detach(|| self.shared.sleep_until_new(chunk))
                .map_err(|f| self.failure(py, f))?
            {
                return Ok(true);
            }
            if passed(deadline) {
                return Ok(false);
            }
            py.check_signals()?;
            self.check_open()?;
        }
    }

    /// `wait()` for asyncio: a coroutine that never blocks the event loop. Cancelling it
    /// stops the wait. See `asyncwait.rs` for how.
    #[pyo3(signature = (timeout=None))]
    fn wait_async<'py>(
        slf: &Bound<'py, Self>,
        #[pyo3(from_py_with = args::timeout)] timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        slf.get().check_open()?;
        aio(slf.py())?.call_method1("wait", (slf, timeout))
    }

    /// The future behind `wait_async()` (made when its coroutine first runs).
    fn _wait_future<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_open()?;
        wait_future(py, &self.shared, timeout)
    }

    /// The record this handle has not returned yet, or `None`; never waits.
    fn _take_new<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, Record>>> {
        self.take_new(py)
    }

    /// `for record in shm`: every new record as it arrives (FIFO: each record in order;
    /// single-slot: each newer commit) until the handle is closed.
    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        slf.get().check_open()?;
        Ok(slf.clone().unbind())
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, Record>>> {
        loop {
            if self.shared.is_closed() {
                return Ok(None);
            }
            match self.take_new(py) {
                Ok(Some(r)) => return Ok(Some(r)),
                Ok(None) => {}
                Err(_) if self.shared.is_closed() => return Ok(None),
                Err(e) => return Err(e),
            }
            match py.detach(|| self.shared.sleep_until_new(SIGNAL_CHECK)) {
                Ok(_) => {}
                Err(Failure::Closed) => return Ok(None),
                Err(f) => return Err(self.failure(py, f)),
            }
            py.check_signals()?;
        }
    }

    /// `async for record in shm`: the same as `for`, awaiting without blocking the loop.
    fn __aiter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        slf.get().check_open()?;
        Ok(slf.clone().unbind())
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        aio(slf.py())?.call_method1("next_record", (slf,))
    }

    /// Pickling: a handle pickles as "a reader of this segment" (its class and name, or
    /// just the name for a handle made by `open()`), and unpickles as a new reader
    /// opened by name. A writer's handle, too, arrives as a reader.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let me = slf.get();
        me.check_open()?;
        let cls = slf.get_type();
        let name = PyString::new(py, me.name_str());
        if me.schema.generated {
            let args = PyTuple::new(py, [name])?;
            PyTuple::new(py, [cls.getattr("open")?, args.into_any()])
        } else {
            let args = PyTuple::new(
                py,
                [
                    me.schema.record_type.bind(py).clone(),
                    name.into_any(),
                    pyo3::types::PyBool::new(py, false).to_owned().into_any(),
                ],
            )?;
            PyTuple::new(py, [cls.into_any(), args.into_any()])
        }
    }

    /// Closes the handle (the segment stays; see `unlink()`). A writer's staged, not
    /// finalized FIFO record is discarded; pending `wait_async()` calls raise the
    /// closed-handle `ValueError` and iteration ends. Further use raises `ValueError`;
    /// closing twice is allowed.
    fn close(&self, py: Python<'_>) {
        self.shared.close(py);
        self.shared.waits.shutdown(py, self.name_str());
        // The objects kept for reuse (records still in use elsewhere stay alive).
        self.last_records.clear(py);
        self.schema.last_fields.clear(py);
    }

    /// Removes the segment's name from the system: handles that have it open keep
    /// working, new opens fail. Raises `FileNotFoundError` if it is already gone.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        flexshm_std::unlink(self.name_str()).map_err(|e| to_pyerr(py, self.name_str(), e))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.shared.is_closed() {
            "closed "
        } else {
            ""
        };
        let role = if self.is_writer { "writer" } else { "reader" };
        let mode = match self.shared.mode {
            Mode::Single => "single-slot".to_string(),
            Mode::Fifo { slots } => format!("fifo, slots={slots}"),
        };
        format!(
            "<{state}SharedMemory '{}' ({role}, {mode}) of {} {{{}}}>",
            self.name_str(),
            self.schema.type_name,
            self.schema.specs.join(", ")
        )
    }
}

/// `SharedMemory.write(**fields)`, installed by [`install_write`] as a
/// `METH_FASTCALL | METH_KEYWORDS` method: CPython passes the keyword names as a tuple
/// and the values as an array, and this walks them directly. A `#[pymethods]` function
/// with `**fields` would receive a dict built for the call (and pyo3 copies it into a
/// second one), which is about a third of the time of a small `write()`.
mod fast_write {
    use pyo3::ffi;
    use pyo3::impl_::trampoline::{fastcall_cfunction_with_keywords as fastcall, MethodDef};
    use pyo3::prelude::*;
    use pyo3::types::PyTuple;
    use pyo3::Borrowed;

    use super::SharedMemory;

    /// The docstring, with the signature `inspect.signature` reads from its first line.
    const DOC: &std::ffi::CStr = c"write($self, /, **fields)
--

Writes fields by keyword. Single-slot mode: commits at once. FIFO mode: stages into
the pending record (commit with `finalize()`). Every value is checked first; on
error nothing is written.";

    /// Hands [`write`] to pyo3's trampoline, which attaches the thread state pyo3 keeps,
    /// turns a panic into `PanicException` and a returned error into a raised one.
    struct Def;
    impl MethodDef<fastcall::Func> for Def {
        const METH: fastcall::Func = write;
    }

    /// # Safety
    ///
    /// Called by CPython through the method descriptor made in [`install_write`]: the
    /// interpreter is attached; `slf` is borrowed for the call and is a `SharedMemory` (the
    /// descriptor checks the type before the call); `args` holds `nargs` positional values
    /// followed by one value per name in `kwnames`, which is NULL or a tuple of `str`.
    unsafe fn write(
        py: Python<'_>,
        slf: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> PyResult<*mut ffi::PyObject> {
        // SAFETY: `slf` is a valid object borrowed for the call (see above).
        let slf = unsafe { Borrowed::from_ptr(py, slf) };
        let handle = slf.cast::<SharedMemory>()?;
        if nargs != 0 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "SharedMemory.write() takes field values as keywords (write(name=value, ...)), \
                 got {nargs} positional argument(s)"
            )));
        }
        let count = if kwnames.is_null() {
            0
        } else {
            // SAFETY: a non-NULL `kwnames` is a tuple borrowed for the call.
            unsafe { Borrowed::from_ptr(py, kwnames) }
                .cast::<PyTuple>()?
                .len()
        };
        let pairs = (0..count).map(|i| {
            // SAFETY: `kwnames` is a tuple of `count` names and `i < count`, so
            // PyTuple_GetItem returns a borrowed, non-NULL name; `args[nargs + i]` (here
            // `args[i]`, as `nargs` is 0) is the i-th keyword's value, borrowed for the call.
            unsafe {
                (
                    Borrowed::from_ptr(py, ffi::PyTuple_GetItem(kwnames, i as ffi::Py_ssize_t)),
                    Borrowed::from_ptr(py, *args.add(i)),
                )
            }
        });
        handle.get().write_pairs(py, pairs)?;
        Ok(py.None().into_ptr())
    }

    /// Adds `write` to the `SharedMemory` type (once, when the module is initialised).
    pub fn install_write(py: Python<'_>) -> PyResult<()> {
        let ty = py.get_type::<SharedMemory>();
        // The method table entry must outlive the type: it lives as long as the process.
        let def: &'static mut ffi::PyMethodDef = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: c"write".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFastWithKeywords:
                    pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::<Def>,
            },
            ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
            ml_doc: DOC.as_ptr(),
        }));
        // SAFETY: `ty` is a live type object and `def` a valid method definition that is
        // never freed; PyDescr_NewMethod returns a new reference or NULL with an
        // exception set.
        let descr = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))
        }?;
        ty.setattr("write", descr)
    }
}

pub use fast_write::install_write;
