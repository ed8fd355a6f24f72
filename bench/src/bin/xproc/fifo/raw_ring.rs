//! The physical limit: a lossless single-producer single-consumer ring in raw shared
//! memory (a Lamport queue), the copy-in, copy-out limit for moving records between the
//! two cores.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use flexshm_bench::ShmFile;

use super::Fifo;
use crate::Res;

/// A head line and slots of `len` bytes in one file (the producer's, mapped read-only by
/// the consumer) and a tail line in another (the consumer's, mapped read-only by the
/// producer), as flexshm's readers map what they only read. Unlike flexshm the producer
/// waits when the ring is full.
pub struct RawRing {
    _files: Vec<ShmFile>,
    base: *const u8,
    tail: *const u8,
    len: usize,
    stride: usize,
    slots: u64,
    head_cache: u64,
    tail_cache: u64,
    pos: u64,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl RawRing {
    /// The producer creates the file (`create`), the consumer maps it.
    pub fn new(tag: &str, len: usize, slots: u64, create: bool) -> Res<RawRing> {
        let stride = len.div_ceil(64) * 64;
        let ring = format!("flexshm-bench-{tag}-ring");
        let tail = format!("flexshm-bench-{tag}-ring-tail");
        let mut files = Vec::new();
        let (ring, tail) = if create {
            files.push(ShmFile::create(&tail, 64)?);
            (
                ShmFile::create(&ring, 64 + stride * slots as usize)?,
                ShmFile::open_read_only(&tail)?,
            )
        } else {
            (ShmFile::open_read_only(&ring)?, ShmFile::open(&tail)?)
        };
        let (base, tail_ptr) = (ring.ptr() as *const u8, tail.ptr() as *const u8);
        files.push(ring);
        files.push(tail);
        Ok(RawRing {
            _files: files,
            base,
            tail: tail_ptr,
            len,
            stride,
            slots,
            head_cache: 0,
            tail_cache: 0,
            pos: 0,
            src: (0..len).map(|i| i as u8).collect(),
            dst: vec![0; len],
        })
    }

    fn head(&self) -> &AtomicU64 {
        // SAFETY: the first line of the page-aligned ring file.
        unsafe { &*(self.base as *const AtomicU64) }
    }

    fn tail(&self) -> &AtomicU64 {
        // SAFETY: the line of the tail file.
        unsafe { &*(self.tail as *const AtomicU64) }
    }

    /// Slot `k`; the producer's mapping is read-write (only the producer stores).
    fn slot(&self, k: u64) -> *mut u8 {
        // SAFETY: k % slots < slots, inside the file after the head line.
        unsafe { self.base.add(64 + (k % self.slots) as usize * self.stride) as *mut u8 }
    }
}

impl Fifo for RawRing {
    fn produce(&mut self, i: u64) {
        let head = self.pos;
        while head - self.tail_cache >= self.slots {
            // Pairs with the Release store of tail in `consume`: the slot is free.
            self.tail_cache = self.tail().load(Ordering::Acquire);
        }
        self.src[..8].copy_from_slice(&i.to_le_bytes());
        // SAFETY: the consumer is done with this slot (tail passed it) and reads it
        // again only after our Release store of head below.
        unsafe { ptr::copy_nonoverlapping(self.src.as_ptr(), self.slot(head), self.len) };
        self.pos = head + 1;
        // Pairs with the Acquire load of head in `consume`.
        self.head().store(self.pos, Ordering::Release);
    }

    fn consume(&mut self) -> (u64, u64) {
        // Pairs with the Release store of head in `produce`.
        self.head_cache = self.head().load(Ordering::Acquire);
        let mut n = 0;
        while self.pos < self.head_cache {
            // SAFETY: published by the producer (head passed it); it writes the slot
            // again only after our Release store of tail.
            unsafe {
                ptr::copy_nonoverlapping(self.slot(self.pos), self.dst.as_mut_ptr(), self.len)
            };
            std::hint::black_box(&mut self.dst);
            self.pos += 1;
            n += 1;
            // Pairs with the Acquire load of tail in `produce`.
            self.tail().store(self.pos, Ordering::Release);
        }
        (n, 0)
    }
}
