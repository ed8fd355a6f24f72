//! The physical limit: a ping-pong over raw shared memory.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use flexshm_bench::ShmFile;

use super::PingPong;
use crate::Res;

/// Raw shared memory: per direction a file with a counter line and a payload area,
/// mapped read-write by its sender and read-only by its receiver (as flexshm's readers
/// map a segment). The sender copies the payload in and publishes the counter (Release),
/// the receiver spins on the counter (Acquire) and copies the payload out. `len == 0`:
/// the counter alone (a pure cache-line ping-pong).
pub struct Raw {
    _files: Vec<ShmFile>,
    out: *mut u8,
    inn: *const u8,
    len: usize,
    src: Vec<u8>,
    dst: Vec<u8>,
}

/// The two one-way files of a ping-pong, `name("ab")` (side A writes) and `name("ba")`,
/// of `size` bytes: the parent (`create`, side A) creates both, the child opens them.
/// Returns the files (keep them for the run), this side's outgoing mapping (read-write)
/// and the other side's (read-only, as flexshm's readers map a segment).
pub fn file_pair(
    name: impl Fn(&str) -> String,
    size: usize,
    create: bool,
    side_a: bool,
) -> Res<(Vec<ShmFile>, *mut u8, *const u8)> {
    let (mine, theirs) = if side_a {
        (name("ab"), name("ba"))
    } else {
        (name("ba"), name("ab"))
    };
    let mut files = Vec::new();
    let out = if create {
        files.push(ShmFile::create(&theirs, size)?);
        ShmFile::create(&mine, size)?
    } else {
        ShmFile::open(&mine)?
    };
    let inn = ShmFile::open_read_only(&theirs)?;
    let (out_ptr, inn_ptr) = (out.ptr(), inn.ptr() as *const u8);
    files.push(out);
    files.push(inn);
    Ok((files, out_ptr, inn_ptr))
}

impl Raw {
    /// The parent (`create`, side A) creates both files, the child maps them.
    pub fn new(tag: &str, len: usize, create: bool, side_a: bool) -> Res<Raw> {
        let size = 64 + len.div_ceil(64) * 64;
        let name = |dir: &str| format!("flexshm-bench-{tag}-raw{len}-{dir}");
        let (files, out_ptr, inn_ptr) = file_pair(name, size, create, side_a)?;
        Ok(Raw {
            _files: files,
            out: out_ptr,
            inn: inn_ptr,
            len,
            src: (0..len).map(|i| i as u8).collect(),
            dst: vec![0; len],
        })
    }
}

impl PingPong for Raw {
    fn send(&mut self, i: u64) {
        if self.len > 0 {
            self.src[..8.min(self.len)].copy_from_slice(&i.to_le_bytes()[..8.min(self.len)]);
            // SAFETY: the receiver reads this area only after seeing counter == i, and
            // the ping-pong alternates, so nobody reads it while we write; in bounds (the
            // payload follows the counter line).
            unsafe { ptr::copy_nonoverlapping(self.src.as_ptr(), self.out.add(64), self.len) };
        }
        // SAFETY: the counter starts the page-aligned mapping, accessed atomically only.
        let counter = unsafe { &*(self.out as *const AtomicU64) };
        // Pairs with the Acquire load in `recv` on the other side.
        counter.store(i, Ordering::Release);
    }

    fn recv(&mut self, i: u64) {
        // SAFETY: as in `send`; only loaded through the read-only mapping.
        let counter = unsafe { &*(self.inn as *const AtomicU64) };
        // Pairs with the Release store in `send`.
        while counter.load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        if self.len > 0 {
            // SAFETY: the sender finished writing before its Release store of i and
            // writes again only after our reply.
            unsafe { ptr::copy_nonoverlapping(self.inn.add(64), self.dst.as_mut_ptr(), self.len) };
            std::hint::black_box(&mut self.dst);
        }
    }
}
