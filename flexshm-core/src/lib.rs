//! # flexshm-core
//!
//! Lock-free, typed shared-memory records: one writer publishes, any number of readers
//! take consistent snapshots without locks, and every field reports whether it is
//! valid, modified, truncated or unwritten.
//!
//! This crate is the protocol itself: `#![no_std]`, no allocator, over any byte region —
//! dual-port RAM between two MCU cores, a static buffer shared with an interrupt, or an
//! OS mapping (see `flexshm-std`). The byte layout and the memory-ordering protocol are
//! specified in `docs/PROTOCOL.md`; the same record gives the same bytes on every
//! target.
//!
//! Only 32-bit atomic loads and stores and fences touch the region, so the core runs on
//! targets without compare-and-swap (Cortex-M0, RV32IMC) and between processes.
//!
//! ## One writer type, one reader type
//!
//! [`Writer`] and [`Reader`] are generic over the schema: a struct declared with
//! [`record!`] (its layout is computed at compile time, and scalars are stored and
//! loaded at constant offsets), or [`Dynamic`] for a schema known only at run time (a
//! list of [`FieldDef`]s, or the one a segment describes). A reader has no write method.
//!
//! ```
//! use flexshm_core::{record, AlignedBuf, Mode, ReadOptions, Reader, Record, Region, Writer};
//!
//! record! {
//!     #[derive(Debug, Default, PartialEq)]
//!     pub struct SensorData {
//!         pub temperature: f64,
//!         pub status_msg: str[32],
//!     }
//! }
//!
//! let mut mem = AlignedBuf::<1024>::new();
//! let region = Region::new(&mut mem.0).unwrap();
//!
//! let mut writer = Writer::<SensorData>::create(region, Mode::Single).unwrap();
//! writer.write(&SensorData { temperature: 23.5, ..Default::default() }).unwrap();
//!
//! let mut reader = Reader::<SensorData>::open(region).unwrap();
//! let mut buf = [0u8; SensorData::SNAPSHOT_LEN];
//! let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
//! assert_eq!(snap.record().unwrap().temperature, 23.5);
//! assert!(snap.status(SensorData::temperature).valid());
//! ```
//!
//! The same segment, with the schema read from its header:
//!
//! ```
//! use flexshm_core::{AlignedBuf, Dtype, Dynamic, FieldDef, FieldValue, Kind, Mode};
//! use flexshm_core::{ReadOptions, Reader, Region, Value, Writer};
//!
//! const FIELDS: &[FieldDef] = &[
//!     FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
//!     FieldDef::new("status_msg", Kind::str(32)),
//! ];
//! let mut mem = AlignedBuf::<1024>::new();
//! let region = Region::new(&mut mem.0).unwrap();
//!
//! let mut writer = Writer::<Dynamic<_>>::create(region, FIELDS, Mode::Single).unwrap();
//! writer.write_named(&[("temperature", Value::Float(23.5))]).unwrap();
//!
//! let mut reader = Reader::<Dynamic>::open(region).unwrap();
//! let mut buf = [0u8; 512];
//! let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
//! assert_eq!(snap.get(0).unwrap(), FieldValue::Float(23.5));
//! assert!(snap.status(0).valid() && snap.status(0).modified);
//! assert!(snap.status(1).unwritten());
//! ```
//!
//! ## Dependencies in the API
//!
//! [`heapless`] 0.9 is part of this crate's API, re-exported as `flexshm_core::heapless`:
//! `str[N]` fields of a [`record!`] are `heapless::String<{4 * N}>`, and a schema read
//! from a segment is a [`SchemaBuf`] (`heapless::Vec<FieldDef, 64>`). A new major version
//! of heapless is a new major version of flexshm-core.
#![cfg_attr(not(any(test, loom)), no_std)]
#![warn(missing_docs)]

#[cfg(feature = "embedded-hal")]
mod blocking;
mod descriptor;
mod error;
mod field_type;
mod header;
mod layout;
mod macros;
mod primitive;
mod reader;
mod record;
mod region;
mod schema;
mod slot;
mod snapshot;
mod status;
mod utf8;
mod value;
mod writer;

#[cfg(all(test, loom))]
mod loom_tests;

pub use heapless;

#[cfg(feature = "embedded-hal")]
pub use blocking::DEFAULT_POLL_US;
pub use error::Error;
pub use field_type::{ArrayPart, Element, FieldType};
pub use header::{Mode, MAX_SLOTS};
pub use layout::{Layout, MAX_FIELDS};
pub use reader::{Reader, DEFAULT_RETRIES};
pub use record::{
    Dynamic, FieldId, FieldIndex, FieldVisitor, FieldVisitorMut, Fields, Record, Schema,
};
pub use region::{Region, REGION_ALIGN};
pub use schema::{Dims, Dtype, FieldDef, Kind, Name, MAX_DIMS, MAX_EXTENT, MAX_NAME_LEN};
pub use snapshot::Snapshot;
pub use status::{FieldStatus, ReadInfo, ReadOptions};
pub use value::{ArrayRef, FieldValue, Value};
pub use writer::Writer;

#[doc(hidden)]
pub use record::field_index as __field_index;

/// A schema read from a segment, held without an allocator.
pub type SchemaBuf = heapless::Vec<FieldDef, MAX_FIELDS>;

/// Backing storage for a region with the alignment slots want (64 bytes), for statics
/// and tests: `static mut MEM: AlignedBuf<4096> = AlignedBuf::new();`.
#[repr(C, align(64))]
pub struct AlignedBuf<const N: usize>(pub [u8; N]);

impl<const N: usize> AlignedBuf<N> {
    /// A zeroed buffer.
    pub const fn new() -> Self {
        AlignedBuf([0; N])
    }
}

impl<const N: usize> Default for AlignedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The wire format's constants and codecs, for flexshm's own frontends, tests and
/// golden vectors (docs/PROTOCOL.md is the specification). Not part of the stable API:
/// anything here may change in any release.
#[doc(hidden)]
pub mod internal {
    pub use crate::descriptor::{
        decode_field_entry, descriptor_len, encode_entry, fnv1a64, layout_hash,
        DESCRIPTOR_PREAMBLE, FIELD_ENTRY_LEN, STR_CODE,
    };
    pub use crate::header::{
        read_schema, DESCRIPTOR_OFFSET, FRONTEND_AREA, FRONTEND_AREA_LEN, H_HEAD, MAGIC, VERSION,
    };
    pub use crate::layout::{
        meta_offset, modulus, slot_size_of, FIELD_META_LEN, FLAG_COMMITTED, INFO_LEN_MASK,
        INFO_TRUNCATED, INFO_WRITTEN, SLOT_ALIGN, SLOT_HEADER_LEN,
    };
}
