//! Rust errors to Python exceptions.
//!
//! | error | exception |
//! | --- | --- |
//! | segment missing | `FileNotFoundError` |
//! | live writer holds the name | `FileExistsError` |
//! | no permission | `PermissionError` |
//! | write on a reader handle, or on a writer handle in a forked child | `io.UnsupportedOperation` |
//! | another user's file, a symbolic link, a file others may write | `PermissionError` |
//! | the segment's name was unlinked (and perhaps recreated) under a reader | `OSError(ESTALE)` |
//! | read timed out | `TimeoutError` |
//! | unknown field, wrong value type | `TypeError` |
//! | integer out of range | `OverflowError` |
//! | layout/mode mismatch, not a flexshm segment, corrupt contents, bad shape, bad name | `ValueError` |
//! | other operating-system errors | `OSError` |

use flexshm_core::Error as CoreError;
use flexshm_std::Error;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyOSError, PyOverflowError, PyPermissionError,
    PyTimeoutError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// `io.UnsupportedOperation` with `msg` (what a file opened for reading raises on write).
pub fn unsupported(py: Python<'_>, msg: String) -> PyErr {
    static T: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match T.import(py, "io", "UnsupportedOperation") {
        Ok(t) => PyErr::from_type(t.clone(), msg),
        Err(e) => e,
    }
}

/// The exception for an error of the std frontend on segment `name`.
pub fn to_pyerr(py: Python<'_>, name: &str, e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::NotFound { .. } => PyFileNotFoundError::new_err(msg),
        Error::WriterAlive { .. } => PyFileExistsError::new_err(format!("segment '{name}': {msg}")),
        Error::PermissionDenied { .. }
        | Error::ForeignOwner { .. }
        | Error::InsecurePermissions { .. }
        | Error::Symlink { .. } => PyPermissionError::new_err(msg),
        Error::ForkedWriter { .. } => unsupported(py, msg),
        // The handle is stale: ESTALE, "stale file handle".
        Error::Replaced { .. } => PyOSError::new_err((libc_estale(), msg)),
        Error::Timeout { .. } => PyTimeoutError::new_err(msg),
        Error::Core(c) => core_to_pyerr(name, c),
        Error::Io(io) => {
            let err = PyOSError::new_err(format!("segment '{name}': {io}"));
            err.set_cause(py, Some(PyErr::from(io)));
            err
        }
        _ => PyValueError::new_err(msg),
    }
}

/// `ESTALE` on Linux (every architecture flexshm-std supports).
fn libc_estale() -> i32 {
    116
}

/// The exception for an error of the protocol core on segment `name`.
pub fn core_to_pyerr(name: &str, e: CoreError) -> PyErr {
    let msg = format!("segment '{name}': {e}");
    match e {
        CoreError::UnknownField { .. } | CoreError::WrongKind { .. } => PyTypeError::new_err(msg),
        CoreError::OutOfRange { .. } => PyOverflowError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}
