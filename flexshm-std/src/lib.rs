//! # flexshm-std
//!
//! flexshm over named POSIX shared memory: one writer process publishes typed records,
//! any number of reader processes take consistent snapshots without locks, and every
//! field says whether it is valid, modified, truncated or unwritten.
//!
//! One writer type and one reader type, each generic over the schema: a struct declared
//! with [`record!`] (`Writer<SensorData>`, `Reader<SensorData>`), or [`Dynamic`] for a
//! schema known only at run time (`Writer::<Dynamic>::create_with_fields`;
//! `Reader::<Dynamic>::open(name)` reads the schema from the segment). A reader has no
//! write method.
//!
//! - **Segments** are named like Python's `multiprocessing.shared_memory` (`sensors` is
//!   the file `/dev/shm/sensors`), created with mode 0600 unless
//!   [`CreateOptions::permissions`] says otherwise (e.g. `0o640` for a group of readers),
//!   and outlive the processes that use them: dropping never unlinks, [`unlink`] does.
//!   A segment appears under its name only once it is complete.
//! - **Readers** map the segment read-only: they need only read permission and cannot
//!   truncate, corrupt or crash the writer or each other. Opening validates the whole
//!   header first and says exactly what is wrong ([`Error`]); it can wait for a segment
//!   that does not exist yet ([`OpenOptions::timeout`]).
//! - **One writer**: the creating handle claims the segment (process id and start time).
//!   A second writer gets [`Error::WriterAlive`]; when the claiming process is dead, a
//!   new writer takes over and repairs a record left half-written. A writer never adopts
//!   a file of another user, one that others may write, or a symbolic link, and a handle
//!   inherited by a forked child cannot write.
//! - **Waiting** ([`Reader::read`], [`Reader::wait`]) spins briefly, then sleeps in the
//!   kernel on a futex that the writer's commits wake.
//!
//! ```
//! use flexshm_std::{record, CreateOptions, ReadOptions, Reader, Writer};
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
//! // Writer process
//! let mut writer = Writer::<SensorData>::create(&name, &CreateOptions::default())?;
//! writer.write(&SensorData { temperature: 23.5, ..Default::default() })?;
//!
//! // Reader process
//! let mut reader = Reader::<SensorData>::open(&name)?;
//! let snap = reader.read(ReadOptions::default(), Duration::from_secs(1))?;
//! let data = snap.record()?;
//! assert!(snap.status(SensorData::temperature).valid());
//! assert!(snap.status(SensorData::status_msg).valid()); // written as "" by write()
//! assert_eq!(data.temperature, 23.5);
//! # flexshm_std::unlink(&name)?;
//! # Ok::<(), flexshm_std::Error>(())
//! ```
//!
//! Limits: a writer that truncates its own segment while readers map it makes their next
//! access fault (SIGBUS), as with any shared mapping; a reader trusts the data of
//! whoever owns the name (check [`Reader::file_info`]). Writer liveness uses process ids
//! and wake-ups use `CLOCK_MONOTONIC`, so a segment's writer and readers must share a
//! PID namespace and a time namespace (one machine, one container or none).

mod claim;
mod error;
mod file;
mod name;
mod reader;
mod segment;
mod wake;
mod writer;

pub use error::Error;
pub use file::FileInfo;
/// The protocol core's error kinds, found in [`Error::Core`].
pub use flexshm_core::Error as CoreError;
pub use flexshm_core::{
    record, ArrayRef, Dims, Dtype, Dynamic, FieldDef, FieldId, FieldIndex, FieldStatus, FieldValue,
    Kind, Layout, Mode, Name, ReadInfo, ReadOptions, Record, Schema, SchemaBuf, Snapshot, Value,
};
pub use name::MAX_NAME_BYTES;
pub use reader::{Reader, WriterStatus};
pub use writer::Writer;

use std::time::Duration;

/// How [`Writer::create`] makes a new segment.
///
/// ```
/// use flexshm_std::{CreateOptions, Mode};
/// let o = CreateOptions::default();
/// assert_eq!((o.mode, o.permissions), (Mode::Single, 0o600));
/// let fifo = CreateOptions { permissions: 0o640, ..CreateOptions::fifo(16) };
/// assert_eq!(fifo.mode, Mode::Fifo { slots: 16 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Single-slot (latest value) or FIFO with a number of slots.
    pub mode: Mode,
    /// File mode bits of a new segment (`0o600`: only this user), applied exactly (the
    /// umask does not reduce them). Readers need only read permission: `0o640` shares
    /// with the file's group. An existing segment keeps its own, and a writer does not
    /// adopt one that others may write unless these bits allow it.
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

/// How [`Reader::open_with`] opens a segment.
///
/// ```
/// use flexshm_std::{Dynamic, Error, OpenOptions, Reader};
/// use std::time::Duration;
/// // Wait up to 20 ms for a writer to create the segment.
/// let opts = OpenOptions { timeout: Duration::from_millis(20) };
/// let err = Reader::<Dynamic>::open_with("flexshm-doc-open-later", &opts).unwrap_err();
/// assert!(matches!(err, Error::NotFound { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    /// How long to wait for the segment to be created (and its header completed) when it
    /// does not exist yet, so that the start order of writer and readers does not
    /// matter. Zero (the default): fail at once with [`Error::NotFound`].
    pub timeout: Duration,
}

/// Removes segment `name`. Processes that have it open keep using it (readers learn of
/// it: [`Error::Replaced`]); the name is free for a new segment at once.
/// [`Error::NotFound`] if there is no such segment.
///
/// ```
/// let err = flexshm_std::unlink("flexshm-doc-unlink-missing").unwrap_err();
/// assert!(matches!(err, flexshm_std::Error::NotFound { .. }));
/// ```
pub fn unlink(name: &str) -> Result<(), Error> {
    file::unlink(&name::ShmName::parse(name)?)
}

/// True if a shared-memory object called `name` exists (flexshm or not, but not a
/// symbolic link); false for an invalid name.
///
/// ```
/// assert!(!flexshm_std::exists("flexshm-doc-exists-missing"));
/// assert!(!flexshm_std::exists("not/valid"));
/// ```
pub fn exists(name: &str) -> bool {
    let Ok(shm) = name::ShmName::parse(name) else {
        return false;
    };
    !matches!(
        file::ShmFile::open(&shm, false),
        Err(Error::NotFound { .. } | Error::Symlink { .. } | Error::InvalidName { .. })
    )
}
