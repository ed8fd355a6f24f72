//! Everything the CLI takes from flexshm-std, in one place.
//!
//! The rest of the CLI sees only the types of [`crate::model`] and the functions here,
//! so a change of the flexshm-std API touches this file alone.
//!
//! The CLI only ever reads segments: `Reader::<Dynamic>::open` maps a segment read-only
//! and takes its schema from the header, and a reader that waits sleeps on a futex
//! without storing anything into the segment. It cannot disturb a running system.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::time::{Duration, Instant};

use flexshm_std::{
    Dynamic, Error as StdError, ReadInfo, ReadOptions, Reader, Snapshot, WriterStatus,
};

use crate::model::{
    decode_elem, elem_size, ArrayValue, FieldInfo, FieldKind, FieldSample, FileInfo, Mode, Record,
    Status, Value, WriterState,
};

/// Where Linux keeps POSIX shared-memory objects.
pub const SHM_DIR: &str = "/dev/shm";

/// How long one read may retry while the writer keeps overtaking the copy.
const CONTENDED_LIMIT: Duration = Duration::from_secs(1);

/// Why a segment could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No segment of that name.
    NotFound,
    /// Exists but is not a usable flexshm segment (foreign, corrupt, other version).
    NotFlexshm,
    /// Not a possible segment name.
    InvalidName,
    /// The file's permissions deny access.
    PermissionDenied,
    /// Anything else (system call failures, a writer stuck mid-write).
    Other,
}

/// An error about one segment: its name and the reason, for a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub name: String,
    pub kind: ErrorKind,
    pub reason: String,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "segment '{}': {}", self.name, self.reason)
    }
}

impl std::error::Error for SourceError {}

fn error(name: &str, kind: ErrorKind, reason: impl Into<String>) -> SourceError {
    SourceError {
        name: name.to_string(),
        kind,
        reason: reason.into(),
    }
}

/// Turns a flexshm-std error into one short reason (the library's messages also give
/// advice for programs, which a listing does not need).
fn from_std(name: &str, e: StdError) -> SourceError {
    use ErrorKind::*;
    match e {
        StdError::NotFound { .. } => error(name, NotFound, format!("no such segment in {SHM_DIR}")),
        StdError::InvalidName { reason, .. } => error(name, InvalidName, reason),
        StdError::NotFlexshm { .. } => error(
            name,
            NotFlexshm,
            "not a flexshm segment (no flexshm header)",
        ),
        StdError::UnsupportedVersion {
            found, supported, ..
        } => error(
            name,
            NotFlexshm,
            format!("flexshm protocol version {found}; this tool reads version {supported}"),
        ),
        StdError::TooSmall { needed, size, .. } => error(
            name,
            NotFlexshm,
            format!("corrupt: the file has {size} bytes, its header needs {needed}"),
        ),
        StdError::Corrupt { what, .. } => {
            error(name, NotFlexshm, format!("corrupt header: {what}"))
        }
        StdError::Uninitialised { .. } => error(
            name,
            NotFlexshm,
            "its header was never completed (creator not finished, or died)",
        ),
        StdError::PermissionDenied { .. } => error(name, PermissionDenied, "permission denied"),
        StdError::Symlink { .. } => error(name, NotFlexshm, "a symbolic link (never followed)"),
        StdError::Replaced { .. } => error(name, Other, "removed or replaced while being read"),
        StdError::Timeout { writer_alive, .. } => error(
            name,
            Other,
            format!(
                "the writer held the record's slot mid-write for {} s (writer {})",
                CONTENDED_LIMIT.as_secs(),
                match writer_alive {
                    Some(true) => "alive",
                    Some(false) => "dead",
                    None => "none",
                }
            ),
        ),
        StdError::Core(e) => error(name, NotFlexshm, format!("corrupt: {e}")),
        StdError::Io(e) => error(name, Other, e.to_string()),
        other => error(name, Other, other.to_string()),
    }
}

/// The name without a leading `/` or `/dev/shm/` (so that shell completion of
/// `/dev/shm/<TAB>` works).
pub fn bare_name(name: &str) -> &str {
    let n = name.strip_prefix(SHM_DIR).unwrap_or(name);
    n.strip_prefix('/').unwrap_or(n)
}

/// The file of a name that can be one (no `/`, not `.` or `..`).
fn path_of(name: &str) -> Option<String> {
    let bare = bare_name(name);
    let plain = !bare.is_empty() && !bare.contains(['/', '\0']) && bare != "." && bare != "..";
    plain.then(|| format!("{SHM_DIR}/{bare}"))
}

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// Starts with the flexshm magic.
    Flexshm,
    /// Zero: empty, or a flexshm segment its creator has not published yet.
    Zero,
    /// Something else: not flexshm.
    Other,
    /// Could not be read (permissions, vanished, not a regular file).
    Unreadable,
}

/// Reads the magic word of segment `name` with a plain read of its file (no mapping).
pub fn magic(name: &str) -> Magic {
    let Some(path) = path_of(name) else {
        return Magic::Unreadable;
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let Ok(mut file) = file else {
        return Magic::Unreadable;
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Magic::Unreadable;
    }
    let mut word = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match file.read(&mut word[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Magic::Unreadable,
        }
    }
    match u32::from_le_bytes(word) {
        flexshm_core::internal::MAGIC if got == 4 => Magic::Flexshm,
        0 => Magic::Zero,
        _ => Magic::Other,
    }
}

/// Names of the regular files in [`SHM_DIR`], sorted.
pub fn list_names() -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        // A name that is not UTF-8 cannot be a segment name given on a command line
        // as text; flexshm never creates one.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Owner, permissions and size of segment `name`'s file.
pub fn file_info(name: &str) -> Result<FileInfo, SourceError> {
    let bare = bare_name(name);
    let path =
        path_of(name).ok_or_else(|| error(bare, ErrorKind::InvalidName, "not a segment name"))?;
    match std::fs::symlink_metadata(&path) {
        Ok(m) => Ok(FileInfo {
            uid: m.uid(),
            gid: m.gid(),
            perms: m.mode() & 0o7777,
            size: m.size(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(error(
            bare,
            ErrorKind::NotFound,
            format!("no such segment in {SHM_DIR}"),
        )),
        Err(e) => Err(error(bare, ErrorKind::Other, e.to_string())),
    }
}

/// Removes segment `name` (processes that have it open keep it).
pub fn unlink(name: &str) -> Result<(), SourceError> {
    let bare = bare_name(name);
    flexshm_std::unlink(bare).map_err(|e| from_std(bare, e))
}

/// An open segment, read through one reader with its own FIFO cursor.
pub struct Segment {
    name: String,
    reader: Reader<Dynamic>,
    fields: Vec<FieldInfo>,
    mode: Mode,
    /// The last record read: its bytes and what the read returned.
    buf: Vec<u8>,
    last: Option<ReadInfo>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .finish()
    }
}

fn kind(k: &flexshm_std::Kind) -> FieldKind {
    match *k {
        flexshm_std::Kind::Scalar(d) => FieldKind::Scalar(d),
        flexshm_std::Kind::Str { chars } => FieldKind::Str { chars },
        flexshm_std::Kind::Array { dtype: d, dims } => FieldKind::Array {
            dtype: d,
            dims: dims.as_slice().to_vec(),
        },
    }
}

impl Segment {
    /// Opens segment `name` (`x`, `/x` or `/dev/shm/x`) with the schema its header
    /// describes. A FIFO reader starts at the oldest record still in the ring.
    pub fn open(name: &str) -> Result<Segment, SourceError> {
        let bare = bare_name(name);
        // A foreign file is refused without mapping it.
        if magic(bare) == Magic::Other {
            return Err(from_std(
                bare,
                StdError::NotFlexshm {
                    name: bare.to_string(),
                },
            ));
        }
        let reader = Reader::<Dynamic>::open(bare).map_err(|e| from_std(bare, e))?;
        let layout = reader.layout();
        let fields = layout
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| FieldInfo {
                name: f.name.as_str().to_string(),
                kind: kind(&f.kind),
                offset: layout.offset(i),
                size: layout.size(i),
            })
            .collect();
        let mode = match reader.mode() {
            flexshm_std::Mode::Single => Mode::Single,
            flexshm_std::Mode::Fifo { slots } => Mode::Fifo { slots },
        };
        Ok(Segment {
            name: reader.name().to_string(),
            buf: vec![0; reader.snapshot_len()],
            reader,
            fields,
            mode,
            last: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The schema, with each field's offset and size inside a record.
    pub fn fields(&self) -> &[FieldInfo] {
        &self.fields
    }

    /// Bytes of one record slot (values and per-field metadata).
    pub fn record_size(&self) -> usize {
        self.reader.layout().slot_size()
    }

    /// Commit number of the newest committed record (0 before the first commit).
    pub fn head(&self) -> u32 {
        self.reader.head()
    }

    /// Commits from `older` to `newer`, following the wrap of commit numbers.
    pub fn commits_between(&self, older: u32, newer: u32) -> u32 {
        // docs/PROTOCOL.md §10: numbers run modulo the largest multiple of the buffer
        // count (slots + 1) that is below 2^32.
        let buffers = self.mode.slots() as u64 + 1;
        let modulus = (u32::MAX as u64 / buffers) * buffers;
        ((newer as u64 + modulus - older as u64 % modulus) % modulus) as u32
    }

    /// The writer process and whether it runs.
    pub fn writer(&self) -> WriterState {
        match self.reader.writer() {
            WriterStatus::Alive { pid } => WriterState::Alive { pid },
            WriterStatus::Dead { pid } => WriterState::Dead { pid },
            WriterStatus::None => WriterState::None,
        }
    }

    /// True once the name no longer refers to the memory this handle reads (removed,
    /// or removed and created anew).
    pub fn is_replaced(&self) -> bool {
        self.reader.is_replaced()
    }

    /// FIFO: records this reader lost to the writer lapping it since it was opened.
    pub fn lost_total(&self) -> u64 {
        self.reader.lost_total()
    }

    /// Waits until the head is no longer `since`, up to `timeout`; returns whether it
    /// moved. Reads no record (a FIFO cursor stays where it is).
    pub fn wait(&mut self, since: u32, timeout: Duration) -> Result<bool, SourceError> {
        self.reader
            .wait_head_change(since, timeout)
            .map_err(|e| from_std(&self.name, e))
    }

    /// Reads the newest record without waiting for a new one. `None`: FIFO mode and
    /// nothing committed yet. In FIFO mode older unread records are skipped (not lost).
    pub fn read_latest(&mut self) -> Result<Option<(u32, u32)>, SourceError> {
        let opts = ReadOptions {
            latest: true,
            ..Default::default()
        };
        let start = Instant::now();
        loop {
            match self.reader.read_into(&mut self.buf, opts, Duration::ZERO) {
                Ok(info) => return Ok(Some(self.keep(info))),
                // FIFO, nothing committed yet.
                Err(StdError::Timeout {
                    no_record: true, ..
                }) => return Ok(None),
                // The writer kept overtaking the copy: try again for a while.
                Err(StdError::Timeout { .. }) if start.elapsed() < CONTENDED_LIMIT => {
                    std::thread::yield_now();
                }
                Err(e) => return Err(from_std(&self.name, e)),
            }
        }
    }

    /// Reads the next record, waiting up to `timeout` for it; `None` if none came.
    /// FIFO mode: this reader's next unread record, in commit order. Single-slot mode:
    /// the newest record once its commit differs from the one read last (commits in
    /// between are not seen). Returns the commit number and the records lost.
    pub fn read_next(&mut self, timeout: Duration) -> Result<Option<(u32, u32)>, SourceError> {
        if self.mode.is_fifo() {
            return match self
                .reader
                .read_into(&mut self.buf, ReadOptions::default(), timeout)
            {
                Ok(info) => Ok(Some(self.keep(info))),
                // Nothing arrived, or the slot was held mid-write for the whole (short)
                // time: the caller comes back.
                Err(StdError::Timeout { .. }) => Ok(None),
                Err(e) => Err(from_std(&self.name, e)),
            };
        }
        // Sleeps until a commit this reader has not read yet.
        if !self
            .reader
            .wait(timeout)
            .map_err(|e| from_std(&self.name, e))?
        {
            return Ok(None);
        }
        match self
            .reader
            .read_into(&mut self.buf, ReadOptions::default(), CONTENDED_LIMIT)
        {
            Ok(info) => Ok(Some(self.keep(info))),
            Err(e) => Err(from_std(&self.name, e)),
        }
    }

    fn keep(&mut self, info: ReadInfo) -> (u32, u32) {
        self.last = Some(info);
        (info.commit, info.lost)
    }

    /// Decodes the record read last; `None` before the first read.
    pub fn record(&self) -> Option<Record> {
        let info = self.last?;
        let snap = Snapshot::<Dynamic>::new(&self.buf, self.reader.layout(), info);
        let fields = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let st = info.status(i);
                let value = snap
                    .raw(i)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| decode(&f.kind, raw));
                FieldSample {
                    status: Status {
                        written: st.written,
                        truncated: st.truncated,
                        modified: st.modified,
                    },
                    value,
                }
            })
            .collect();
        Some(Record {
            commit: info.commit,
            lost: info.lost,
            fields,
        })
    }

    /// [`read_latest`](Self::read_latest), decoded.
    pub fn latest(&mut self) -> Result<Option<Record>, SourceError> {
        Ok(match self.read_latest()? {
            Some(_) => self.record(),
            None => None,
        })
    }

    /// [`read_next`](Self::read_next), decoded.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Record>, SourceError> {
        Ok(match self.read_next(timeout)? {
            Some(_) => self.record(),
            None => None,
        })
    }
}

/// Decodes a field's stored bytes (`raw` holds exactly the stored part).
fn decode(kind: &FieldKind, raw: &[u8]) -> Result<Value, String> {
    Ok(match kind {
        FieldKind::Scalar(d) => {
            if raw.len() != elem_size(*d) {
                return Err(format!("{} bytes stored for a {}", raw.len(), d.name()));
            }
            Value::Scalar(decode_elem(*d, raw))
        }
        FieldKind::Str { .. } => match std::str::from_utf8(raw) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => return Err("corrupt: the string is not valid UTF-8".to_string()),
        },
        FieldKind::Array { dtype, dims } => {
            let capacity: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            let row = capacity[1..].iter().product::<usize>() * elem_size(*dtype);
            let mut shape = capacity.clone();
            shape[0] = raw.len().checked_div(row).unwrap_or(0);
            Value::Array(ArrayValue {
                dtype: *dtype,
                shape,
                capacity,
                data: raw.to_vec(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dtype;

    #[test]
    fn names_may_carry_the_directory() {
        assert_eq!(bare_name("sensors"), "sensors");
        assert_eq!(bare_name("/sensors"), "sensors");
        assert_eq!(bare_name("/dev/shm/sensors"), "sensors");
        assert_eq!(path_of("a/b"), None);
        assert_eq!(path_of(".."), None);
        assert_eq!(path_of("x").as_deref(), Some("/dev/shm/x"));
    }

    use crate::model::Scalar;

    #[test]
    fn scalars_decode_in_their_own_type() {
        let v = decode(&FieldKind::Scalar(Dtype::F32), &0.1f32.to_le_bytes()).unwrap();
        assert_eq!(v, Value::Scalar(Scalar::F32(0.1)));
        assert!(decode(&FieldKind::Scalar(Dtype::F64), &[0; 4]).is_err());
    }

    #[test]
    fn array_rows_come_from_the_stored_length() {
        let kind = FieldKind::Array {
            dtype: Dtype::I16,
            dims: vec![3, 2],
        };
        let Value::Array(a) = decode(&kind, &[0u8; 8]).unwrap() else {
            panic!("not an array")
        };
        assert_eq!((a.shape, a.capacity), (vec![2, 2], vec![3, 2]));
    }
}
