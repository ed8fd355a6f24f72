//! Batches: `read_many(..., as_array=True)` gives records as rows of a NumPy structured
//! array, one copy per record and no Python object per record.
//!
//! The row layout: `commit` (uint32), `lost` (uint32), then three uint64 masks with bit
//! `i` for field `i` — `written`, `truncated`, `modified` — and `corrupt` (a field whose
//! bytes failed decoding: the row keeps it zeroed and the mask says so, so one damaged
//! field loses neither the record nor the rest of the batch). Then one column per field:
//! its dtype for scalars, a sub-array of the field's full shape for arrays (rows that
//! were not stored are zero), `U{N}` for `str[N]`. Unwritten fields are zero.

use flexshm_core::{Dtype, Dynamic, FieldValue, Kind, ReadInfo, Snapshot};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert::descr;
use crate::schema::Schema;

/// The metadata columns, before the fields.
const META: [&str; 6] = [
    "commit",
    "lost",
    "written",
    "truncated",
    "modified",
    "corrupt",
];
/// Bytes of the metadata columns.
const META_SIZE: usize = 4 + 4 + 8 * 4;

/// A handle's structured dtype and where each field's column starts in a row.
pub struct RowLayout {
    /// The NumPy structured dtype of a row.
    pub dtype: Py<PyAny>,
    /// Bytes of a row.
    pub itemsize: usize,
    offsets: Vec<usize>,
}

impl RowLayout {
    /// The row layout of `schema`'s records; an error if a field is named like a
    /// metadata column.
    pub fn new(py: Python<'_>, schema: &Schema) -> PyResult<RowLayout> {
        let np = py.import("numpy")?;
        let mut cols: Vec<Bound<'_, PyTuple>> = vec![
            PyTuple::new(py, ["commit", "<u4"])?,
            PyTuple::new(py, ["lost", "<u4"])?,
            PyTuple::new(py, ["written", "<u8"])?,
            PyTuple::new(py, ["truncated", "<u8"])?,
            PyTuple::new(py, ["modified", "<u8"])?,
            PyTuple::new(py, ["corrupt", "<u8"])?,
        ];
        let mut offsets = Vec::new();
        let mut off = META_SIZE;
        for (n, f) in schema.names.iter().zip(schema.layout.fields()) {
            let name = f.name.as_str();
            if META.contains(&name) {
                return Err(PyValueError::new_err(format!(
                    "{}: field '{name}' has the name of a column read_many(as_array=True) adds \
                     (commit, lost, written, truncated, modified, corrupt); read records one \
                     by one, or rename the field",
                    schema.type_name
                )));
            }
            offsets.push(off);
            let col = match f.kind {
                Kind::Scalar(d) => {
                    off += d.size() as usize;
                    PyTuple::new(py, [n.bind(py).clone().into_any(), descr(py, d).into_any()])?
                }
                Kind::Str { chars } => {
                    off += 4 * chars as usize;
                    let t = format!("<U{chars}");
                    PyTuple::new(
                        py,
                        [
                            n.bind(py).clone().into_any(),
                            t.into_pyobject(py)?.into_any(),
                        ],
                    )?
                }
                Kind::Array { dtype, dims } => {
                    off += f.kind.data_size().unwrap_or(0) as usize;
                    let shape = PyTuple::new(py, dims.as_slice())?;
                    PyTuple::new(
                        py,
                        [
                            n.bind(py).clone().into_any(),
                            descr(py, dtype).into_any(),
                            shape.into_any(),
                        ],
                    )?
                }
            };
            cols.push(col);
        }
        let dtype = np.call_method1("dtype", (PyList::new(py, cols)?,))?;
        let itemsize: usize = dtype.getattr("itemsize")?.extract()?;
        // Packed, in the order given: the offsets computed above are NumPy's.
        debug_assert_eq!(itemsize, off);
        Ok(RowLayout {
            dtype: dtype.unbind(),
            itemsize,
            offsets,
        })
    }

    /// Fills `row` (zeroed, `itemsize` bytes) from a record read into `bytes`.
    pub fn fill(&self, schema: &Schema, bytes: &[u8], info: ReadInfo, row: &mut [u8]) {
        let snap = Snapshot::<Dynamic>::new(bytes, &schema.layout, info);
        let mut corrupt = 0u64;
        let mut written = info.written;
        for (i, f) in schema.layout.fields().iter().enumerate() {
            if info.written & (1 << i) == 0 {
                continue;
            }
            let at = &mut row[self.offsets[i]..];
            // `snap.get` validates what `read` does not: UTF-8, code points, bool bytes.
            let ok = match (f.kind, snap.get(i)) {
                (Kind::Str { chars }, Ok(FieldValue::Str(s))) => {
                    for (k, c) in s.chars().take(chars as usize).enumerate() {
                        at[4 * k..4 * k + 4].copy_from_slice(&(c as u32).to_le_bytes());
                    }
                    true
                }
                // Bools passed the 0/1 check in `get`; every other dtype's bytes are
                // valid as they are (little-endian, as NumPy's native dtypes here).
                (Kind::Scalar(_) | Kind::Array { .. }, Ok(_)) => match snap.raw(i) {
                    Ok(raw) => {
                        at[..raw.len()].copy_from_slice(raw);
                        true
                    }
                    Err(_) => false,
                },
                _ => false,
            };
            if !ok {
                corrupt |= 1 << i;
                written &= !(1 << i);
                let size = f.kind.data_size().unwrap_or(0) as usize;
                let size = if let Kind::Str { chars } = f.kind {
                    4 * chars as usize
                } else {
                    size
                };
                at[..size].fill(0);
            }
        }
        row[0..4].copy_from_slice(&info.commit.to_le_bytes());
        row[4..8].copy_from_slice(&info.lost.to_le_bytes());
        row[8..16].copy_from_slice(&written.to_le_bytes());
        row[16..24].copy_from_slice(&info.truncated.to_le_bytes());
        row[24..32].copy_from_slice(&(info.modified & written).to_le_bytes());
        row[32..40].copy_from_slice(&corrupt.to_le_bytes());
    }
}

const _: () = assert!(Dtype::Bool.size() == 1);
