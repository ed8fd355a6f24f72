//! Errors returned by the core.

use core::fmt;

use crate::schema::{Kind, Name};

/// Everything that can go wrong in flexshm-core.
///
/// Every variant that concerns a field carries the field's name, so that a frontend can
/// print an actionable message without keeping the schema around.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The region is smaller than the segment needs.
    RegionTooSmall {
        /// Bytes the segment needs.
        needed: usize,
        /// Bytes the region has.
        available: usize,
    },
    /// The region's start address is not aligned to [`crate::REGION_ALIGN`] bytes.
    Misaligned {
        /// The address of the region.
        address: usize,
    },
    /// The region does not start with the flexshm magic number (not a flexshm segment, or
    /// not initialised yet).
    BadMagic {
        /// The word found where the magic number belongs.
        found: u32,
    },
    /// The segment was written by an incompatible protocol version.
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// The version this build speaks.
        supported: u32,
    },
    /// A header word has a value that cannot be right (offset outside the region, stride
    /// smaller than a record, ...). `what` names the word.
    CorruptHeader {
        /// The header word that failed validation.
        what: &'static str,
    },
    /// The schema stored in the segment differs from the caller's schema.
    SchemaMismatch {
        /// Position of the first differing field.
        position: u16,
        /// The caller's field at that position (empty if the caller has fewer fields).
        expected: Name,
        /// The segment's field at that position (empty if the segment has fewer fields).
        found: Name,
        /// What differs: "name", "type", "field count".
        what: &'static str,
    },
    /// The segment's slot count or mode differs from what the caller asked for.
    ModeMismatch {
        /// Slots the caller asked for.
        expected_slots: u32,
        /// Slots in the segment.
        found_slots: u32,
    },
    /// The schema has more fields than [`crate::MAX_FIELDS`].
    TooManyFields {
        /// Fields in the schema.
        count: usize,
    },
    /// A field declaration is invalid (bad name, zero dimension, too large, duplicate).
    InvalidField {
        /// The field's name as far as it could be read.
        field: Name,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The record or segment is larger than the protocol's 32-bit sizes allow.
    TooLarge,
    /// A write named a field the schema does not have.
    UnknownField {
        /// The name that was not found (cut to [`crate::MAX_NAME_LEN`] bytes).
        name: Name,
    },
    /// A value's kind does not fit the field's type (e.g. a string for a float).
    WrongKind {
        /// The field written.
        field: Name,
        /// The field's declared kind.
        expected: Kind,
    },
    /// An integer value is outside the range of the field's integer type.
    OutOfRange {
        /// The field written.
        field: Name,
    },
    /// An array value's element type, number of dimensions or trailing dimensions do not
    /// match the field, or its byte length does not match its shape.
    ShapeMismatch {
        /// The field written.
        field: Name,
    },
    /// The same field appears twice in one write.
    DuplicateField {
        /// The field named twice.
        field: Name,
    },
    /// A snapshot buffer is smaller than a record.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// A committed record holds a value that no writer of this protocol produces (length
    /// beyond capacity, invalid UTF-8): the segment was overwritten by something else.
    CorruptRecord {
        /// The field whose contents are invalid.
        field: Name,
        /// What is wrong.
        what: &'static str,
    },
    /// A buffer of the segment holds something no writer of this protocol leaves there
    /// (a commit number outside the readable window, a window record not marked
    /// committed): the segment was overwritten by something else.
    CorruptBuffer {
        /// The commit number the reader looked for.
        commit: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// A writer was given a region that may only be read.
    ReadOnlyRegion,
    /// FIFO mode: no record is available yet (nothing unread, or nothing written at all).
    NoRecord,
    /// The writer kept overtaking the copy (or holds the slot mid-write) for the whole
    /// retry budget; no consistent snapshot could be taken.
    Contended,
    /// A blocking read ran out of time. `no_record` tells whether it waited for a record
    /// (true) or for a writer that kept a slot busy (false).
    Timeout {
        /// True if nothing new was committed in time; false if a record existed but every
        /// copy of it was overtaken by the writer.
        no_record: bool,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RegionTooSmall { needed, available } => write!(
                f,
                "region too small: the segment needs {needed} bytes, the region has {available}"
            ),
            Error::Misaligned { address } => write!(
                f,
                "region at {address:#x} is not aligned to {} bytes",
                crate::REGION_ALIGN
            ),
            Error::BadMagic { found } => write!(
                f,
                "not a flexshm segment (magic {found:#010x}, expected {:#010x})",
                crate::header::MAGIC
            ),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "segment uses protocol version {found}, this build supports version {supported}"
            ),
            Error::CorruptHeader { what } => write!(f, "corrupt segment header: {what}"),
            Error::SchemaMismatch {
                position,
                expected,
                found,
                what,
            } => write!(
                f,
                "layout mismatch at field {position}: {what} differs (expected '{expected}', segment has '{found}')"
            ),
            Error::ModeMismatch {
                expected_slots,
                found_slots,
            } => write!(
                f,
                "slot count mismatch: expected {expected_slots}, segment has {found_slots}"
            ),
            Error::TooManyFields { count } => write!(
                f,
                "schema has {count} fields, at most {} are supported",
                crate::MAX_FIELDS
            ),
            Error::InvalidField { field, reason } => write!(f, "field '{field}': {reason}"),
            Error::TooLarge => f.write_str("record or segment exceeds 4 GiB"),
            Error::UnknownField { name } => write!(f, "unknown field '{name}'"),
            Error::WrongKind { field, expected } => {
                write!(f, "field '{field}': wrong value type, expected {expected}")
            }
            Error::OutOfRange { field } => {
                write!(f, "field '{field}': value out of range for its integer type")
            }
            Error::ShapeMismatch { field } => write!(
                f,
                "field '{field}': array dtype or trailing dimensions do not match"
            ),
            Error::DuplicateField { field } => {
                write!(f, "field '{field}' given twice in one write")
            }
            Error::BufferTooSmall { needed } => {
                write!(f, "snapshot buffer too small: {needed} bytes needed")
            }
            Error::CorruptRecord { field, what } => {
                write!(f, "corrupt record: field '{field}': {what}")
            }
            Error::CorruptBuffer { commit, what } => {
                write!(f, "corrupt segment: looking for commit {commit}: {what}")
            }
            Error::ReadOnlyRegion => f.write_str("a writer needs a writable region"),
            Error::NoRecord => f.write_str("no record available"),
            Error::Contended => f.write_str(
                "the writer kept overtaking the copy (or holds the slot mid-write); no consistent snapshot",
            ),
            Error::Timeout { no_record: true } => {
                f.write_str("timed out waiting for a record")
            }
            Error::Timeout { no_record: false } => f.write_str(
                "timed out: the writer kept a slot busy (overtaking every copy, or stopped mid-write)",
            ),
        }
    }
}

impl core::error::Error for Error {}
