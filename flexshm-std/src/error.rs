//! Errors of the std frontend: every message names the segment and says what to do.

use std::fmt;

use flexshm_core::Mode;

/// Everything that can go wrong with a named segment.
///
/// Each variant names the segment (as the caller spelled it, without the leading `/`)
/// and its message says what a user can do about it.
///
/// ```
/// use flexshm_std::{Dynamic, Reader};
/// let err = Reader::<Dynamic>::open("flexshm-doc-no-such-segment").unwrap_err();
/// assert!(matches!(err, flexshm_std::Error::NotFound { .. }));
/// assert!(err.to_string().contains("flexshm-doc-no-such-segment"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No segment of that name exists.
    NotFound {
        /// The segment name.
        name: String,
    },
    /// The name cannot be a shared-memory name.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The segment exists but is not a flexshm segment (another program's shared memory,
    /// or one overwritten by another program).
    NotFlexshm {
        /// The segment name.
        name: String,
    },
    /// The segment was written by a protocol version this build does not speak.
    UnsupportedVersion {
        /// The segment name.
        name: String,
        /// The version in the segment's header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The segment holds records of another layout than the caller's.
    LayoutMismatch {
        /// The segment name.
        name: String,
        /// The first differing field (the caller's name for it, or the segment's if the
        /// caller has fewer fields).
        field: String,
        /// What differs, e.g. "type: this program declares f64, the segment has i32".
        detail: String,
    },
    /// The segment exists with the same layout but another mode or slot count.
    ModeMismatch {
        /// The segment name.
        name: String,
        /// The mode the caller asked for.
        expected: Mode,
        /// The mode of the segment.
        found: Mode,
    },
    /// The segment is smaller than its header says it must be (truncated by another
    /// program), or too small to hold a header at all.
    TooSmall {
        /// The segment name.
        name: String,
        /// Bytes the header says the segment has (or the size of a bare header).
        needed: usize,
        /// Bytes the segment has.
        size: usize,
    },
    /// The segment's header holds values no flexshm writer produces.
    Corrupt {
        /// The segment name.
        name: String,
        /// What is wrong.
        what: &'static str,
    },
    /// Another process, still running, is the segment's writer.
    WriterAlive {
        /// Its process id.
        pid: u32,
    },
    /// A writer handle was used in a process forked from the one that made it: the
    /// writer role stays with that process.
    ForkedWriter {
        /// The segment name.
        name: String,
        /// The process that owns the writer role.
        owner_pid: u32,
    },
    /// The name is a symbolic link; segments are never opened through one.
    Symlink {
        /// The segment name.
        name: String,
    },
    /// A writer will not adopt a segment file another user owns.
    ForeignOwner {
        /// The segment name.
        name: String,
        /// The owner's user id.
        owner_uid: u32,
        /// The file's permission bits.
        permissions: u32,
    },
    /// A writer will not adopt a segment file that group or others may write when that
    /// was not asked for.
    InsecurePermissions {
        /// The segment name.
        name: String,
        /// The file's permission bits.
        permissions: u32,
        /// The permission bits the writer asked for.
        requested: u32,
    },
    /// The name exists but its header was never published (its creator has not
    /// finished, or died before it did).
    Uninitialised {
        /// The segment name.
        name: String,
    },
    /// The segment's name was unlinked (and perhaps given to a new segment) after this
    /// reader opened it; nothing new will arrive through this handle.
    Replaced {
        /// The segment name.
        name: String,
    },
    /// Invalid [`CreateOptions`](crate::CreateOptions) (zero FIFO slots, bad permission
    /// bits).
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// Permission to open the segment was denied.
    PermissionDenied {
        /// The segment name.
        name: String,
    },
    /// A read found nothing in time.
    Timeout {
        /// True if it waited for a new record (FIFO: nothing unread arrived); false if a
        /// record existed but a writer held its slot mid-write for the whole time.
        no_record: bool,
        /// Whether the process that claims the writer role is alive: `None` if no
        /// writer claims the segment.
        writer_alive: Option<bool>,
    },
    /// An error of the protocol core (bad value in a write, corrupt record, ...).
    Core(flexshm_core::Error),
    /// An operating-system error.
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { name } => write!(
                f,
                "shared-memory segment '{name}' does not exist: start its writer first, or check the name"
            ),
            Error::InvalidName { name, reason } => {
                write!(f, "invalid segment name {name:?}: {reason}")
            }
            Error::NotFlexshm { name } => write!(
                f,
                "shared-memory segment '{name}' is not a flexshm segment (another program's memory, \
                 overwritten, or its creator stopped before finishing it); pick another name, \
                 or unlink it once you are sure no program uses it"
            ),
            Error::UnsupportedVersion {
                name,
                found,
                supported,
            } => write!(
                f,
                "segment '{name}' uses flexshm protocol version {found}, this build speaks version \
                 {supported}: use a matching flexshm version on both sides"
            ),
            Error::LayoutMismatch {
                name,
                field,
                detail,
            } => write!(
                f,
                "segment '{name}' holds another record layout: field '{field}': {detail}; use the \
                 same record definition on both sides, or unlink the segment to recreate it"
            ),
            Error::ModeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "segment '{name}' exists in mode {} but {} was asked for; use the same mode, or \
                 unlink the segment to recreate it",
                describe_mode(*found),
                describe_mode(*expected)
            ),
            Error::TooSmall { name, needed, size } => write!(
                f,
                "segment '{name}' is {size} bytes but needs {needed}: it was truncated or \
                 resized by another program; unlink it and restart its writer"
            ),
            Error::Corrupt { name, what } => write!(
                f,
                "segment '{name}' has a corrupt header ({what}): it was overwritten by another \
                 program; unlink it and restart its writer"
            ),
            Error::WriterAlive { pid } => write!(
                f,
                "the segment already has a writer, process {pid}, and it is running: stop it \
                 first, or open the segment for reading"
            ),
            Error::ForkedWriter { name, owner_pid } => write!(
                f,
                "this writer handle of segment '{name}' belongs to process {owner_pid}; a \
                 forked child cannot write through it (create the writer in the process that \
                 writes)"
            ),
            Error::Symlink { name } => write!(
                f,
                "segment '{name}' is a symbolic link in /dev/shm; flexshm never follows one \
                 (remove the link)"
            ),
            Error::ForeignOwner {
                name,
                owner_uid,
                permissions,
            } => write!(
                f,
                "segment '{name}' belongs to user {owner_uid} (mode {permissions:04o}), not to \
                 this user; a writer only adopts its own segments: pick another name, or have \
                 that user remove it"
            ),
            Error::InsecurePermissions {
                name,
                permissions,
                requested,
            } => write!(
                f,
                "segment '{name}' has mode {permissions:04o}, which lets other users write it \
                 (this writer asked for {requested:04o}); a writer does not adopt it: remove it, \
                 or create with matching permissions"
            ),
            Error::Uninitialised { name } => write!(
                f,
                "segment '{name}' exists but its header was never completed: its creator has \
                 not finished, or died before it did"
            ),
            Error::Replaced { name } => write!(
                f,
                "segment '{name}' was unlinked (and perhaps created anew) after this handle \
                 opened it; nothing new will arrive here: open it again"
            ),
            Error::InvalidOptions { reason } => write!(f, "invalid create options: {reason}"),
            Error::PermissionDenied { name } => write!(
                f,
                "permission denied opening segment '{name}': it belongs to another user; readers \
                 need read access and the writer read-write access (segments are created with \
                 mode 0600 unless CreateOptions::permissions says otherwise, e.g. 0o640 for a \
                 group of readers)"
            ),
            Error::Timeout {
                no_record,
                writer_alive,
            } => {
                if *no_record {
                    f.write_str("timed out waiting for a new record")?;
                } else {
                    f.write_str(
                        "timed out: the writer held the record's slot mid-write for the whole timeout",
                    )?;
                }
                match (no_record, writer_alive) {
                    (_, None) => f.write_str("; no writer holds the segment"),
                    (true, Some(true)) => f.write_str("; the writer is alive"),
                    (false, Some(true)) => f.write_str(
                        "; the writer is alive and keeps overtaking the copy (retry, or give more time)",
                    ),
                    (true, Some(false)) => f.write_str(
                        "; the writer that holds the segment is dead: restart it (it takes over)",
                    ),
                    (false, Some(false)) => f.write_str(
                        "; the writer that held the slot is dead: restart it (it takes over and repairs the slot)",
                    ),
                }
            }
            Error::Core(e) => write!(f, "{e}"),
            Error::Io(e) => write!(f, "shared-memory system call failed: {e}"),
        }
    }
}

fn describe_mode(m: Mode) -> String {
    match m {
        Mode::Single => "single-slot".to_string(),
        Mode::Fifo { slots } => format!("FIFO with {slots} slots"),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<flexshm_core::Error> for Error {
    fn from(e: flexshm_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl Error {
    /// Turns a core error met while validating segment `name` into the specific error.
    pub(crate) fn from_core_open(name: &str, e: flexshm_core::Error) -> Error {
        use flexshm_core::Error as C;
        let name = name.to_string();
        match e {
            C::BadMagic { .. } => Error::NotFlexshm { name },
            C::UnsupportedVersion { found, supported } => Error::UnsupportedVersion {
                name,
                found,
                supported,
            },
            C::RegionTooSmall { needed, available } => Error::TooSmall {
                name,
                needed,
                size: available,
            },
            C::CorruptHeader { what } | C::CorruptBuffer { what, .. } => {
                Error::Corrupt { name, what }
            }
            C::InvalidField { reason, .. } | C::CorruptRecord { what: reason, .. } => {
                Error::Corrupt { name, what: reason }
            }
            C::TooManyFields { .. } => Error::Corrupt {
                name,
                what: "field count",
            },
            other => Error::Core(other),
        }
    }
}
