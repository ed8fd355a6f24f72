//! `flexible_shared_memory._native`: the extension module behind the Python package.
//!
//! The Python API (see `python/flexible_shared_memory/__init__.py` and the README):
//! `SharedMemory(RecordClass, name=..., create=True, slots=None, *, permissions=0o600,
//! open_timeout=0)` and `SharedMemory.open(name)` with `write(**fields)`, `finalize()`,
//! `read(timeout=None, latest=False, reset_modified=False)`, `wait(timeout=None)`,
//! `wait_async(timeout=None)`, `for`/`async for` iteration, `close()` and `unlink()`;
//! `read()` returns a [`record::Record`] whose attributes are [`record::Field`]s. Logic
//! lives in plain Rust (`spec`, `convert`, `shared`, flexshm-core and flexshm-std); the
//! `#[pymethods]` are thin wrappers. `shared` holds what threads share (readers, locks,
//! sleeping without holding them), `asyncwait` the waiter threads behind `wait_async`.

pub mod args;
pub mod asyncwait;
pub mod batch;
pub mod convert;
pub mod errors;
pub mod handle;
pub mod record;
pub mod schema;
pub mod shared;
pub mod spare;
pub mod spec;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::handle::SharedMemory;
    #[pymodule_export]
    use crate::record::{Field, Record};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::handle::install_write(m.py())?;
        crate::record::install_value_member(m.py())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
