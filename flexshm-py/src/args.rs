//! Checked arguments of `SharedMemory(...)` and `read(...)`.
//!
//! Each function is a `#[pyo3(from_py_with = ...)]` converter: a wrongly typed argument
//! is a `TypeError` whose message names the parameter (PyO3's own extraction errors only
//! name it in a note, which `str(exc)` does not show). Values are checked strictly: `bool`
//! is no count and no number of seconds (`slots=True` or `timeout=True` is a mistake, even
//! though Python's `bool` is an `int`), and flags take only `True`/`False` (also
//! `numpy.bool_`), as bool fields do in `write()`.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};

/// `type repr`, for messages: `int 1`, `str '3'`.
fn shown(obj: &Bound<'_, PyAny>) -> String {
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let repr = obj.repr().map(|r| r.to_string()).unwrap_or_default();
    format!("{type_name} {repr}")
}

fn wrong_type(param: &str, expected: &str, obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{param} must be {expected}, got {}", shown(obj)))
}

/// `bool` or `numpy.bool_`.
fn is_bool(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyBool>() || obj.extract::<bool>().is_ok()
}

/// A flag: `True`/`False` (or `numpy.bool_`), nothing else.
fn flag(param: &str, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    obj.extract::<bool>()
        .map_err(|_| wrong_type(param, "True or False", obj))
}

/// `SharedMemory(create=...)`.
pub fn create(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag("create", obj)
}

/// `read(latest=...)`.
pub fn latest(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag("latest", obj)
}

/// `read(reset_modified=...)`.
pub fn reset_modified(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag("reset_modified", obj)
}

/// `SharedMemory(name=...)`: a `str`.
pub fn name<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    obj.cast::<PyString>()
        .cloned()
        .map_err(|_| wrong_type("name", "a str", obj))
}

/// `SharedMemory(slots=...)`: `None` or an integer (anything with `__index__`, such as
/// `numpy.int64`), not a `bool`. The range is checked by the caller; an integer too
/// large for 64 bits is passed on as `i64::MAX`, which fails that check with the usual
/// `ValueError`.
pub fn slots(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    const EXPECTED: &str = "None or an int (1: single slot, 2 or more: a FIFO)";
    if obj.is_none() {
        return Ok(None);
    }
    if is_bool(obj) {
        return Err(wrong_type("slots", EXPECTED, obj));
    }
    match obj.extract::<i64>() {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            let negative = obj.lt(0).unwrap_or(false);
            Ok(Some(if negative { i64::MIN } else { i64::MAX }))
        }
        Err(_) => Err(wrong_type("slots", EXPECTED, obj)),
    }
}

/// `read_many(max_records)`: an int >= 1 (not a `bool`).
pub fn max_records(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    const EXPECTED: &str = "an int >= 1";
    if is_bool(obj) {
        return Err(wrong_type("max_records", EXPECTED, obj));
    }
    match obj.extract::<i64>() {
        Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Ok(_) => Err(PyValueError::new_err(format!(
            "max_records must be >= 1, got {}",
            shown(obj)
        ))),
        Err(_) => Err(wrong_type("max_records", EXPECTED, obj)),
    }
}

/// `read_many(as_array=...)`.
pub fn as_array(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    flag("as_array", obj)
}

/// `read(timeout=...)`, `wait(timeout=...)`, `wait_async(timeout=...)`.
pub fn timeout(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    seconds("timeout", obj)
}

/// `SharedMemory(open_timeout=...)`, `SharedMemory.open(open_timeout=...)`.
pub fn open_timeout(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    seconds("open_timeout", obj)
}

/// `None` or a real number of seconds (int, float, NumPy numbers), not a `bool` and not
/// a string; finite and `>= 0`.
fn seconds(param: &str, obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    const EXPECTED: &str = "None or a number of seconds";
    if obj.is_none() {
        return Ok(None);
    }
    if is_bool(obj) || obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(wrong_type(param, EXPECTED, obj));
    }
    let out_of_range = || {
        PyValueError::new_err(format!(
            "{param} must be a finite number >= 0 or None, got {}",
            shown(obj)
        ))
    };
    match obj.extract::<f64>() {
        Ok(t) if t >= 0.0 && t.is_finite() => Ok(Some(t)),
        Ok(_) => Err(out_of_range()),
        // An int beyond the float range.
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => Err(out_of_range()),
        Err(_) => Err(wrong_type(param, EXPECTED, obj)),
    }
}

/// `SharedMemory(permissions=...)`: an int (`0o640`), not a `bool`; the file mode bits
/// themselves are checked when the segment is created.
pub fn permissions(obj: &Bound<'_, PyAny>) -> PyResult<u32> {
    const EXPECTED: &str = "an int of file mode bits such as 0o640";
    if is_bool(obj) {
        return Err(wrong_type("permissions", EXPECTED, obj));
    }
    match obj.extract::<i64>() {
        Ok(n) => u32::try_from(n).map_err(|_| {
            PyValueError::new_err(format!(
                "permissions must be file mode bits (0o000..=0o777), got {}",
                shown(obj)
            ))
        }),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            Err(PyValueError::new_err(format!(
                "permissions must be file mode bits (0o000..=0o777), got {}",
                shown(obj)
            )))
        }
        Err(_) => Err(wrong_type("permissions", EXPECTED, obj)),
    }
}
