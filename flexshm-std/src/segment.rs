//! One mapping of a segment file: read-only for readers, read-write for the writer.
//!
//! The mapping is a [`memmap2::MmapRaw`]: raw memory, never a `&[u8]` or `&mut [u8]`,
//! because other processes write it while we hold it. All access goes through
//! [`flexshm_core::Region`] (32-bit atomics) except the std frontend's own words in the
//! header's frontend area (see [`crate::claim`] and [`crate::wake`]), which are atomics
//! too. Through a read-only mapping only atomic loads are made.

use std::sync::atomic::{AtomicU32, AtomicU64};

use flexshm_core::internal::{DESCRIPTOR_OFFSET, FRONTEND_AREA, FRONTEND_AREA_LEN};
use flexshm_core::{Layout, Region, SchemaBuf};
use memmap2::{MmapOptions, MmapRaw};

use crate::error::Error;
use crate::file::{FileInfo, ShmFile};
use crate::name::ShmName;

/// Bytes a segment needs before its schema descriptor can be read: the header and the
/// descriptor's field count.
pub(crate) const MIN_SEGMENT: usize = DESCRIPTOR_OFFSET + 4;

/// One mapping of a named segment.
pub(crate) struct Segment {
    name: ShmName,
    map: MmapRaw,
    writable: bool,
    file: ShmFile,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name.bare())
            .field("len", &self.map.len())
            .field("writable", &self.writable)
            .finish()
    }
}

impl Segment {
    /// Maps `file`, which must hold at least [`MIN_SEGMENT`] bytes (checked here, from
    /// `fstat`, before anything is mapped or touched). A read-only mapping for a reader
    /// (`write` false), read-write for the writer.
    pub(crate) fn map(name: &ShmName, file: ShmFile, write: bool) -> Result<Segment, Error> {
        let size = file.current_size()? as usize;
        if size < MIN_SEGMENT {
            return Err(Error::TooSmall {
                name: name.bare().to_string(),
                needed: MIN_SEGMENT,
                size,
            });
        }
        let map = if write {
            MmapOptions::new().len(size).map_raw(&file.file)?
        } else {
            MmapOptions::new().len(size).map_raw_read_only(&file.file)?
        };
        Ok(Segment {
            name: name.clone(),
            map,
            writable: write,
            file,
        })
    }

    /// The segment name without the leading `/`.
    pub(crate) fn name(&self) -> &str {
        self.name.bare()
    }

    /// Owner, permissions and size of the file (as it was when opened; the size is read
    /// again).
    pub(crate) fn file_info(&self) -> FileInfo {
        let mut info = self.file.info;
        if let Ok(size) = self.file.current_size() {
            info.size = size;
        }
        info
    }

    /// True if the name no longer refers to this file: unlinked, or unlinked and created
    /// anew. `false` when it cannot be told (no permission to look any more).
    pub(crate) fn replaced(&self) -> bool {
        match crate::file::current_id(&self.name) {
            Ok(Some(id)) => id != self.file.id,
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// The mapping as a core region with an unbounded lifetime.
    ///
    /// # Safety
    ///
    /// The caller keeps this `Segment` alive (not dropped, so not unmapped) for as long
    /// as it uses the region or anything built on it, and never hands the `'static`
    /// region out to code that could outlive the segment.
    pub(crate) unsafe fn region_static(&self) -> Region<'static> {
        let r = if self.writable {
            // SAFETY:
            // - `MmapRaw::map_raw` maps the file PROT_READ | PROT_WRITE, MAP_SHARED; the
            //   pointer is valid for reads and writes of `len` bytes until the mapping is
            //   dropped, which the caller's contract rules out while the region is used;
            // - the start is page-aligned, so aligned to REGION_ALIGN;
            // - every access flexshm makes to these bytes, in this and every other
            //   process, is a 32-bit atomic access through `Region`, or (frontend area
            //   only) an atomic of this crate; programs that write the segment with plain
            //   accesses are outside the protocol, and validation treats what they leave
            //   as untrusted data.
            unsafe { Region::from_raw_parts(self.map.as_mut_ptr(), self.map.len()) }
        } else {
            // SAFETY: as above, for a PROT_READ mapping: valid for reads of `len` bytes
            // while mapped; the region is marked read-only, so only loads are made.
            unsafe { Region::from_raw_parts_read_only(self.map.as_ptr(), self.map.len()) }
        };
        // Cannot fail: an mmap never returns a null or misaligned pointer.
        r.expect("mmap returned a null or misaligned address")
    }

    /// The 32-bit frontend word at byte offset `off` of the header. Through a read-only
    /// mapping only loads may be made on it.
    pub(crate) fn word(&self, off: usize) -> &AtomicU32 {
        assert!(
            (FRONTEND_AREA..FRONTEND_AREA + FRONTEND_AREA_LEN).contains(&off)
                && off.is_multiple_of(4)
                && off + 4 <= self.map.len(),
            "frontend word out of bounds"
        );
        // SAFETY:
        // - in bounds (checked above: the mapping holds at least MIN_SEGMENT bytes, so the
        //   whole frontend area) and 4-aligned (page-aligned base, 4-aligned offset);
        // - the core never touches the frontend area after initialisation, and every
        //   other access to it is this crate's atomics, so no non-atomic access races;
        // - through a read-only mapping this crate only loads (the writer's words are
        //   stored only by `Writer`, which maps read-write); an atomic 32-bit load is a
        //   plain load instruction, valid on read-only memory;
        // - the mapping lives as long as `&self`; AtomicU32 has no invalid bit patterns.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU32) }
    }

    /// The 64-bit frontend word at byte offset `off` (8-aligned) of the header; as
    /// [`word`](Self::word).
    pub(crate) fn word64(&self, off: usize) -> &AtomicU64 {
        assert!(
            (FRONTEND_AREA..FRONTEND_AREA + FRONTEND_AREA_LEN).contains(&off)
                && off.is_multiple_of(8)
                && off + 8 <= self.map.len(),
            "frontend word out of bounds"
        );
        // SAFETY: as in `word`, with 8-byte alignment checked above. 64-bit atomic loads
        // are plain loads on the 64-bit targets flexshm-std supports.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    /// The segment's schema and mode, validating the whole header (size, magic,
    /// version, descriptor, geometry) first.
    pub(crate) fn schema(&self) -> Result<(SchemaBuf, flexshm_core::Mode), Error> {
        // SAFETY: the region is used only within this call, while `self` is borrowed.
        let region = unsafe { self.region_static() };
        flexshm_core::internal::read_schema(&region)
            .map_err(|e| Error::from_core_open(self.name(), e))
    }
}

/// Compares the caller's fields with the segment's, naming the first difference.
pub(crate) fn compare<F: AsRef<[flexshm_core::FieldDef]>>(
    name: &str,
    ours: &Layout<F>,
    theirs: &[flexshm_core::FieldDef],
) -> Result<(), Error> {
    let ours = ours.fields();
    let mismatch = |field: &str, detail: String| Error::LayoutMismatch {
        name: name.to_string(),
        field: field.to_string(),
        detail,
    };
    for i in 0..ours.len().max(theirs.len()) {
        match (ours.get(i), theirs.get(i)) {
            (Some(a), Some(b)) if a.name != b.name => {
                return Err(mismatch(
                    a.name.as_str(),
                    format!(
                        "field {i} is '{}' in this program but '{}' in the segment",
                        a.name, b.name
                    ),
                ))
            }
            (Some(a), Some(b)) if a.kind != b.kind => {
                return Err(mismatch(
                    a.name.as_str(),
                    format!(
                        "type differs: this program declares {}, the segment has {}",
                        a.kind, b.kind
                    ),
                ))
            }
            (Some(_), Some(_)) => {}
            (Some(a), None) => {
                return Err(mismatch(
                    a.name.as_str(),
                    format!(
                        "this program declares it as field {i}, the segment has only {i} fields"
                    ),
                ))
            }
            (None, Some(b)) => {
                return Err(mismatch(
                    b.name.as_str(),
                    format!(
                        "the segment has it as field {i}, this program declares only {i} fields"
                    ),
                ))
            }
            (None, None) => {}
        }
    }
    Ok(())
}
