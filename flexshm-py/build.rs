//! Gives the crate pyo3's configuration flags (`Py_GIL_DISABLED` among them) for the
//! interpreter it is built against.

fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
