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
//! ```
//! use flexshm_core::{FieldDef, Kind, Dtype, Mode, ReadOptions, Region, Reader, Value, Writer};
//!
//! const FIELDS: &[FieldDef] = &[
//!     FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
//!     FieldDef::new("status_msg", Kind::str(32)),
//! ];
//! #[repr(C, align(64))]
//! struct Mem([u8; 1024]);
//! let mut mem = Mem([0; 1024]);
//! let region = Region::new(&mut mem.0).unwrap();
//!
//! let mut writer = Writer::create(region, FIELDS, Mode::Single).unwrap();
//! writer.write_named(&[("temperature", Value::Float(23.5))]).unwrap();
//!
//! let mut reader = Reader::open(region, FIELDS).unwrap();
//! let mut buf = [0u8; 512];
//! let snap = reader.try_read(&mut buf, ReadOptions::default()).unwrap();
//! assert_eq!(snap.get(0).unwrap(), flexshm_core::FieldValue::Float(23.5));
//! assert!(snap.status(0).valid() && snap.status(0).modified);
//! assert!(snap.status(1).unwritten());
//! ```
#![cfg_attr(not(any(test, loom)), no_std)]
#![warn(missing_docs)]

mod blocking;
mod error;
pub mod header;
pub mod layout;
mod primitive;
mod reader;
mod region;
pub mod schema;
#[doc(hidden)]
pub mod typed;
mod value;
mod writer;

#[cfg(all(test, loom))]
mod loom_tests;

#[doc(hidden)]
pub use heapless;

pub use blocking::DEFAULT_POLL_US;
pub use error::Error;
pub use header::{read_schema, Mode, SchemaBuf, MAGIC, MAX_SLOTS, VERSION};
pub use layout::{Layout, MAX_FIELDS};
pub use reader::{
    decode_field, raw_field, FieldStatus, ReadInfo, ReadOptions, Reader, Snapshot, DEFAULT_RETRIES,
};
pub use region::{Region, REGION_ALIGN};
pub use schema::{Dims, Dtype, FieldDef, Kind, Name, MAX_DIMS, MAX_NAME_LEN};
pub use typed::{ArrayPart, Element, FieldId, FieldType, Record, TypedReader, TypedWriter};
pub use value::{ArrayRef, FieldValue, Value};
pub use writer::Writer;

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
