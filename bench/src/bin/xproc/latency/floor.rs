//! The floor of flexshm's single-slot protocol: the same steps (docs/PROTOCOL.md §11,
//! §12), with nothing else. Two buffers, a `head` word, a seqlock per buffer; no schema,
//! no per-field metadata, no validation, no carry-over. The writer stores `seq` odd, its
//! payload, the commit number, `seq` even and `head`; the receiver polls `head`, copies
//! the buffer `head` names and checks `seq` around the copy.
//!
//! It tells how much of flexshm's distance to the raw ping-pong is the protocol's shape
//! (two dependent steps: `head`, then the buffer; a buffer that spans more lines) and how
//! much is the work flexshm adds on top. `payload_at` places the 64-byte payload in the
//! buffer: 8 (right after `seq` and `commit`: 72 bytes, two cache lines) or 80 (where a
//! Pose record's payload starts, after 16 bytes of buffer header and 8 × 8 bytes of field
//! metadata: 144 bytes, three lines).

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use flexshm_bench::ShmFile;

use super::PingPong;
use crate::Res;

/// Payload bytes.
const LEN: usize = 64;
/// Where the buffers start (after `head`'s line) and how far apart they are.
const FIRST: usize = 64;
const STRIDE: usize = 192;

/// One direction's file: `head` at 0, buffer `b` at `FIRST + b * STRIDE` with `seq` at
/// +0, `commit` at +4 and the payload at `+payload_at`.
pub struct Floor {
    _files: Vec<ShmFile>,
    out: *mut u8,
    inn: *const u8,
    payload_at: usize,
    /// The sender's newest commit (its own `head`).
    sent: u32,
    /// The receiver's last accepted commit.
    last: u32,
    dst: [u64; LEN / 8],
}

impl Floor {
    /// The parent (`create`, side A) creates both files, the child maps them.
    pub fn new(tag: &str, payload_at: usize, create: bool, side_a: bool) -> Res<Floor> {
        assert!(payload_at.is_multiple_of(8) && payload_at + LEN <= STRIDE);
        let size = FIRST + 2 * STRIDE;
        let name = |dir: &str| format!("flexshm-bench-{tag}-floor{payload_at}-{dir}");
        let (files, out_ptr, inn_ptr) = super::raw::file_pair(name, size, create, side_a)?;
        Ok(Floor {
            _files: files,
            out: out_ptr,
            inn: inn_ptr,
            payload_at,
            sent: 0,
            last: 0,
            dst: [0; LEN / 8],
        })
    }

    /// The atomic `T` at byte `off` of a mapping: `self.out` (this side's, read-write)
    /// or `self.inn` (the other side's, loaded only). Borrowed from `self`, which keeps
    /// the mappings.
    fn at<T>(&self, base: *const u8, off: usize) -> &T {
        let size = std::mem::size_of::<T>();
        assert!(off.is_multiple_of(size) && off + size <= FIRST + 2 * STRIDE);
        // SAFETY: `base` is one of this value's page-aligned mappings of
        // `FIRST + 2 * STRIDE` bytes, which live as long as `self`; `off` is in bounds and
        // aligned for `T` (checked above); `T` is AtomicU32 or AtomicU64, and both
        // processes access these bytes atomically only.
        unsafe { &*(base.add(off) as *const T) }
    }
}

impl PingPong for Floor {
    fn send(&mut self, i: u64) {
        let c = self.sent.wrapping_add(1);
        let b = FIRST + (c as usize & 1) * STRIDE;
        let seq: &AtomicU32 = self.at(self.out, b);
        let odd = seq.load(Ordering::Relaxed) | 1;
        seq.store(odd, Ordering::Relaxed);
        // Pairs with the receiver's Acquire fence: a copy that sees any store below sees
        // the odd seq after it.
        fence(Ordering::Release);
        for k in 0..LEN / 8 {
            let v = if k == 0 { i } else { k as u64 };
            self.at::<AtomicU64>(self.out, b + self.payload_at + 8 * k)
                .store(v, Ordering::Relaxed);
        }
        self.at::<AtomicU32>(self.out, b + 4)
            .store(c, Ordering::Relaxed);
        // Pairs with the receiver's Acquire load of seq.
        seq.store(odd.wrapping_add(1), Ordering::Release);
        // Pairs with the receiver's Acquire load of head.
        self.at::<AtomicU32>(self.out, 0)
            .store(c, Ordering::Release);
        self.sent = c;
    }

    fn recv(&mut self, i: u64) {
        let inn = self.inn;
        loop {
            // Pairs with the sender's Release store of head.
            let h = self.at::<AtomicU32>(inn, 0).load(Ordering::Acquire);
            if h == self.last {
                std::hint::spin_loop();
                continue;
            }
            let b = FIRST + (h as usize & 1) * STRIDE;
            let s1 = {
                let seq: &AtomicU32 = self.at(inn, b);
                // Pairs with the sender's Release store of the even seq.
                seq.load(Ordering::Acquire)
            };
            if s1 & 1 != 0 {
                continue;
            }
            let mut dst = [0u64; LEN / 8];
            for (k, d) in dst.iter_mut().enumerate() {
                *d = self
                    .at::<AtomicU64>(inn, b + self.payload_at + 8 * k)
                    .load(Ordering::Relaxed);
            }
            let commit = self.at::<AtomicU32>(inn, b + 4).load(Ordering::Relaxed);
            // Pairs with the sender's Release fence after its odd seq.
            fence(Ordering::Acquire);
            let s2 = self.at::<AtomicU32>(inn, b).load(Ordering::Relaxed);
            if s2 != s1 || commit != h {
                continue;
            }
            self.last = h;
            self.dst = std::hint::black_box(dst);
            if self.dst[0] == i {
                return;
            }
        }
    }
}
