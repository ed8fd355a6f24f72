//! # flexshm-std
//!
//! flexshm over named POSIX shared memory: one writer process publishes typed records,
//! any number of reader processes take consistent snapshots without locks, and every
//! field says whether it is valid, modified, truncated or unwritten.
//!
//! - **Segments** are named like Python's `multiprocessing.shared_memory` (`sensors` is
//!   the POSIX object `/sensors`, the file `/dev/shm/sensors`), created with mode 0600
//!   unless [`CreateOptions::permissions`] says otherwise, and outlive the processes that
//!   use them: closing never unlinks, [`unlink`] does.
//! - **Opening** validates the whole header before anything is read and says exactly
//!   what is wrong ([`Error`]).
//! - **One writer**: the creating handle claims the segment (process id and start time,
//!   see the `claim` module docs for the header words). A second writer gets
//!   [`Error::WriterAlive`]; when the claiming process is dead, a new writer takes over
//!   and repairs a record left half-written.
//! - **Waiting** ([`DynReader::read`]) spins briefly, then sleeps in the kernel on a futex
//!   that the writer's commit wakes; the writer makes the system call only when a reader
//!   waits.
//!
//! Two APIs: [`SharedMemory`] for Rust structs declared with [`record!`], and
//! [`DynWriter`] / [`DynReader`] for schemas known at run time.
//!
//! ```
//! use flexshm_std::{record, CreateOptions, ReadOptions, SharedMemory};
//! use std::time::Duration;
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
//! # let name = format!("flexshm-doc-lib-{}", std::process::id());
//! let mut writer = SharedMemory::<SensorData>::create(&name, &CreateOptions::default())?;
//! writer.write(&SensorData { temperature: 23.5, ..Default::default() })?;
//!
//! let mut reader = SharedMemory::<SensorData>::open(&name)?;
//! let mut data = SensorData::default();
//! let info = reader.read(&mut data, ReadOptions::default(), Duration::from_secs(1))?;
//! assert!(info.field(SensorData::temperature).valid());
//! assert!(info.field(SensorData::status_msg).valid()); // written as "" by write()
//! assert_eq!(data.temperature, 23.5);
//! flexshm_std::unlink(&name)?;
//! # Ok::<(), flexshm_std::Error>(())
//! ```
//!
//! Limits: a segment truncated by another program *while mapped* makes the next access
//! fault (SIGBUS), as with any shared mapping; one truncated before it is opened gives
//! [`Error::TooSmall`]. Writer liveness uses process ids, so a segment's writer and
//! readers must share a PID namespace.

mod claim;
mod dynamic;
mod error;
mod name;
mod segment;
mod typed;
mod wake;

pub use dynamic::{DynReader, DynWriter};
pub use error::Error;
pub use flexshm_core::{
    decode_field, raw_field, record, ArrayRef, Dtype, FieldDef, FieldId, FieldStatus, FieldValue,
    Kind, Layout, Mode, ReadInfo, ReadOptions, Record, Value,
};
pub use name::MAX_NAME_BYTES;
pub use typed::SharedMemory;

/// How [`DynWriter::create`] and [`SharedMemory::create`] make a new segment.
///
/// ```
/// use flexshm_std::{CreateOptions, Mode};
/// let o = CreateOptions::default();
/// assert_eq!((o.mode, o.permissions), (Mode::Single, 0o600));
/// let fifo = CreateOptions { permissions: 0o660, ..CreateOptions::fifo(16) };
/// assert_eq!(fifo.mode, Mode::Fifo { slots: 16 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Single-slot (latest value) or FIFO with a number of slots.
    pub mode: Mode,
    /// File mode bits of a new segment (`0o600`: only this user), applied exactly (the
    /// umask does not reduce them). An existing segment keeps its own. Readers need
    /// read-write access too (a waiting reader counts itself in the header), so share
    /// with a group as `0o660`, not `0o640`.
    pub permissions: u32,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            mode: Mode::Single,
            permissions: 0o600,
        }
    }
}

impl CreateOptions {
    /// FIFO mode with `slots` record slots, mode 0600.
    ///
    /// ```
    /// assert_eq!(flexshm_std::CreateOptions::fifo(4).mode, flexshm_std::Mode::Fifo { slots: 4 });
    /// ```
    pub fn fifo(slots: u32) -> Self {
        CreateOptions {
            mode: Mode::Fifo { slots },
            ..Default::default()
        }
    }
}

/// Removes segment `name`. Processes that have it open keep using it; the name is free
/// for a new segment at once. [`Error::NotFound`] if there is no such segment.
///
/// ```
/// let err = flexshm_std::unlink("flexshm-doc-unlink-missing").unwrap_err();
/// assert!(matches!(err, flexshm_std::Error::NotFound { .. }));
/// ```
pub fn unlink(name: &str) -> Result<(), Error> {
    let shm = name::ShmName::parse(name)?;
    match rustix::shm::unlink(shm.posix()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOENT) => Err(Error::NotFound {
            name: shm.bare().to_string(),
        }),
        Err(rustix::io::Errno::ACCESS) | Err(rustix::io::Errno::PERM) => {
            Err(Error::PermissionDenied {
                name: shm.bare().to_string(),
            })
        }
        Err(e) => Err(Error::Io(std::io::Error::from_raw_os_error(
            e.raw_os_error(),
        ))),
    }
}

/// True if a shared-memory object called `name` exists (flexshm or not); false for an
/// invalid name.
///
/// ```
/// assert!(!flexshm_std::exists("flexshm-doc-exists-missing"));
/// assert!(!flexshm_std::exists("not/valid"));
/// ```
pub fn exists(name: &str) -> bool {
    let Ok(shm) = name::ShmName::parse(name) else {
        return false;
    };
    match rustix::shm::open(
        shm.posix(),
        rustix::shm::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    ) {
        Ok(_) => true,
        Err(e) => e != rustix::io::Errno::NOENT,
    }
}
