//! Segment files in `/dev/shm`: opened through a descriptor of the directory, never
//! following a symbolic link, and created complete under a temporary name before they
//! appear under their own.
//!
//! `shm_open("/NAME")` on Linux opens `/dev/shm/NAME`; Python's
//! `multiprocessing.shared_memory` and every other POSIX program therefore see the same
//! objects. Working on the directory directly gives what `shm_open` cannot: `O_NOFOLLOW`,
//! `fstat` checks on the very file that is mapped, and an atomic `link` that publishes a
//! segment only once it is fully initialised.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs::{AtFlags, FileType, Mode as FileMode, OFlags};
use rustix::io::Errno;

use crate::error::Error;
use crate::name::{ShmName, TEMP_PREFIX};

/// Where Linux keeps POSIX shared-memory objects.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Owner, permissions and size of a segment file, as `fstat` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Owning user id.
    pub uid: u32,
    /// Owning group id.
    pub gid: u32,
    /// Permission bits (`0o640`, ...).
    pub permissions: u32,
    /// Size in bytes.
    pub size: u64,
}

/// An open segment file and what `fstat` said about it when it was opened.
#[derive(Debug)]
pub(crate) struct ShmFile {
    pub(crate) file: File,
    pub(crate) info: FileInfo,
    /// Device and inode, to tell whether a name still refers to this file.
    pub(crate) id: (u64, u64),
}

pub(crate) fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn dir() -> Result<OwnedFd, Error> {
    rustix::fs::open(
        SHM_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        FileMode::empty(),
    )
    .map_err(|e| {
        Error::Io(io::Error::other(format!(
            "cannot open {SHM_DIR}, where POSIX shared memory lives: {}",
            io_err(e)
        )))
    })
}

fn stat(fd: &OwnedFd, name: &ShmName) -> Result<(FileInfo, (u64, u64)), Error> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::Io(io_err(e)))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::NotFlexshm {
            name: name.bare().to_string(),
        });
    }
    Ok((
        FileInfo {
            uid: st.st_uid,
            gid: st.st_gid,
            permissions: st.st_mode & 0o7777,
            size: st.st_size as u64,
        },
        (st.st_dev, st.st_ino),
    ))
}

/// Turns the errno of an `openat` of segment `name` into the error a user can act on.
fn open_error(e: Errno, name: &ShmName) -> Error {
    let bare = name.bare().to_string();
    match e {
        Errno::NOENT => Error::NotFound { name: bare },
        Errno::LOOP => Error::Symlink { name: bare },
        Errno::ACCESS | Errno::PERM => Error::PermissionDenied { name: bare },
        Errno::NAMETOOLONG => Error::InvalidName {
            name: bare,
            reason: "a segment name is at most 255 bytes long",
        },
        e => Error::Io(io_err(e)),
    }
}

impl ShmFile {
    /// Opens the existing segment file `name`, read-only or read-write. A symbolic link
    /// (even a dangling one) is [`Error::Symlink`]; anything but a regular file is
    /// [`Error::NotFlexshm`].
    pub(crate) fn open(name: &ShmName, write: bool) -> Result<ShmFile, Error> {
        let d = dir()?;
        let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
        // NONBLOCK: a FIFO planted under the name must not block the open.
        let fd = rustix::fs::openat(
            &d,
            name.bare(),
            access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            FileMode::empty(),
        )
        .map_err(|e| open_error(e, name))?;
        let (info, id) = stat(&fd, name)?;
        Ok(ShmFile {
            file: File::from(fd),
            info,
            id,
        })
    }

    /// Size now (the file may have been resized since it was opened).
    pub(crate) fn current_size(&self) -> Result<u64, Error> {
        Ok(self.file.metadata()?.len())
    }
}

/// A new segment file under a temporary name in `/dev/shm`, sized and with exactly the
/// permissions asked for. It appears under its real name only through
/// [`publish`](Self::publish); dropping it unpublished removes it.
pub(crate) struct TempFile {
    dir: OwnedFd,
    temp: String,
    pub(crate) file: ShmFile,
    published: bool,
}

impl TempFile {
    pub(crate) fn create(name: &ShmName, size: u64, permissions: u32) -> Result<TempFile, Error> {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = dir()?;
        let mode = FileMode::from_raw_mode(permissions & 0o777);
        for _ in 0..16 {
            let temp = format!(
                "{TEMP_PREFIX}{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let fd = match rustix::fs::openat(
                &d,
                temp.as_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
            ) {
                Ok(fd) => fd,
                // A leftover of an earlier process with our (reused) pid: next number.
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(open_error(e, name)),
            };
            let mut t = TempFile {
                dir: d,
                temp,
                file: ShmFile {
                    file: File::from(fd),
                    info: FileInfo {
                        uid: 0,
                        gid: 0,
                        permissions: 0,
                        size: 0,
                    },
                    id: (0, 0),
                },
                published: false,
            };
            // The umask may have cleared bits the caller asked for; set them exactly.
            rustix::fs::fchmod(t.file.file.as_fd(), mode).map_err(|e| Error::Io(io_err(e)))?;
            rustix::fs::ftruncate(t.file.file.as_fd(), size).map_err(|e| Error::Io(io_err(e)))?;
            let fd = t.file.file.as_fd().try_clone_to_owned()?;
            let (info, id) = stat(&fd, name)?;
            t.file.info = info;
            t.file.id = id;
            return Ok(t);
        }
        Err(Error::Io(io::Error::other(
            "could not find a free temporary name in /dev/shm",
        )))
    }

    /// Gives the file its real name if that name is free: `Ok(false)` if it is taken.
    pub(crate) fn publish(&mut self, name: &ShmName) -> Result<bool, Error> {
        match rustix::fs::linkat(
            &self.dir,
            self.temp.as_str(),
            &self.dir,
            name.bare(),
            AtFlags::empty(),
        ) {
            Ok(()) => {
                self.published = true;
                let _ = rustix::fs::unlinkat(&self.dir, self.temp.as_str(), AtFlags::empty());
                Ok(true)
            }
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(open_error(e, name)),
        }
    }

    /// Gives the file the real name, replacing whatever file has it now.
    pub(crate) fn replace(&mut self, name: &ShmName) -> Result<(), Error> {
        rustix::fs::renameat(&self.dir, self.temp.as_str(), &self.dir, name.bare())
            .map_err(|e| open_error(e, name))?;
        self.published = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = rustix::fs::unlinkat(&self.dir, self.temp.as_str(), AtFlags::empty());
        }
    }
}

/// Removes temporary files that creators which died before publishing left behind: files
/// named `.flexshm-new-<pid>-<n>` of this user whose process is gone. Best effort.
pub(crate) fn remove_dead_temporaries() {
    let Ok(entries) = std::fs::read_dir(SHM_DIR) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let mine = std::os::unix::fs::MetadataExt::uid(&match e.metadata() {
            Ok(m) => m,
            Err(_) => continue,
        }) == me;
        if mine && !crate::claim::pid_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Removes the name `name`. Processes that have the segment open keep it.
pub(crate) fn unlink(name: &ShmName) -> Result<(), Error> {
    let d = dir()?;
    rustix::fs::unlinkat(&d, name.bare(), AtFlags::empty()).map_err(|e| open_error(e, name))
}

/// The device and inode `name` refers to now; `None` if the name is gone or is not a
/// regular file.
pub(crate) fn current_id(name: &ShmName) -> Result<Option<(u64, u64)>, Error> {
    match ShmFile::open(name, false) {
        Ok(f) => Ok(Some(f.id)),
        Err(Error::NotFound { .. } | Error::NotFlexshm { .. } | Error::Symlink { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
