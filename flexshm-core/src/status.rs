//! What a read reports besides the bytes: read options, per-field status, commit number
//! and loss count.

use crate::record::FieldIndex;

/// How a read chooses its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadOptions {
    /// FIFO mode: return the newest record, skipping unread older ones (skipped records
    /// are not counted as lost). Single-slot mode always returns the newest record.
    pub latest: bool,
    /// Report `modified` relative to this reader's previous `reset_modified` read instead
    /// of "written in the record being read", and start a new tracking period.
    pub reset_modified: bool,
}

/// The status of one field in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FieldStatus {
    /// The field has been written since the segment was created.
    pub written: bool,
    /// The last value written did not fit and was cut.
    pub truncated: bool,
    /// Written in the record read (or, with `reset_modified`, since this reader's
    /// previous such read).
    pub modified: bool,
}

impl FieldStatus {
    /// Written and not truncated: the value is exactly what the writer wrote.
    pub fn valid(&self) -> bool {
        self.written && !self.truncated
    }

    /// Never written since the segment was created.
    pub fn unwritten(&self) -> bool {
        !self.written
    }
}

/// What a successful read returned, without the borrowed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadInfo {
    /// Commit number of the record (0 for the empty record of a fresh single-slot
    /// segment).
    pub commit: u32,
    /// FIFO mode: records this reader lost since its previous read because the writer
    /// lapped it; `u32::MAX` if it fell so far behind (half the commit-number modulus,
    /// about 2^31 records) that the exact number cannot be known. Always 0 in
    /// single-slot mode.
    pub lost: u32,
    /// Bit i: field i is `modified`.
    pub modified: u64,
    /// Bit i: field i has been written.
    pub written: u64,
    /// Bit i: field i is truncated.
    pub truncated: u64,
}

impl ReadInfo {
    /// Status of field `i` (an index, or a typed [`FieldId`](crate::FieldId)).
    pub fn status(&self, i: impl FieldIndex) -> FieldStatus {
        // An index past the last field has no status bits.
        let bit = u32::try_from(i.index())
            .ok()
            .and_then(|i| 1u64.checked_shl(i))
            .unwrap_or(0);
        FieldStatus {
            written: self.written & bit != 0,
            truncated: self.truncated & bit != 0,
            modified: self.modified & bit != 0,
        }
    }
}
