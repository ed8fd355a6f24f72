//! What `read()` returns: a [`Record`] owning one private copy of a slot, and [`Field`]s
//! decoded from it when they are looked up (each `Field` holds its decoded value and
//! status, and refers to nothing else).
//!
//! A handle keeps the last two `Record` objects `read()` returned and the last two `Field`
//! objects its records handed out, and hands one out again, with new contents, when
//! nothing else holds it (`crate::spare::Parked`): a `read()` and its field look-ups then
//! allocate no extension object. Held records and fields never change.
//!
//! Array values are NumPy arrays that view the record's buffer (read-only, with the record
//! as their base object), so reading an image copies it exactly once: out of shared
//! memory, into the record.

use std::sync::Arc;

use flexshm_core::{Dtype, Dynamic, FieldDef, FieldStatus, FieldValue, Kind, ReadInfo, Snapshot};
use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyAttributeError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::convert::{descr, np_asarray, np_dtype};
use crate::schema::{FieldDefault, Schema};
use crate::spare::{Attached, Reusable, Reuse};

#[cfg(target_endian = "big")]
compile_error!(
    "flexshm-py views little-endian record bytes with native NumPy dtypes; big-endian hosts are not supported yet"
);

/// A snapshot buffer: 8-byte aligned, so array fields (aligned to their element size
/// inside a slot) are aligned NumPy arrays.
pub struct SnapBuf {
    words: Box<[u64]>,
    len: usize,
}

impl SnapBuf {
    /// A zeroed buffer of at least `len` bytes.
    pub fn new(len: usize) -> SnapBuf {
        SnapBuf {
            words: vec![0u64; len.div_ceil(8)].into_boxed_slice(),
            len,
        }
    }

    /// The first `len` bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds `words.len() * 8 >= len` initialised bytes; u8 has no
        // alignment or validity requirements; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    /// The first `len` bytes, mutable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and the exclusive borrow of `self` makes the slice the
        // only access to the buffer while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// One spare snapshot buffer per handle (kept in its [`Schema`], which every record of
/// the handle holds anyway): a record gives its buffer back when it is freed, and the
/// next read reuses it instead of allocating (and page-faulting) a new one.
pub type Pool = Attached<Box<SnapBuf>>;

/// Takes the spare buffer if it has the right size, else allocates one.
pub fn take_buf(py: Python<'_>, pool: &Pool, len: usize) -> Box<SnapBuf> {
    match pool.take(py) {
        Some(buf) if buf.len == len => buf,
        _ => Box::new(SnapBuf::new(len)),
    }
}

/// A record returned by `SharedMemory.read()`: one consistent copy of a slot.
///
/// Fields are attributes (`record.temperature`), items (`record["temperature"]`) and
/// what iteration yields; each is a `Field` with a value and status flags.
#[pyclass(frozen, generic, module = "flexible_shared_memory", name = "Record")]
pub struct Record {
    snap: Reusable<Snap>,
    schema: Arc<Schema>,
}

/// A record's snapshot and what the read reported.
pub struct Snap {
    /// Taken only when the record is freed.
    buf: Option<Box<SnapBuf>>,
    info: ReadInfo,
}

impl Snap {
    /// A filled snapshot buffer and its read's report.
    pub fn new(buf: Box<SnapBuf>, info: ReadInfo) -> Snap {
        Snap {
            buf: Some(buf),
            info,
        }
    }

    /// Gives the buffer back to `pool` for the next read (dropped if one is parked
    /// already).
    pub fn recycle(mut self, py: Python<'_>, pool: &Pool) {
        if let Some(buf) = self.buf.take() {
            let _ = pool.put(py, buf);
        }
    }
}

impl Reuse for Record {
    type State = Snap;
    fn state_cell(&self) -> &Reusable<Snap> {
        &self.snap
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Give the buffer back for the next read (dropped if one is parked already).
        // Records are freed by the interpreter, so this thread is attached already and
        // `attach` costs a thread-local look-up.
        if let Some(buf) = self.snap.get_mut().buf.take() {
            Python::attach(|py| {
                let _ = self.schema.pool.put(py, buf);
            });
        }
    }
}

impl Record {
    /// A record over a filled snapshot buffer.
    pub fn new(buf: Box<SnapBuf>, info: ReadInfo, schema: Arc<Schema>) -> Record {
        Record::from_snap(Snap::new(buf, info), schema)
    }

    /// A record over a snapshot.
    pub fn from_snap(snap: Snap, schema: Arc<Schema>) -> Record {
        Record {
            snap: Reusable::new(snap),
            schema,
        }
    }

    /// What the read reported.
    pub fn info(&self) -> &ReadInfo {
        &self.snap.get().info
    }

    /// Field `index`, for an attribute or item look-up. Reuses the `Field` object the
    /// handle's records handed out last when nothing holds it any more
    /// (`crate::spare::Parked`), so that `rec.a.value + rec.b.value` allocates no
    /// `Field` at all once the handle has made one.
    fn field<'py>(slf: &Bound<'py, Record>, index: usize) -> PyResult<Bound<'py, Field>> {
        let py = slf.py();
        let r = slf.get();
        let written = r.info().status(index).written;
        if !written || matches!(r.schema.layout.fields()[index].kind, Kind::Array { .. }) {
            // Never parked: an array value is a view of this record, which would then
            // live as long as the handle; a default value is the program's own object,
            // which could refer back to the handle in a cycle the garbage collector
            // cannot see through the handle's Rust fields.
            return Bound::new(py, Field::from_state(FieldState::of(slf, index)?));
        }
        // Computed first: it may run Python code (a default factory, a NumPy scalar
        // type), which may look up fields of this record itself.
        let state = FieldState::of(slf, index)?;
        let state = match r.schema.last_fields.reuse(py, state) {
            Ok((field, old)) => {
                // Released last: dropping the old value may run Python code. Released
                // as a `Bound`, whose drop is a plain decrement: dropping a `Py` first
                // asks a thread-local whether this thread is attached (a call through
                // `__tls_get_addr` in an extension module).
                drop(old.value.into_bound(py));
                return Ok(field);
            }
            Err(state) => state,
        };
        let field = Bound::new(py, Field::from_state(state))?;
        r.schema.last_fields.park(&field);
        Ok(field)
    }

    fn bytes(&self) -> &[u8] {
        self.snap
            .get()
            .buf
            .as_deref()
            .map(SnapBuf::bytes)
            .unwrap_or(&[])
    }

    fn index_of(&self, name: &Bound<'_, PyAny>) -> Option<usize> {
        // An unhashable key is simply not a field name.
        self.schema.field_index(name).ok().flatten()
    }
}

/// The value of field `i` of `rec`: decoded from the snapshot, or the record class's
/// default if the field was never written.
pub fn field_value<'py>(rec: &Bound<'py, Record>, i: usize) -> PyResult<Bound<'py, PyAny>> {
    let py = rec.py();
    // Python code may run below (a default factory, a NumPy scalar type, a garbage
    // collection at any allocation) while the snapshot is borrowed: our own reference
    // keeps `Parked::reuse` from giving this record a new snapshot meanwhile, even when
    // the caller holds only a borrowed one (CPython calls some methods that way).
    let _held = rec.clone();
    let r = rec.get();
    let schema = &r.schema;
    if !r.info().status(i).written {
        return match &schema.defaults[i] {
            FieldDefault::Value(v) => Ok(v.bind(py).clone()),
            FieldDefault::Factory(f) => f.bind(py).call0(),
            FieldDefault::Zero => zero_value(py, schema, i),
        };
    }
    let value = Snapshot::<Dynamic>::new(r.bytes(), &schema.layout, *r.info())
        .get(i)
        .map_err(|e| PyValueError::new_err(format!("segment '{}': {e}", schema.segment)))?;
    let obj = match value {
        FieldValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        FieldValue::Int(v) => v.into_pyobject(py)?.into_any(),
        FieldValue::UInt(v) => v.into_pyobject(py)?.into_any(),
        FieldValue::Float(v) => v.into_pyobject(py)?.into_any(),
        FieldValue::Str(s) => PyString::new(py, s).into_any(),
        FieldValue::Array { dtype, rows, bytes } => {
            let Kind::Array { dims, .. } = schema.layout.fields()[i].kind else {
                return Err(PyValueError::new_err("array value in a non-array field"));
            };
            let mut shape: Vec<usize> = dims.as_slice().iter().map(|&d| d as usize).collect();
            shape[0] = rows;
            return array_view(rec, dtype, &shape, bytes.as_ptr());
        }
    };
    match &schema.scalar_types[i] {
        Some(t) => t.bind(py).call1((obj,)),
        None => Ok(obj),
    }
}

/// The value an unwritten field without a default reads as: the type's zero.
fn zero_value<'py>(py: Python<'py>, schema: &Schema, i: usize) -> PyResult<Bound<'py, PyAny>> {
    let obj = match schema.layout.fields()[i].kind {
        Kind::Scalar(Dtype::Bool) => false.into_pyobject(py)?.to_owned().into_any(),
        Kind::Scalar(d) if d.is_float() => 0.0f64.into_pyobject(py)?.into_any(),
        Kind::Scalar(_) => 0i64.into_pyobject(py)?.into_any(),
        Kind::Str { .. } => PyString::new(py, "").into_any(),
        Kind::Array { dtype, dims } => {
            let shape: Vec<usize> = dims.as_slice().iter().map(|&d| d as usize).collect();
            let np = py.import("numpy")?;
            return np.call_method1("zeros", (PyTuple::new(py, shape)?, descr(py, dtype)));
        }
    };
    match &schema.scalar_types[i] {
        Some(t) => t.bind(py).call1((obj,)),
        None => Ok(obj),
    }
}

/// A read-only NumPy array of `shape` over `data`, which points into `rec`'s snapshot;
/// the array holds a reference to `rec`, which keeps the bytes alive.
fn array_view<'py>(
    rec: &Bound<'py, Record>,
    dtype: Dtype,
    shape: &[usize],
    data: *const u8,
) -> PyResult<Bound<'py, PyAny>> {
    let py = rec.py();
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    let descr_ptr = descr(py, dtype).into_dtype_ptr();
    // SAFETY:
    // - `data` points at `product(shape) * dtype.size()` bytes inside `rec`'s snapshot
    //   buffer (`decode_field` checked the stored length against the field's capacity and
    //   the buffer), aligned to the element size (slot offsets are, the buffer is 8-aligned);
    // - the buffer is never written after the read that filled it and is freed only when
    //   `rec` is dropped; the base object set below keeps `rec` alive as long as the array;
    // - flags 0 makes the array read-only, so NumPy never writes through `data`;
    // - `PyArray_NewFromDescr` steals the dtype reference and `PyArray_SetBaseObject`
    //   steals the record reference (also on failure), so no reference leaks.
    unsafe {
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            descr_ptr,
            dims.len() as std::os::raw::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data as *mut std::os::raw::c_void,
            0,
            std::ptr::null_mut(),
        );
        if arr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let arr = Bound::from_owned_ptr(py, arr);
        let base = rec.clone().into_any().into_ptr();
        if PY_ARRAY_API.PyArray_SetBaseObject(py, arr.as_ptr().cast(), base) != 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(arr)
    }
}

#[pymethods]
impl Record {
    /// Commit number of this record (0: the empty record of a fresh single-slot segment).
    #[getter]
    fn commit(&self) -> u32 {
        self.info().commit
    }

    /// FIFO mode: records this reader lost to a lapping writer just before this one
    /// (they were overwritten before it read them). Always 0 in single-slot mode.
    #[getter]
    fn lost(&self) -> u32 {
        self.info().lost
    }

    /// Fields first (one dict lookup, no exception on the way), then the record's own
    /// attributes. The record's attribute names (`commit`, `lost`, `as_dict`,
    /// `as_dataclass`) win; a field named like one is reached with `record["name"]`.
    fn __getattribute__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // `commit`, the attribute a polling loop looks at after every read: no look-up
        // of the name at all when it is the interned string (as in `record.commit`).
        if name.is(pyo3::intern!(py, "commit")) {
            return Ok(slf.get().info().commit.into_pyobject(py)?.into_any());
        }
        if let Some(index) = slf.get().index_of(name.as_any()) {
            if !slf.get().schema.reserved[index] {
                return Ok(Record::field(slf, index)?.into_any());
            }
        }
        // SAFETY: both pointers are valid, owned by the Bound references for the call;
        // PyObject_GenericGetAttr returns a new reference or NULL with an exception set,
        // which `from_owned_ptr_or_err` takes over.
        unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                pyo3::ffi::PyObject_GenericGetAttr(slf.as_ptr(), name.as_ptr()),
            )
        }
    }

    /// Called when `__getattribute__` found nothing: say which record lacks the field.
    fn __getattr__(&self, name: &Bound<'_, PyString>) -> PyResult<()> {
        Err(PyAttributeError::new_err(format!(
            "{} record has no field {}",
            self.schema.type_name,
            name.repr()?
        )))
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Field>> {
        match slf.get().index_of(name) {
            Some(index) => Record::field(slf, index),
            None => Err(PyKeyError::new_err(name.clone().unbind())),
        }
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> bool {
        self.index_of(name).is_some()
    }

    fn __len__(&self) -> usize {
        self.schema.layout.len()
    }

    /// The fields in declaration order.
    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        // Every field from one snapshot (see `field_value`).
        let _held = slf.clone();
        let fields = (0..slf.get().schema.layout.len())
            .map(|index| FieldState::of(slf, index).map(Field::from_state))
            .collect::<PyResult<Vec<Field>>>()?;
        PyList::new(slf.py(), fields)?
            .try_iter()
            .map(|i| i.into_any())
    }

    fn __dir__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let py = slf.py();
        let names = PyList::new(py, crate::schema::RESERVED)?;
        let schema = &slf.get().schema;
        // A field named like a record attribute is listed once, as the attribute.
        for (n, reserved) in schema.names.iter().zip(&schema.reserved) {
            if !reserved {
                names.append(n.bind(py))?;
            }
        }
        Ok(names)
    }

    /// `{field name: value}` for every field (unwritten fields give their default).
    fn as_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        // Every value from one snapshot (see `field_value`).
        let _held = slf.clone();
        let d = PyDict::new(py);
        for (i, n) in slf.get().schema.names.iter().enumerate() {
            d.set_item(n.bind(py), field_value(slf, i)?)?;
        }
        Ok(d)
    }

    /// An instance of the record class the handle was opened with, built from the
    /// field values (unwritten fields give their default).
    fn as_dataclass<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = Record::as_dict(slf)?;
        slf.get()
            .schema
            .record_type
            .bind(slf.py())
            .call((), Some(&kwargs))
    }

    /// Pickling: a record pickles as its plain values and its class, and unpickles as
    /// `cls(**values)`, the instance `as_dataclass()` gives. The pickle holds
    /// `functools.partial(cls, **values)`: nothing of this package or of the handle,
    /// whose snapshot belongs to this process.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        if slf.get().schema.generated {
            // A class generated by `SharedMemory.open()` cannot be imported by name; its
            // instances pickle as the layout and the values (see `_schema.py`).
            return Record::as_dataclass(slf)?
                .call_method0("__reduce__")?
                .cast_into::<PyTuple>()
                .map_err(Into::into);
        }
        let values = Record::as_dict(slf)?;
        let build = py
            .import("functools")?
            .getattr("partial")?
            .call((slf.get().schema.record_type.bind(py),), Some(&values))?;
        PyTuple::new(py, [build.into_any(), PyTuple::empty(py).into_any()])
    }

    /// A record never changes, so a copy is the record itself (as for a tuple); only
    /// pickling turns it into the record class's instance.
    fn __copy__(slf: &Bound<'_, Self>) -> Py<Self> {
        slf.clone().unbind()
    }

    fn __deepcopy__(slf: &Bound<'_, Self>, memo: &Bound<'_, PyAny>) -> Py<Self> {
        let _ = memo; // nothing inside needs copying
        slf.clone().unbind()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        // One snapshot for the whole text (see `field_value`).
        let _held = slf.clone();
        let r = slf.get();
        let mut parts = Vec::new();
        for i in 0..r.schema.layout.len() {
            parts.push(format!(
                "{}={}",
                r.schema.layout.fields()[i].name,
                Field::describe(
                    &r.schema.layout.fields()[i],
                    r.info().status(i),
                    &field_value(slf, i)?
                )?
            ));
        }
        let lost = if r.schema.fifo {
            format!(", lost={}", r.info().lost)
        } else {
            String::new()
        };
        Ok(format!(
            "<{} record #{}{lost}: {}>",
            r.schema.type_name,
            r.info().commit,
            parts.join(", ")
        ))
    }
}

/// One field of a record: its value and status.
#[pyclass(frozen, generic, module = "flexible_shared_memory", name = "Field")]
pub struct Field {
    state: Reusable<FieldState>,
}

impl Reuse for Field {
    type State = FieldState;
    fn state_cell(&self) -> &Reusable<FieldState> {
        &self.state
    }
}

/// What a `Field` says about its field. It refers to neither the handle nor the record
/// (an array value is a view whose base object is the record, which keeps the record's
/// bytes alive), so a field parked in a handle's schema makes no reference cycle.
pub struct FieldState {
    def: FieldDef,
    status: FieldStatus,
    /// The value: float, int, bool, str, a NumPy scalar for fields annotated with a dtype
    /// name, or a read-only NumPy array viewing the record. An unwritten field gives the
    /// record class's default.
    value: Py<PyAny>,
}

impl FieldState {
    /// Field `index` of `rec`, its value decoded now.
    fn of(rec: &Bound<'_, Record>, index: usize) -> PyResult<FieldState> {
        let r = rec.get();
        Ok(FieldState {
            def: r.schema.layout.fields()[index],
            status: r.info().status(index),
            value: field_value(rec, index)?.unbind(),
        })
    }
}

impl Field {
    /// A new field object with `state`.
    fn from_state(state: FieldState) -> Field {
        Field {
            state: Reusable::new(state),
        }
    }

    fn status(&self) -> FieldStatus {
        self.state.get().status
    }

    fn def(&self) -> &FieldDef {
        &self.state.get().def
    }

    /// The error of every comparison, arithmetic operator and `hash` on an array field.
    fn array_operand_error(&self) -> PyErr {
        let f = self.def();
        PyTypeError::new_err(format!(
            "Field '{}' is an array ({}): compare or compute with field.value (a NumPy array)",
            f.name, f.kind
        ))
    }

    /// The value as an operand of a comparison or arithmetic: scalars and strings only
    /// (decided by the field's type, so an unwritten array field is refused as well).
    fn operand<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if matches!(self.def().kind, Kind::Array { .. }) {
            return Err(self.array_operand_error());
        }
        Ok(self.get_value(py))
    }

    /// The value, shortened for reprs, and the flags that are not the happy case.
    fn describe(def: &FieldDef, st: FieldStatus, value: &Bound<'_, PyAny>) -> PyResult<String> {
        let shown = if let Kind::Array { dtype, .. } = def.kind {
            match value.getattr("shape") {
                Ok(shape) => format!("{}{}", dtype.name(), shape.repr()?),
                Err(_) => value.repr()?.to_string(),
            }
        } else {
            value.repr()?.to_string()
        };
        let mut flags = Vec::new();
        if !st.written {
            flags.push("unwritten");
        }
        if st.truncated {
            flags.push("truncated");
        }
        if st.modified {
            flags.push("modified");
        }
        Ok(if flags.is_empty() {
            shown
        } else {
            format!("{shown} ({})", flags.join(", "))
        })
    }
}

/// Any Python object (keeps the operator methods below on one line each).
type Obj<'py> = Bound<'py, PyAny>;

/// The other operand of a binary operator: a `Field` stands for its value.
fn other_operand<'py>(other: &Obj<'py>) -> PyResult<Obj<'py>> {
    match other.cast::<Field>() {
        Ok(f) => f.get().operand(other.py()),
        Err(_) => Ok(other.clone()),
    }
}

/// The docstring of `Field.value`.
const VALUE_DOC: &std::ffi::CStr = c"The value: float, int, bool, str, a NumPy scalar for fields annotated with a dtype name, or a read-only NumPy array viewing the record. An unwritten field gives the record class's default.";

/// Makes `Field.value` a member descriptor: the interpreter loads the value's pointer
/// from the object itself (CPython 3.11 and later specialise `field.value` to a load at
/// a fixed offset), where a getter is a call into the extension through pyo3's
/// trampoline, about 12 ns more per value. Called once, when the module loads.
pub fn install_value_member(py: Python<'_>) -> PyResult<()> {
    // The offset of `FieldState::value` in a `Field` object: the same for every object
    // of the class (pyo3 lays each one out as one `PyClassObject<Field>`), measured on
    // one.
    let sample = Bound::new(
        py,
        Field::from_state(FieldState {
            def: FieldDef::new("value", Kind::Scalar(Dtype::Bool)),
            status: FieldStatus {
                written: false,
                truncated: false,
                modified: false,
            },
            value: py.None(),
        }),
    )?;
    let base = sample.as_ptr() as usize;
    let at = &sample.get().state.get().value as *const Py<PyAny> as usize;
    let size = std::mem::size_of::<Py<PyAny>>();
    let basic = sample
        .get_type()
        .getattr("__basicsize__")?
        .extract::<usize>()?;
    // `Py<PyAny>` is one object pointer (pyo3 exposes `#[pyo3(get)]` fields of type
    // `Py<T>` as such members itself).
    let fits = size == std::mem::size_of::<*mut pyo3::ffi::PyObject>()
        && at >= base
        && at - base + size <= basic
        && (at - base).is_multiple_of(std::mem::align_of::<*mut pyo3::ffi::PyObject>());
    if !fits {
        // Keep the getter: nothing is lost but speed.
        return Ok(());
    }
    // The member definition must outlive the type: it lives as long as the process.
    let def: &'static mut pyo3::ffi::PyMemberDef = Box::leak(Box::new(pyo3::ffi::PyMemberDef {
        name: c"value".as_ptr(),
        type_code: pyo3::ffi::Py_T_OBJECT_EX,
        offset: (at - base) as pyo3::ffi::Py_ssize_t,
        flags: pyo3::ffi::Py_READONLY,
        doc: VALUE_DOC.as_ptr(),
    }));
    let ty = py.get_type::<Field>();
    // SAFETY: `ty` is a live type object and `def` a valid member definition that is
    // never freed. The member reads the `Py<PyAny>` at `def.offset` of a `Field` (checked
    // above to lie inside the object and to be one aligned object pointer), which is
    // never null: every `FieldState` holds a value. `Parked::reuse` replaces it only
    // while the parking cell holds the only owned reference; a read through the member
    // runs no Python code and attached threads take turns (the GIL), so no read of the
    // member can overlap the replacement.
    // PyDescr_NewMember returns a new reference or NULL with an exception set.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyDescr_NewMember(ty.as_type_ptr(), def))
    }?;
    ty.setattr("value", descr)
}

#[pymethods]
impl Field {
    /// The value: float, int, bool, str, a NumPy scalar for fields annotated with a dtype
    /// name, or a read-only NumPy array viewing the record. An unwritten field gives the
    /// record class's default. (`install_value_member` replaces this getter with a
    /// member descriptor that reads the same object.)
    #[getter(value)]
    fn get_value<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.state.get().value.bind(py).clone()
    }

    /// The field's name.
    #[getter]
    fn name<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.def().name.as_str())
    }

    /// Written and not truncated: the value is exactly what the writer wrote.
    #[getter]
    fn valid(&self) -> bool {
        self.status().valid()
    }

    /// Written in the record read (with `reset_modified=True`: since this handle's
    /// previous such read).
    #[getter]
    fn modified(&self) -> bool {
        self.status().modified
    }

    /// The last value written did not fit (too many characters or rows) and was cut.
    #[getter]
    fn truncated(&self) -> bool {
        self.status().truncated
    }

    /// Never written since the segment was created.
    #[getter]
    fn unwritten(&self) -> bool {
        self.status().unwritten()
    }

    fn __float__(&self, py: Python<'_>) -> PyResult<f64> {
        self.get_value(py).extract()
    }

    fn __int__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.get_type::<pyo3::types::PyInt>()
            .call1((self.get_value(py),))
    }

    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        self.get_value(py).is_truthy()
    }

    /// NumPy's array protocol (NumPy 2 passes `copy`; NumPy 1.26 never does).
    /// `copy=True`: a new array. `copy=None`: the value itself when it already is an
    /// array of the asked dtype, else a converted copy. `copy=False`: never copies; an
    /// array field gives its read-only view of the record, anything that would need a
    /// copy (another dtype, a scalar or string value) is a `ValueError`.
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Copied first: the calls below run Python code (see `Field::__repr__`).
        let def = *self.def();
        let value = self.get_value(py);
        match copy {
            Some(true) => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("dtype", dtype)?;
                kwargs.set_item("copy", true)?;
                py.import("numpy")?
                    .getattr("array")?
                    .call((value,), Some(&kwargs))
            }
            Some(false) => {
                let no_copy_error = |why: String| {
                    PyValueError::new_err(format!(
                        "Field '{}': cannot make a NumPy array without copying (copy=False): {why}",
                        def.name
                    ))
                };
                let Ok(stored) = value.cast::<PyUntypedArray>() else {
                    return Err(no_copy_error(format!(
                        "its value is a {}, not an array",
                        value.get_type().name()?
                    )));
                };
                if let Some(asked) = &dtype {
                    let asked = np_dtype(py)?.call1((asked,))?;
                    if !stored.dtype().eq(&asked)? {
                        return Err(no_copy_error(format!(
                            "it holds {}, {} was asked for",
                            stored.dtype().str()?,
                            asked.str()?
                        )));
                    }
                }
                Ok(value)
            }
            None => np_asarray(py)?.call1((value, dtype)),
        }
    }

    /// NumPy gives binary operators with a `Field` on the right to the field's reflected
    /// method instead of turning the field into an array first, so `ndarray + field` and
    /// `ndarray == field` follow the field's rules (an array field raises `TypeError`).
    #[classattr]
    fn __array_priority__() -> f64 {
        1000.0
    }

    /// Comparisons compare the value (scalar and string fields); array fields raise
    /// `TypeError`. Another `Field` as the other operand stands for its value.
    fn __richcmp__<'py>(
        &self,
        py: Python<'py>,
        other: &Obj<'py>,
        op: CompareOp,
    ) -> PyResult<Obj<'py>> {
        self.operand(py)?.rich_compare(other_operand(other)?, op)
    }

    /// The value's hash, consistent with `==` (array fields are not hashable).
    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        self.operand(py)?.hash()
    }

    // Arithmetic computes with the value (scalar and string fields) and returns a plain
    // value; array fields raise `TypeError`. A `Field` operand stands for its value.
    fn __add__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.add(other_operand(other)?)
    }

    fn __radd__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.add(self.operand(py)?)
    }

    fn __sub__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.sub(other_operand(other)?)
    }

    fn __rsub__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.sub(self.operand(py)?)
    }

    fn __mul__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.mul(other_operand(other)?)
    }

    fn __rmul__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.mul(self.operand(py)?)
    }

    fn __truediv__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.div(other_operand(other)?)
    }

    fn __rtruediv__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.div(self.operand(py)?)
    }

    fn __floordiv__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.floor_div(other_operand(other)?)
    }

    fn __rfloordiv__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.floor_div(self.operand(py)?)
    }

    fn __mod__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.rem(other_operand(other)?)
    }

    fn __rmod__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.rem(self.operand(py)?)
    }

    fn __divmod__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.divmod(other_operand(other)?)
    }

    fn __rdivmod__<'py>(&self, py: Python<'py>, other: &Obj<'py>) -> PyResult<Obj<'py>> {
        other_operand(other)?.divmod(self.operand(py)?)
    }

    /// `field ** x` and `pow(field, x, mod)` (`modulo` is `None` for `**`).
    fn __pow__<'py>(
        &self,
        py: Python<'py>,
        other: &Obj<'py>,
        modulo: &Obj<'py>,
    ) -> PyResult<Obj<'py>> {
        let modulo = other_operand(modulo)?;
        self.operand(py)?.pow(other_operand(other)?, modulo)
    }

    fn __rpow__<'py>(
        &self,
        py: Python<'py>,
        other: &Obj<'py>,
        modulo: &Obj<'py>,
    ) -> PyResult<Obj<'py>> {
        let modulo = other_operand(modulo)?;
        other_operand(other)?.pow(self.operand(py)?, modulo)
    }

    fn __neg__<'py>(&self, py: Python<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.neg()
    }

    fn __pos__<'py>(&self, py: Python<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.pos()
    }

    fn __abs__<'py>(&self, py: Python<'py>) -> PyResult<Obj<'py>> {
        self.operand(py)?.abs()
    }

    /// `round(field)` / `round(field, ndigits)` of the value.
    #[pyo3(signature = (ndigits=None))]
    fn __round__<'py>(&self, py: Python<'py>, ndigits: Option<&Obj<'py>>) -> PyResult<Obj<'py>> {
        let round = py.import("builtins")?.getattr("round")?;
        match ndigits {
            Some(n) => round.call1((self.operand(py)?, n)),
            None => round.call1((self.operand(py)?,)),
        }
    }

    fn __str__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.get_value(py).str()?.to_string())
    }

    fn __format__(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        self.get_value(py)
            .call_method1("__format__", (spec,))?
            .extract::<String>()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        // Copied before any Python code runs (the value's repr): a caller holding only a
        // borrowed reference may let this field be reused meanwhile, and no borrow of the
        // state may be alive then.
        let (def, status, value) = {
            let st = self.state.get();
            (st.def, st.status, st.value.clone_ref(py))
        };
        Ok(format!(
            "<Field {}={}>",
            def.name,
            Field::describe(&def, status, value.bind(py))?
        ))
    }
}
