//! The physical limit: a ping-pong over raw shared memory.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use flexshm_bench::ShmFile;

use super::PingPong;
use crate::Res;

/// Raw shared memory: per direction a counter line and a payload area; the sender
/// copies the payload in and publishes the counter (Release), the receiver spins on the
/// counter (Acquire) and copies the payload out. `len == 0`: the counter alone (a pure
/// cache-line ping-pong).
pub struct Raw {
    _file: ShmFile,
    base: *mut u8,
    len: usize,
    stride: usize,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Raw {
    fn name(tag: &str, len: usize) -> String {
        format!("flexshm-bench-{tag}-raw{len}")
    }

    /// The parent creates the file (`create`), the child maps it.
    pub fn new(tag: &str, len: usize, create: bool) -> Res<Raw> {
        let stride = 64 + len.div_ceil(64) * 64;
        let file = if create {
            ShmFile::create(&Self::name(tag, len), 2 * stride)?
        } else {
            ShmFile::open(&Self::name(tag, len))?
        };
        let base = file.ptr();
        Ok(Raw {
            _file: file,
            base,
            len,
            stride,
            src: (0..len).map(|i| i as u8).collect(),
            dst: vec![0; len],
        })
    }

    fn counter(&self, dir: usize) -> &AtomicU64 {
        // SAFETY: the file holds two strides; each starts 64-aligned with the counter.
        unsafe { &*(self.base.add(dir * self.stride) as *const AtomicU64) }
    }

    fn payload(&self, dir: usize) -> *mut u8 {
        // SAFETY: the payload follows the counter line inside the stride.
        unsafe { self.base.add(dir * self.stride + 64) }
    }

    fn send(&mut self, dir: usize, i: u64) {
        if self.len > 0 {
            self.src[..8.min(self.len)].copy_from_slice(&i.to_le_bytes()[..8.min(self.len)]);
            // SAFETY: the receiver reads this area only after seeing counter == i, and
            // the ping-pong alternates, so nobody reads it while we write; in bounds.
            unsafe { ptr::copy_nonoverlapping(self.src.as_ptr(), self.payload(dir), self.len) };
        }
        // Pairs with the Acquire load in `recv` on the other side.
        self.counter(dir).store(i, Ordering::Release);
    }

    fn recv(&mut self, dir: usize, i: u64) {
        // Pairs with the Release store in `send`.
        while self.counter(dir).load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        if self.len > 0 {
            // SAFETY: the sender finished writing before its Release store of i and
            // writes again only after our reply.
            unsafe { ptr::copy_nonoverlapping(self.payload(dir), self.dst.as_mut_ptr(), self.len) };
            std::hint::black_box(&mut self.dst);
        }
    }
}

impl PingPong for Raw {
    // Direction 0 carries A's messages, direction 1 B's replies.
    fn ping(&mut self, i: u64) {
        self.send(0, i);
        self.recv(1, i);
    }
    fn pong(&mut self, i: u64) {
        self.recv(0, i);
        self.send(1, i);
    }
}
