//! A record class turned into field declarations, plus what reading needs to present
//! values the Python way (names, defaults, scalar types).

use flexshm_core::{FieldDef, Kind, Layout, Name, SchemaBuf, MAX_NAME_LEN};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::convert::descr;
use crate::spec::parse_kind;

/// One entry of `_schema.describe`: name, spec, python_scalar, has_default, default,
/// default_factory.
type Described<'py> = (
    Bound<'py, PyString>,
    String,
    bool,
    bool,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
);

/// What an unwritten field reads as.
pub enum FieldDefault {
    /// No default declared: the type's zero ("", 0, 0.0, False, zeros of the full shape).
    Zero,
    /// The declared default.
    Value(Py<PyAny>),
    /// The declared `default_factory`, called on each access.
    Factory(Py<PyAny>),
}

/// The schema of a handle: the core layout and the Python-side presentation.
pub struct Schema {
    /// The segment name (for messages).
    pub segment: String,
    /// The record class's `__qualname__`.
    pub type_name: String,
    /// The record class, for `Record.as_dataclass()`.
    pub record_type: Py<PyAny>,
    /// Field declarations and offsets.
    pub layout: Layout<SchemaBuf>,
    /// Field names as Python strings (interned).
    pub names: Vec<Py<PyString>>,
    /// Field name -> index.
    pub index: Py<PyDict>,
    /// What each field reads as while unwritten.
    pub defaults: Vec<FieldDefault>,
    /// For fields annotated with a dtype name (`"float32"`): the NumPy scalar type values
    /// are returned as. `None` for `float`, `int`, `bool`, strings and arrays.
    pub scalar_types: Vec<Option<Py<PyAny>>>,
    /// The segment is in FIFO mode.
    pub fifo: bool,
    /// `name: type` per field, for reprs.
    pub specs: Vec<String>,
    /// Per field: its name is also a `Record` attribute, which wins over the field.
    pub reserved: Vec<bool>,
    /// The record class was generated from the segment's layout (`SharedMemory.open`).
    pub generated: bool,
    /// The row layout of `read_many(..., as_array=True)`, made on first use.
    pub rows: std::sync::OnceLock<crate::batch::RowLayout>,
    /// The handle's idle snapshot buffer.
    pub pool: crate::record::Pool,
    /// The `Field` objects the handle's records handed out last, for reuse
    /// (`Record::field`).
    pub last_fields: crate::spare::Parked<crate::record::Field>,
}

/// `Record` attributes that win over fields of the same name (dunder names never are
/// fields: Python mangles `__name` in a class body).
pub const RESERVED: [&str; 4] = ["commit", "lost", "as_dict", "as_dataclass"];

impl Schema {
    /// The index of the field named `key` (a `str`), or `None`. Keyword and attribute
    /// names in Python code are interned, as are [`Schema::names`], so the usual case is
    /// found by comparing pointers; anything else (a name built at run time, a `str`
    /// subclass) goes through the name dict.
    pub fn field_index(&self, key: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let ptr = key.as_ptr();
        if let Some(i) = self.names.iter().position(|n| n.as_ptr() == ptr) {
            return Ok(Some(i));
        }
        match self.index.bind(key.py()).get_item(key)? {
            Some(i) => Ok(Some(i.extract()?)),
            None => Ok(None),
        }
    }

    /// Reads `record_type`'s fields (through `flexible_shared_memory._schema.describe`)
    /// and checks every annotation; a bad one is a `TypeError` naming the field.
    pub fn from_class(record_type: &Bound<'_, PyAny>, segment: &str) -> PyResult<Schema> {
        let py = record_type.py();
        let described = py
            .import("flexible_shared_memory._schema")?
            .call_method1("describe", (record_type,))?;
        let (type_name, entries): (String, Vec<Bound<'_, PyAny>>) = described.extract()?;
        let mut fields = Vec::with_capacity(entries.len());
        let mut names = Vec::with_capacity(entries.len());
        let mut defaults = Vec::with_capacity(entries.len());
        let mut scalar_types = Vec::with_capacity(entries.len());
        let mut specs = Vec::with_capacity(entries.len());
        let mut reserved = Vec::with_capacity(entries.len());
        let index = PyDict::new(py);
        for entry in &entries {
            let (fname, spec, py_scalar, has_default, default, factory): Described<'_> =
                entry.extract()?;
            let fname_s = fname.to_cow()?.into_owned();
            let bad = |msg: String| PyTypeError::new_err(format!("{type_name}.{fname_s}: {msg}"));
            let kind = parse_kind(&spec).map_err(|m| bad(format!("bad annotation: {m}")))?;
            let name = Name::try_new(&fname_s).ok_or_else(|| {
                bad(format!(
                    "field names must be 1..={MAX_NAME_LEN} bytes of UTF-8 without NUL"
                ))
            })?;
            fields.push(FieldDef { name, kind });
            index.set_item(&fname, names.len())?;
            names.push(PyString::intern(py, &fname_s).unbind());
            defaults.push(match (has_default, factory) {
                (_, Some(f)) => FieldDefault::Factory(f.unbind()),
                (true, None) => FieldDefault::Value(default.unbind()),
                (false, None) => FieldDefault::Zero,
            });
            scalar_types.push(match kind {
                Kind::Scalar(d) if !py_scalar => Some(descr(py, d).getattr("type")?.unbind()),
                _ => None,
            });
            specs.push(format!("{fname_s}: {kind}"));
            reserved.push(RESERVED.contains(&fname_s.as_str()));
        }
        let cannot = |e: flexshm_core::Error| {
            PyTypeError::new_err(format!("{type_name}: cannot be shared: {e}"))
        };
        let fields = SchemaBuf::from_slice(&fields).map_err(|_| {
            cannot(flexshm_core::Error::TooManyFields {
                count: fields.len(),
            })
        })?;
        let layout = Layout::new(fields).map_err(cannot)?;
        Ok(Schema {
            segment: segment.to_string(),
            type_name,
            record_type: record_type.clone().unbind(),
            layout,
            names,
            index: index.unbind(),
            defaults,
            scalar_types,
            fifo: false,
            specs,
            reserved,
            generated: false,
            rows: std::sync::OnceLock::new(),
            pool: crate::record::Pool::new(),
            last_fields: crate::spare::Parked::new(),
        })
    }
}
