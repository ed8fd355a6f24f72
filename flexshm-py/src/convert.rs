//! Python values to field values, checked before anything is written.
//!
//! `stage` turns one keyword argument of `write()` into an owned [`Staged`] value,
//! raising an exception that names the field if it does not fit. Only when every argument
//! has been staged does the writer touch shared memory, so a write is all-or-nothing.

use flexshm_core::{ArrayRef, Dtype, FieldDef, Kind, Name, Value, MAX_DIMS};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFloatingPointError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple};

/// A value ready to be written: scalars by value, strings as UTF-8, arrays as a
/// C-contiguous NumPy array of exactly the field's dtype (kept alive here).
pub enum Staged<'py> {
    /// A bool, integer or float field: `Value::Bool`, `Int`, `UInt` or `Float`.
    Scalar(Value<'static>),
    /// A string field: the `str`'s own UTF-8 buffer, no copy.
    Str(PyBackedStr),
    /// An array field.
    Array {
        /// The contiguous array of the field's dtype.
        array: Bound<'py, PyUntypedArray>,
        /// Its dtype.
        dtype: Dtype,
        /// Its shape.
        shape: Vec<usize>,
    },
}

impl Staged<'_> {
    /// Bytes the value occupies (used to decide whether to release the GIL while copying).
    pub fn byte_len(&self) -> usize {
        match self {
            Staged::Str(s) => s.len(),
            Staged::Array { array, dtype, .. } => array.len() * dtype.size() as usize,
            _ => 8,
        }
    }

    /// True if no Python code can reach the value's bytes: scalars and strings (owned
    /// here), and arrays that staging made itself (a cast or a contiguous copy: they own
    /// their data and nothing else refers to them). The caller's own array, or a view of
    /// any array, may be written by another Python thread at any moment.
    pub fn is_private(&self) -> bool {
        match self {
            Staged::Array { array, .. } => {
                // SAFETY: `array` is a live NumPy array (checked by the cast in
                // `stage_array`) that `self` keeps alive, so its fields can be read, and
                // the GIL is held (`self` holds a `Bound`), so its reference count is
                // stable while we look.
                let (flags, refs) = unsafe {
                    let fields = numpy::npyffi::_PyArray_GET_ITEM_DATA(array.as_array_ptr());
                    ((*fields).flags, pyo3::ffi::Py_REFCNT(array.as_ptr()))
                };
                // Only this `Bound` refers to it, and no other array lends it memory.
                flags & numpy::npyffi::NPY_ARRAY_OWNDATA != 0 && refs == 1
            }
            _ => true,
        }
    }

    /// The core's view of the value, borrowing from `self`.
    pub fn value(&self) -> Value<'_> {
        match self {
            Staged::Scalar(v) => *v,
            Staged::Str(s) => Value::Str(s.as_ref()),
            Staged::Array {
                array,
                dtype,
                shape,
            } => {
                let nbytes = array.len() * dtype.size() as usize;
                let bytes: &[u8] = if nbytes == 0 {
                    &[]
                } else {
                    // SAFETY:
                    // - `array` is a C-contiguous NumPy array of `dtype` (checked in
                    //   `stage_array`), so its data pointer addresses `nbytes` readable bytes;
                    // - `self` holds a reference to it, so it is neither freed nor resized
                    //   (NumPy refuses to resize an array that others reference) while the
                    //   returned slice, which borrows `self`, lives;
                    // - nothing writes it while the slice lives: `write()` keeps the GIL
                    //   held while the core copies an array that is not private to the
                    //   call (`is_private`), so no other Python thread runs meanwhile.
                    //   (Native code that writes an array after releasing the GIL, such as
                    //   a NumPy operation in another thread, races with every reader of
                    //   that array, this one included; that is the caller's to avoid.)
                    unsafe {
                        let fields = numpy::npyffi::_PyArray_GET_ITEM_DATA(array.as_array_ptr());
                        let data = (*fields).data as *const u8;
                        std::slice::from_raw_parts(data, nbytes)
                    }
                };
                // The shape has at most MAX_DIMS entries (checked in stage_array).
                let value = ArrayRef::new(*dtype, shape, bytes);
                debug_assert!(value.is_some());
                value.map(Value::Array).unwrap_or(Value::Bool(false))
            }
        }
    }
}

fn numpy_fn<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("numpy")?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py).clone())
}

/// `numpy.asarray`.
pub fn np_asarray(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    numpy_fn(py, &F, "asarray")
}

/// `numpy.dtype`.
pub fn np_dtype(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    numpy_fn(py, &F, "dtype")
}

/// `numpy.can_cast`.
fn np_can_cast(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    numpy_fn(py, &F, "can_cast")
}

/// `numpy.ascontiguousarray`.
fn np_ascontiguousarray(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    numpy_fn(py, &F, "ascontiguousarray")
}

/// `numpy.errstate`.
fn np_errstate(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    numpy_fn(py, &F, "errstate")
}

/// Calls `f` inside `with numpy.errstate(over=over):`.
fn with_overflow<'py, T>(
    py: Python<'py>,
    over: &str,
    f: impl FnOnce() -> PyResult<T>,
) -> PyResult<T> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("over", over)?;
    let state = np_errstate(py)?.call((), Some(&kwargs))?;
    state.call_method0("__enter__")?;
    let res = f();
    let none = py.None();
    state.call_method1("__exit__", (&none, &none, &none))?;
    res
}

/// The NumPy dtype object of a field dtype.
pub fn descr(py: Python<'_>, d: Dtype) -> Bound<'_, PyArrayDescr> {
    match d {
        Dtype::Bool => numpy::dtype::<bool>(py),
        Dtype::I8 => numpy::dtype::<i8>(py),
        Dtype::I16 => numpy::dtype::<i16>(py),
        Dtype::I32 => numpy::dtype::<i32>(py),
        Dtype::I64 => numpy::dtype::<i64>(py),
        Dtype::U8 => numpy::dtype::<u8>(py),
        Dtype::U16 => numpy::dtype::<u16>(py),
        Dtype::U32 => numpy::dtype::<u32>(py),
        Dtype::U64 => numpy::dtype::<u64>(py),
        Dtype::F32 => numpy::dtype::<f32>(py),
        Dtype::F64 => numpy::dtype::<f64>(py),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn int_range(d: Dtype) -> (i128, i128) {
    match d {
        Dtype::I8 => (i8::MIN.into(), i8::MAX.into()),
        Dtype::I16 => (i16::MIN.into(), i16::MAX.into()),
        Dtype::I32 => (i32::MIN.into(), i32::MAX.into()),
        Dtype::I64 => (i64::MIN.into(), i64::MAX.into()),
        Dtype::U8 => (0, u8::MAX.into()),
        Dtype::U16 => (0, u16::MAX.into()),
        Dtype::U32 => (0, u32::MAX.into()),
        _ => (0, u64::MAX.into()),
    }
}

/// The `TypeError` for a value of the wrong type, naming the field.
#[cold]
fn wrong_type(f: &FieldDef, obj: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "field '{}' is {}: expected {expected}, got {} {}",
        f.name,
        f.kind,
        type_name(obj),
        obj.repr().map(|r| r.to_string()).unwrap_or_default()
    ))
}

/// The `ValueError` for a `str` that has no UTF-8 form (a lone surrogate), with the
/// encoder's error as its cause.
#[cold]
fn not_utf8(f: &FieldDef, obj: &Bound<'_, PyAny>, e: PyErr) -> PyErr {
    let err = PyValueError::new_err(format!(
        "field '{}': the string cannot be stored as UTF-8 ({})",
        f.name,
        e.value(obj.py())
    ));
    err.set_cause(obj.py(), Some(e));
    err
}

/// Converts `obj` for field `f`, or raises an exception naming the field.
pub fn stage<'py>(f: &FieldDef, obj: &Bound<'py, PyAny>) -> PyResult<Staged<'py>> {
    match f.kind {
        Kind::Scalar(_) => {
            let mut v = Value::Bool(false);
            stage_scalar(f, obj, &mut v)?;
            Ok(Staged::Scalar(v))
        }
        Kind::Str { .. } => {
            let s = obj
                .cast::<PyString>()
                .map_err(|_| wrong_type(f, obj, "a str"))?;
            PyBackedStr::try_from(s.clone())
                .map(Staged::Str)
                .map_err(|e| not_utf8(f, obj, e))
        }
        Kind::Array { dtype, dims } => stage_array(f, dtype, dims.as_slice(), obj),
    }
}

/// [`stage`] for a scalar or string field, into `out`, borrowing a string's UTF-8 from
/// `obj` (which the caller keeps alive for `'a`, as CPython does a call's arguments)
/// instead of taking a reference to it. `false`, with `out` unchanged, for an array
/// field, which needs [`stage`]. The checks and errors are `stage`'s.
///
/// The value is stored in place: a `Value` returned through a `Result` is copied with
/// wider loads than the stores that made it, which stalls the copy (store forwarding).
#[inline]
pub fn stage_direct<'a>(
    f: &FieldDef,
    obj: Borrowed<'a, '_, PyAny>,
    out: &mut Value<'a>,
) -> PyResult<bool> {
    match f.kind {
        Kind::Scalar(_) => stage_scalar(f, &obj, out).map(|()| true),
        Kind::Str { .. } => {
            if !obj.is_instance_of::<PyString>() {
                return Err(wrong_type(f, &obj, "a str"));
            }
            *out = Value::Str(obj.extract::<&'a str>().map_err(|e| not_utf8(f, &obj, e))?);
            Ok(true)
        }
        Kind::Array { .. } => Ok(false),
    }
}

/// A scalar field's value, into `out`: `Bool`, `Int`, `UInt` or `Float`.
#[inline]
fn stage_scalar(f: &FieldDef, obj: &Bound<'_, PyAny>, out: &mut Value<'_>) -> PyResult<()> {
    // Shown only in errors (`Name`'s `Display`): no UTF-8 check per staged value.
    let name = &f.name;
    match f.kind {
        Kind::Scalar(Dtype::Bool) => {
            *out = Value::Bool(
                obj.extract::<bool>()
                    .map_err(|_| wrong_type(f, obj, "a bool"))?,
            );
        }
        Kind::Scalar(d) if d.is_float() => {
            if obj.is_instance_of::<PyString>() {
                return Err(wrong_type(f, obj, "a number"));
            }
            let v = obj.extract::<f64>().map_err(|e| {
                if e.is_instance_of::<PyOverflowError>(obj.py()) {
                    PyOverflowError::new_err(format!("field '{name}': {e}"))
                } else {
                    wrong_type(f, obj, "a number")
                }
            })?;
            // A finite value that a float32 field would store as infinity is out of range,
            // like an integer beyond its field's range (inf and nan themselves are fine).
            if d == Dtype::F32 && v.is_finite() && (v as f32).is_infinite() {
                return Err(PyOverflowError::new_err(format!(
                    "field '{name}': {v:e} is out of range for float32 (largest finite magnitude {:e})",
                    f32::MAX
                )));
            }
            *out = Value::Float(v);
        }
        Kind::Scalar(d) => {
            *out = stage_int(name, d, obj).map_err(|e| {
                if e.is_instance_of::<PyOverflowError>(obj.py()) {
                    e
                } else {
                    wrong_type(f, obj, "an integer")
                }
            })?;
        }
        Kind::Str { .. } | Kind::Array { .. } => return Err(wrong_type(f, obj, "a field value")),
    }
    Ok(())
}

fn stage_int(name: &Name, d: Dtype, obj: &Bound<'_, PyAny>) -> PyResult<Value<'static>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("not an integer"));
    }
    let (lo, hi) = int_range(d);
    let out_of_range = |shown: String| {
        PyOverflowError::new_err(format!(
            "field '{name}': {shown} is out of range for {} ({lo}..={hi})",
            d.name()
        ))
    };
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Int(b.is_true() as i64));
    }
    match obj.extract::<i64>() {
        Ok(v) if (lo..=hi).contains(&(v as i128)) => Ok(Value::Int(v)),
        Ok(v) => Err(out_of_range(v.to_string())),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => match obj.extract::<u64>() {
            Ok(v) if (v as i128) <= hi => Ok(Value::UInt(v)),
            _ => Err(out_of_range(
                obj.str().map(|s| s.to_string()).unwrap_or_default(),
            )),
        },
        Err(e) => Err(e),
    }
}

fn shape_text(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// `arr.astype(target)` from one float dtype to another, where a finite element that
/// would become infinite (a float64 beyond ±3.4e38 into float32) is an `OverflowError`
/// naming the field. NumPy raises the overflow flag during the cast itself, so the check
/// costs no extra pass over the data; only the error path looks for the element.
fn cast_float_checked<'py>(
    f: &FieldDef,
    arr: &Bound<'py, PyUntypedArray>,
    target: &Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = arr.py();
    let cast = || arr.call_method1("astype", (target,));
    match with_overflow(py, "raise", cast) {
        Ok(out) => Ok(out.cast_into::<PyUntypedArray>()?),
        Err(e) if e.is_instance_of::<PyFloatingPointError>(py) => {
            let np = py.import("numpy")?;
            let out = with_overflow(py, "ignore", cast)?;
            let bad = np.call_method1(
                "logical_and",
                (
                    np.call_method1("isinf", (&out,))?,
                    np.call_method1("isfinite", (arr,))?,
                ),
            )?;
            let first = np.call_method1("argmax", (bad,))?;
            let index = np.call_method1("unravel_index", (first, arr.getattr("shape")?))?;
            let index = PyTuple::new(
                py,
                index
                    .try_iter()?
                    .map(|i| i.and_then(|i| i.extract::<usize>()))
                    .collect::<PyResult<Vec<usize>>>()?,
            )?;
            let value = arr.get_item(&index)?;
            Err(PyOverflowError::new_err(format!(
                "field '{}' is {}: element {} = {} is out of range for {} (it would become infinite)",
                f.name.as_str(),
                f.kind,
                index.repr()?,
                value.str()?,
                target.str()?
            )))
        }
        Err(e) => Err(e),
    }
}

fn stage_array<'py>(
    f: &FieldDef,
    dtype: Dtype,
    dims: &[u32],
    obj: &Bound<'py, PyAny>,
) -> PyResult<Staged<'py>> {
    let py = obj.py();
    // Shown only in errors (`Name`'s `Display`): no UTF-8 check per staged value.
    let name = &f.name;
    let target = descr(py, dtype);
    let mut arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            if obj.is_instance_of::<PyString>() {
                return Err(PyTypeError::new_err(format!(
                    "field '{name}' is {}: expected an array, got str",
                    f.kind
                )));
            }
            let converted = np_asarray(py)?.call1((obj,)).map_err(|e| {
                let err = PyTypeError::new_err(format!(
                    "field '{name}' is {}: cannot make an array of {}: {}",
                    f.kind,
                    type_name(obj),
                    e.value(py)
                ));
                err.set_cause(py, Some(e));
                err
            })?;
            converted.cast_into::<PyUntypedArray>()?
        }
    };
    let shape = arr.shape().to_vec();
    let trailing_ok = shape.len() == dims.len()
        && shape[1..]
            .iter()
            .zip(&dims[1..])
            .all(|(&a, &b)| a == b as usize);
    if !trailing_ok || shape.len() > MAX_DIMS {
        let mut want: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        want[0] = format!("<= {}", dims[0]);
        return Err(PyValueError::new_err(format!(
            "field '{name}' is {}: expected shape ({}), got {}",
            f.kind,
            want.join(", "),
            shape_text(&shape)
        )));
    }
    let src = arr.dtype();
    if !src.is_equiv_to(&target) {
        let ok: bool = np_can_cast(py)?
            .call1((src.clone(), target.clone(), "same_kind"))?
            .extract()?;
        if !ok {
            return Err(PyTypeError::new_err(format!(
                "field '{name}' is {}: cannot convert an array of {} to {} (same-kind casting)",
                f.kind,
                src.str().map(|s| s.to_string()).unwrap_or_default(),
                dtype.name()
            )));
        }
        arr = if dtype.is_float() && src.kind() == b'f' {
            cast_float_checked(f, &arr, &target)?
        } else {
            arr.call_method1("astype", (target.clone(),))?
                .cast_into::<PyUntypedArray>()?
        };
    }
    if !arr.is_c_contiguous()
        || !arr.is_aligned()
        || arr.dtype().is_native_byteorder() == Some(false)
    {
        arr = np_ascontiguousarray(py)?
            .call1((arr, target))?
            .cast_into::<PyUntypedArray>()?;
    }
    Ok(Staged::Array {
        array: arr,
        dtype,
        shape,
    })
}
