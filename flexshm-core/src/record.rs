//! What a writer or a reader is generic over: a record type known at compile time
//! ([`Record`], declared with [`record!`](crate::record)) or a schema known at run time
//! ([`Dynamic`]).
//!
//! ```
//! use flexshm_core::{record, AlignedBuf, Mode, ReadOptions, Reader, Record, Region, Writer};
//!
//! record! {
//!     #[derive(Debug, Default, Clone, PartialEq)]
//!     pub struct SensorData {
//!         pub temperature: f64,
//!         pub pressure: f64,
//!         pub timestamp: f64,
//!         pub status_msg: str[32],
//!     }
//! }
//!
//! let mut mem = AlignedBuf::<1024>::new();
//! let region = Region::new(&mut mem.0).unwrap();
//! let mut writer = Writer::<SensorData>::create(region, Mode::Single).unwrap();
//! let mut reader = Reader::<SensorData>::open(region).unwrap();
//!
//! let mut rec = SensorData { temperature: 23.5, pressure: 1013.25, ..Default::default() };
//! rec.status_msg.push_str("OK").unwrap();
//! writer.write(&rec).unwrap();
//!
//! let mut buf = [0u8; SensorData::SNAPSHOT_LEN];
//! let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
//! let mut out = SensorData::default();
//! snap.decode(&mut out).unwrap();
//! assert_eq!(out, rec);
//! assert!(snap.status(SensorData::temperature).valid());
//! ```

use core::marker::PhantomData;

use crate::error::Error;
use crate::field_type::FieldType;
use crate::layout::{self, Layout};
use crate::schema::FieldDef;
use crate::value::{FieldValue, Value};
use crate::SchemaBuf;

/// A record type: a struct whose fields map to a flexshm schema. Implemented by
/// [`record!`](crate::record); the field types are the closed set of
/// [`FieldType`](crate::FieldType)s.
pub trait Record {
    /// The schema, in declaration order.
    const FIELDS: &'static [FieldDef];
    /// Bytes of a snapshot buffer for this record (usable as an array length).
    const SNAPSHOT_LEN: usize = layout::slot_size_of(Self::FIELDS);
    /// The value of field `i` for writing.
    fn value(&self, i: usize) -> Value<'_>;
    /// Sets field `i` from a decoded value; the error says what did not fit.
    fn set_field(&mut self, i: usize, v: FieldValue<'_>) -> Result<(), &'static str>;
    /// Field `i`'s stored little-endian bits if it is a scalar whose Rust type makes
    /// every value valid for its dtype (a bool's non-zero bits are stored as 1); `None`
    /// sends the field through [`value`](Self::value) and the checked path.
    #[inline(always)]
    fn scalar_bits(&self, _i: usize) -> Option<u64> {
        None
    }
    /// Sets scalar field `i` from its stored little-endian bits; false if field `i` is
    /// not such a scalar (then [`set_field`](Self::set_field) is used).
    #[inline(always)]
    fn set_scalar_bits(&mut self, _i: usize, _bits: u64) -> bool {
        false
    }
    /// `true` promises that [`scalar_bits`](Self::scalar_bits) is `Some` for every scalar
    /// field and that [`set_scalar_bits`](Self::set_scalar_bits) accepts every stored
    /// value of every scalar field except a bool byte other than 0 or 1 (which is
    /// corrupt). Typed writers and readers then never convert scalars through
    /// [`Value`] / [`FieldValue`], so that code is not linked into firmware that only
    /// uses typed records. `record!` types set it. A broken promise gives an error
    /// (`WrongKind` on write, `CorruptRecord` on read), never wrong bytes.
    const DIRECT_SCALARS: bool = false;
    /// `true` if [`visit`](Self::visit) and [`visit_mut`](Self::visit_mut) call their
    /// visitor once per field, in declaration order, with the field's Rust type.
    /// `record!` types do; the typed writer and reader then handle every field with code
    /// specialised for its type, without looking fields up by index. A record that
    /// claims it and visits a field out of order, of another kind than `FIELDS`
    /// declares, or not at all gets [`Error::InvalidField`], with nothing written.
    #[doc(hidden)]
    const VISITS_FIELDS: bool = false;
    /// Calls `v.field(i, &field_i)` for every field `i` in order (see
    /// [`VISITS_FIELDS`](Self::VISITS_FIELDS)); stops at the first error.
    #[doc(hidden)]
    #[inline(always)]
    fn visit<V: FieldVisitor>(&self, _v: &mut V) -> Result<(), Error> {
        Ok(())
    }
    /// [`visit`](Self::visit) with mutable fields.
    #[doc(hidden)]
    #[inline(always)]
    fn visit_mut<V: FieldVisitorMut>(&mut self, _v: &mut V) -> Result<(), Error> {
        Ok(())
    }
}

/// What [`Record::visit`] calls for each field: `i` is the field's index, `T` its Rust
/// type (so `T::KIND` is a constant in each call).
#[doc(hidden)]
pub trait FieldVisitor {
    /// Field `i`.
    fn field<T: FieldType>(&mut self, i: usize, x: &T) -> Result<(), Error>;
}

/// What [`Record::visit_mut`] calls for each field.
#[doc(hidden)]
pub trait FieldVisitorMut {
    /// Field `i`.
    fn field<T: FieldType>(&mut self, i: usize, x: &mut T) -> Result<(), Error>;
}

/// The schema parameter of a run-time-schema [`Writer`](crate::Writer) or
/// [`Reader`](crate::Reader): the field declarations are a value (`F`), given at run time
/// or read from the segment's header.
///
/// `F` holds the declarations (see [`Fields`]): [`SchemaBuf`] (the default; needs no
/// allocator, and can take a schema read from a segment) or a borrowed `&[FieldDef]`
/// (a const list).
pub struct Dynamic<F = SchemaBuf>(PhantomData<fn() -> F>);

mod sealed {
    pub trait Sealed {}
}

/// What a [`Writer`](crate::Writer) or [`Reader`](crate::Reader) is generic over: every
/// [`Record`] type, and [`Dynamic`]. Sealed.
pub trait Schema: sealed::Sealed + Sized {
    /// How the field declarations are held.
    type Fields: Fields;
    /// The layout a reader of this schema uses on a segment that describes `found`: the
    /// record's own for a [`Record`] (the header check then compares the two), `found`'s
    /// for [`Dynamic`]. For frontends that open segments generically.
    #[doc(hidden)]
    fn layout_for_segment(found: &[FieldDef]) -> Result<Layout<Self::Fields>, Error>;
    /// A [`Record`]'s fields as a constant (`None` for [`Dynamic`]): a reader whose
    /// layout has exactly these fields checks a record's metadata with each field's kind
    /// known at compile time.
    #[doc(hidden)]
    const RECORD_FIELDS: Option<&'static [FieldDef]> = None;
}

impl<R: Record> sealed::Sealed for R {}
impl<R: Record> Schema for R {
    type Fields = &'static [FieldDef];
    const RECORD_FIELDS: Option<&'static [FieldDef]> = Some(R::FIELDS);
    fn layout_for_segment(_found: &[FieldDef]) -> Result<Layout<Self::Fields>, Error> {
        layout_of::<R>()
    }
}

impl<F: Fields> sealed::Sealed for Dynamic<F> {}
impl<F: Fields> Schema for Dynamic<F> {
    type Fields = F;
    fn layout_for_segment(found: &[FieldDef]) -> Result<Layout<Self::Fields>, Error> {
        let fields = F::from_segment(found).ok_or(Error::InvalidField {
            field: crate::schema::Name::EMPTY,
            reason: "this Dynamic field holder cannot take its schema from a segment",
        })?;
        Layout::new(fields)
    }
}

mod fields_sealed {
    pub trait Sealed {}
}

/// What holds the field declarations of a [`Dynamic`] schema: [`SchemaBuf`] (which can
/// also take a schema read from a segment) or a borrowed `&[FieldDef]`. Sealed.
pub trait Fields: AsRef<[FieldDef]> + Clone + fields_sealed::Sealed {
    /// A holder of `fields`, if this kind of holder can be made at run time.
    #[doc(hidden)]
    fn from_segment(fields: &[FieldDef]) -> Option<Self>;
}

impl fields_sealed::Sealed for SchemaBuf {}
impl Fields for SchemaBuf {
    fn from_segment(fields: &[FieldDef]) -> Option<Self> {
        SchemaBuf::from_slice(fields).ok()
    }
}

impl fields_sealed::Sealed for &[FieldDef] {}
impl Fields for &[FieldDef] {
    fn from_segment(_fields: &[FieldDef]) -> Option<Self> {
        None
    }
}

/// The layout of `R`, computed at compile time. A schema the run-time check rejects
/// (possible only with a hand-written [`Record`]) gets its error from [`Layout::new`].
pub(crate) fn layout_of<R: Record>() -> Result<Layout<&'static [FieldDef]>, Error> {
    match const { Layout::precomputed(R::FIELDS) } {
        Some(layout) => Ok(layout),
        None => Layout::new(R::FIELDS),
    }
}

/// A typed handle on field `i` of a record, generated by [`record!`](crate::record) as an
/// associated constant named like the field (`SensorData::temperature`). Wherever a
/// field index is taken (`status`, `get`), a `FieldId` can be given instead.
pub struct FieldId<T> {
    index: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for FieldId<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for FieldId<T> {}

impl<T> core::fmt::Debug for FieldId<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FieldId({})", self.index)
    }
}

impl<T> FieldId<T> {
    /// The handle of field `index`.
    pub const fn new(index: usize) -> Self {
        FieldId {
            index,
            _t: PhantomData,
        }
    }

    /// The field's position in the record.
    pub const fn index(self) -> usize {
        self.index
    }
}

mod index_sealed {
    pub trait Sealed {}
}

/// What names a field where statuses and values are looked up: its position (`usize`)
/// or a typed [`FieldId`]. Sealed.
pub trait FieldIndex: index_sealed::Sealed {
    /// The field's position.
    fn index(self) -> usize;
}

impl index_sealed::Sealed for usize {}
impl FieldIndex for usize {
    fn index(self) -> usize {
        self
    }
}

impl<T> index_sealed::Sealed for FieldId<T> {}
impl<T> FieldIndex for FieldId<T> {
    fn index(self) -> usize {
        self.index
    }
}

/// Index of the field called `name` in `fields`, at compile time; panics if absent. Used
/// by [`record!`](crate::record).
#[doc(hidden)]
pub const fn field_index(fields: &[FieldDef], name: &str) -> usize {
    let mut i = 0;
    while i < fields.len() {
        let a = fields[i].name;
        let b = name.as_bytes();
        if a.len_const() == b.len() {
            let mut k = 0;
            let mut same = true;
            while k < b.len() {
                if a.byte(k) != b[k] {
                    same = false;
                }
                k += 1;
            }
            if same {
                return i;
            }
        }
        i += 1;
    }
    panic!("field not found")
}
