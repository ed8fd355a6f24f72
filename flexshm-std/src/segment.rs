//! Named POSIX shared-memory objects: open, create, size checks, the mapping.
//!
//! The mapping is a [`memmap2::MmapRaw`]: raw memory, never a `&[u8]` or `&mut [u8]`,
//! because other processes write it while we hold it. All access goes through
//! [`flexshm_core::Region`] (32-bit atomics) except the std frontend's own words in the
//! header's frontend area (see [`crate::claim`] and [`crate::wake`]), which are atomics
//! too.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use flexshm_core::header::{DESCRIPTOR_OFFSET, FRONTEND_AREA, FRONTEND_AREA_LEN};
use flexshm_core::{FieldDef, Mode, Region};
use memmap2::MmapRaw;
use rustix::fs::Mode as FileMode;
use rustix::shm::OFlags;

use crate::error::Error;
use crate::name::ShmName;

/// Bytes a segment needs before its schema descriptor can be read: the header and the
/// descriptor's field count.
pub(crate) const MIN_SEGMENT: usize = DESCRIPTOR_OFFSET + 4;

/// How long opening waits for a segment that another process is creating right now
/// (empty, or header not yet published) before calling it "not flexshm". Creating takes
/// microseconds, but a creator can be descheduled for a long time on a loaded machine;
/// giving up early would report a live segment as foreign.
const INIT_WAIT: Duration = Duration::from_secs(2);
/// Pause between looks at such a segment (creating one takes microseconds).
const INIT_POLL: Duration = Duration::from_micros(100);

/// One mapping of a named segment.
pub(crate) struct Segment {
    name: ShmName,
    map: MmapRaw,
    /// Device and inode of the object mapped, to tell whether the name still refers to it.
    id: (u64, u64),
}

fn file_id(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name.bare())
            .field("len", &self.map.len())
            .finish()
    }
}

fn io_err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl Segment {
    /// Creates a new segment of `size` zero bytes with exactly `permissions`; `Ok(None)`
    /// if the name is taken.
    pub(crate) fn create_new(
        name: &ShmName,
        size: usize,
        permissions: u32,
    ) -> Result<Option<Segment>, Error> {
        let fd = match rustix::shm::open(
            name.posix(),
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
            FileMode::from_raw_mode(permissions & 0o777),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::EXIST) => return Ok(None),
            Err(rustix::io::Errno::ACCESS) => {
                return Err(Error::PermissionDenied {
                    name: name.bare().to_string(),
                })
            }
            Err(e) => return Err(Error::Io(io_err(e))),
        };
        let setup = || -> Result<Segment, Error> {
            // The umask may have cleared bits the caller asked for; set them exactly.
            rustix::fs::fchmod(&fd, FileMode::from_raw_mode(permissions & 0o777))
                .map_err(io_err)?;
            rustix::fs::ftruncate(&fd, size as u64).map_err(io_err)?;
            let file = File::from(fd.try_clone()?);
            let map = MmapRaw::map_raw(&file)?;
            Ok(Segment {
                name: name.clone(),
                map,
                id: file_id(&file)?,
            })
        };
        match setup() {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                // We created it and could not set it up: leave nothing half-made behind.
                let _ = rustix::shm::unlink(name.posix());
                Err(e)
            }
        }
    }

    /// Opens and maps an existing segment, checking its size against the bare minimum
    /// and waiting briefly for a segment that is being created. The header is not
    /// validated here (see [`Segment::schema`]).
    pub(crate) fn open_existing(name: &ShmName) -> Result<Segment, Error> {
        let fd = match rustix::shm::open(name.posix(), OFlags::RDWR, FileMode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                return Err(Error::NotFound {
                    name: name.bare().to_string(),
                })
            }
            Err(rustix::io::Errno::ACCESS) => {
                return Err(Error::PermissionDenied {
                    name: name.bare().to_string(),
                })
            }
            Err(e) => return Err(Error::Io(io_err(e))),
        };
        let file = File::from(fd);
        let start = Instant::now();
        loop {
            // Size from fstat before mapping: never map (or touch) bytes the file lacks.
            let size = file.metadata()?.len() as usize;
            if size >= MIN_SEGMENT {
                let map = MmapRaw::map_raw(&file)?;
                let seg = Segment {
                    name: name.clone(),
                    map,
                    id: file_id(&file)?,
                };
                // A header whose magic is not yet published may be one being written
                // right now by a creating process: give it a moment.
                match flexshm_core::read_schema(&seg.region()) {
                    Err(flexshm_core::Error::BadMagic { found: 0 })
                        if start.elapsed() < INIT_WAIT =>
                    {
                        std::thread::sleep(INIT_POLL);
                        continue;
                    }
                    _ => return Ok(seg),
                }
            }
            if size == 0 && start.elapsed() < INIT_WAIT {
                // Created but not yet sized by its creator.
                std::thread::sleep(INIT_POLL);
                continue;
            }
            return Err(Error::TooSmall {
                name: name.bare().to_string(),
                needed: MIN_SEGMENT,
                size,
            });
        }
    }

    /// True if the name no longer refers to this mapping: unlinked, or unlinked and
    /// created anew.
    pub(crate) fn replaced(&self) -> bool {
        match rustix::shm::open(self.name.posix(), OFlags::RDONLY, FileMode::empty()) {
            Ok(fd) => file_id(&File::from(fd)).map_or(true, |id| id != self.id),
            Err(rustix::io::Errno::NOENT) => true,
            // Cannot tell (e.g. no permission any more): assume it is still ours.
            Err(_) => false,
        }
    }

    /// The segment name without the leading `/`.
    pub(crate) fn name(&self) -> &str {
        self.name.bare()
    }

    /// The mapping as a core region, borrowed from `self`.
    pub(crate) fn region(&self) -> Region<'_> {
        // SAFETY: the lifetime of the region is tied to `&self`, so see `region_static`
        // for the argument; here no caller obligation remains.
        unsafe { self.region_static() }
    }

    /// The mapping as a core region with an unbounded lifetime.
    ///
    /// # Safety
    ///
    /// The caller keeps this `Segment` alive (not dropped, so not unmapped) for as long
    /// as it uses the region or anything built on it, and never hands the `'static`
    /// region out to code that could outlive the segment.
    pub(crate) unsafe fn region_static(&self) -> Region<'static> {
        // SAFETY:
        // - `MmapRaw` maps the file with PROT_READ | PROT_WRITE, MAP_SHARED; the pointer
        //   is valid for reads and writes of `len` bytes until the mapping is dropped,
        //   which the caller's contract rules out while the region is used;
        // - the start is page-aligned, so aligned to REGION_ALIGN;
        // - every access flexshm makes to these bytes, in this and every other process, is
        //   a 32-bit atomic access through `Region`, or (frontend area only) an atomic of
        //   this crate; programs that write the segment with plain accesses are outside
        //   the protocol, and validation treats what they leave as untrusted data.
        let r = unsafe { Region::from_raw_parts(self.map.as_mut_ptr(), self.map.len()) };
        // Cannot fail: an mmap never returns a null or misaligned pointer.
        r.expect("mmap returned a null or misaligned address")
    }

    /// The 32-bit frontend word at byte offset `off` of the header.
    pub(crate) fn word(&self, off: usize) -> &AtomicU32 {
        assert!(
            (FRONTEND_AREA..FRONTEND_AREA + FRONTEND_AREA_LEN).contains(&off)
                && off % 4 == 0
                && off + 4 <= self.map.len(),
            "frontend word out of bounds"
        );
        // SAFETY:
        // - in bounds (checked above: the mapping holds at least MIN_SEGMENT bytes, so the
        //   whole frontend area) and 4-aligned (page-aligned base, 4-aligned offset);
        // - the core never touches the frontend area after initialisation, and every
        //   other access to it is this crate's atomics, so no non-atomic access races;
        // - the mapping lives as long as `&self`; AtomicU32 has no invalid bit patterns.
        unsafe { &*(self.map.as_mut_ptr().add(off) as *const AtomicU32) }
    }

    /// The 64-bit frontend word at byte offset `off` (8-aligned) of the header.
    pub(crate) fn word64(&self, off: usize) -> &AtomicU64 {
        assert!(
            (FRONTEND_AREA..FRONTEND_AREA + FRONTEND_AREA_LEN).contains(&off)
                && off % 8 == 0
                && off + 8 <= self.map.len(),
            "frontend word out of bounds"
        );
        // SAFETY: as in `word`, with 8-byte alignment checked above.
        unsafe { &*(self.map.as_mut_ptr().add(off) as *const AtomicU64) }
    }

    /// The segment's schema and mode, validating the whole header (size, magic,
    /// version, descriptor, geometry) first.
    pub(crate) fn schema(&self) -> Result<(Vec<FieldDef>, Mode), Error> {
        let (fields, mode) = flexshm_core::read_schema(&self.region())
            .map_err(|e| Error::from_core_open(self.name(), e))?;
        Ok((fields.to_vec(), mode))
    }

    /// Checks that the segment holds `fields` (the error names the first differing field
    /// and says how it differs) and returns its mode.
    pub(crate) fn check_layout(&self, fields: &[FieldDef]) -> Result<Mode, Error> {
        let (found, mode) = self.schema()?;
        compare(self.name(), fields, &found)?;
        Ok(mode)
    }
}

/// Compares the caller's fields with the segment's, naming the first difference.
pub(crate) fn compare(name: &str, ours: &[FieldDef], theirs: &[FieldDef]) -> Result<(), Error> {
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
