//! Hybrids of flexshm and the seqlock floor (floor.rs) on flexshm-core's own Pose
//! segment: flexshm's `Writer` with the floor's receiver, and the floor's sender with
//! flexshm's `Reader`. Next to the floor and "flexshm core, Pose" they split flexshm's
//! distance to the floor between the writing and the reading side of the hop: a side
//! that costs nothing over the floor's leaves its hybrid at the floor's latency.
//!
//! The floor's sender stores what flexshm's writer stores for a Pose (seq odd, fence,
//! each field's metadata pair, the payload, commit, flags, seq even, head), in the
//! floor's way: 8-byte payload stores, a loop with no per-field code. The floor's
//! receiver polls `head`, copies the payload and the commit word of the buffer `head`
//! names and checks seq around the copy, without validating anything else.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use flexshm_bench::{segment_size, Pose, ShmFile};
use flexshm_core::{Mode, Reader, Record, Writer};

use super::flexshm::{typed_recv, SeqRecord};
use super::PingPong;
use crate::Res;

/// Offsets in flexshm's segment header and buffer (docs/PROTOCOL.md §5, §7).
const H_SLOTS_OFFSET: usize = 28;
const H_SLOT_STRIDE: usize = 36;
const H_HEAD: usize = 48;
const B_COMMIT: usize = 4;
const B_FLAGS: usize = 8;
const B_META: usize = 16;
/// Payload bytes (eight f64), after the eight fields' metadata pairs.
const LEN: usize = 64;
const PAYLOAD: usize = B_META + 8 * 8;
/// The payload word of `Pose::seq`, which carries the message number.
const SEQ_WORD: usize = 7;

fn seq_bits(i: u64) -> u64 {
    (i as f64).to_bits()
}

/// One direction's segment is written by flexshm's `Writer` (`flexshm_writes`) or by
/// the floor's sender; the other side's is read by the other one.
pub struct Hybrid {
    _files: Vec<ShmFile>,
    flexshm_writes: bool,
    out: *mut u8,
    inn: *const u8,
    size: usize,
    slots_offset: usize,
    stride: usize,
    w: Writer<'static, Pose>,
    r: Reader<'static, Pose>,
    /// The info words flexshm's writer stores for the fields (read back after its
    /// first write), which the floor's sender stores too.
    info: [u32; 8],
    sent: u32,
    last: u32,
    rec: Pose,
    out_rec: Pose,
    buf: Vec<u8>,
    dst: [u64; LEN / 8],
}

impl Hybrid {
    pub fn new(
        tag: &str,
        kind: &str,
        flexshm_writes: bool,
        create: bool,
        side_a: bool,
    ) -> Res<Self> {
        let size = segment_size(Pose::FIELDS, Mode::Single);
        let name = |dir: &str| format!("flexshm-bench-{tag}-{kind}-{dir}");
        let (files, out, inn) = super::raw::file_pair(name, size, create, side_a)?;
        // `file_pair`'s files: the other side's, read-write (parent only), then this
        // side's outgoing one and the other side's read-only mapping.
        let n = files.len();
        if create {
            Writer::<Pose>::create(files[0].region(), Mode::Single)?;
        }
        let mut w = if create {
            Writer::<Pose>::create(files[n - 2].region(), Mode::Single)?
        } else {
            Writer::<Pose>::attach(files[n - 2].region())?
        };
        // One record through flexshm's writer, to learn the info words it stores. The
        // other side's receiver skips it (it is not the message it waits for).
        w.write(&Pose::default())?;
        let r = Reader::<Pose>::open(files[n - 1].region())?;
        let mut h = Hybrid {
            _files: files,
            flexshm_writes,
            out,
            inn,
            size,
            slots_offset: 0,
            stride: 0,
            w,
            r,
            info: [0; 8],
            sent: 0,
            last: 0,
            rec: Pose::default(),
            out_rec: Pose::default(),
            buf: vec![0; Pose::SNAPSHOT_LEN],
            dst: [0; LEN / 8],
        };
        h.slots_offset = h.word(out, H_SLOTS_OFFSET).load(Ordering::Relaxed) as usize;
        h.stride = h.word(out, H_SLOT_STRIDE).load(Ordering::Relaxed) as usize;
        h.sent = h.w.head();
        let b = h.buffer(h.sent);
        for k in 0..8 {
            h.info[k] = h.word(out, b + B_META + 8 * k + 4).load(Ordering::Relaxed);
        }
        Ok(h)
    }

    /// Offset of the buffer of commit `c` (two buffers in single-slot mode).
    fn buffer(&self, c: u32) -> usize {
        self.slots_offset + (c as usize & 1) * self.stride
    }

    /// The atomic `T` at byte `off` of `base` (`self.out` or `self.inn`).
    fn at<T>(&self, base: *const u8, off: usize) -> &T {
        let size = std::mem::size_of::<T>();
        assert!(off.is_multiple_of(size) && off + size <= self.size);
        // SAFETY: `base` is one of this value's page-aligned mappings of `self.size`
        // bytes, which live as long as `self`; `off` is in bounds and aligned for `T`
        // (checked above); `T` is AtomicU32 or AtomicU64, and both processes access
        // these bytes atomically only.
        unsafe { &*(base.add(off) as *const T) }
    }

    fn word(&self, base: *const u8, off: usize) -> &AtomicU32 {
        self.at(base, off)
    }

    fn floor_send(&mut self, i: u64) {
        let c = self.sent.wrapping_add(1);
        let b = self.buffer(c);
        let seq = self.word(self.out, b);
        let odd = seq.load(Ordering::Relaxed) | 1;
        seq.store(odd, Ordering::Relaxed);
        // Pairs with the receiver's Acquire fence: a copy that sees any store below
        // sees the odd seq after it.
        fence(Ordering::Release);
        for (k, &info) in self.info.iter().enumerate() {
            self.word(self.out, b + B_META + 8 * k)
                .store(c, Ordering::Relaxed);
            self.word(self.out, b + B_META + 8 * k + 4)
                .store(info, Ordering::Relaxed);
        }
        for k in 0..LEN / 8 {
            let v = if k == SEQ_WORD { seq_bits(i) } else { 0 };
            self.at::<AtomicU64>(self.out, b + PAYLOAD + 8 * k)
                .store(v, Ordering::Relaxed);
        }
        self.word(self.out, b + B_COMMIT)
            .store(c, Ordering::Relaxed);
        self.word(self.out, b + B_FLAGS).store(1, Ordering::Relaxed);
        // Pairs with the receiver's Acquire load of seq.
        seq.store(odd.wrapping_add(1), Ordering::Release);
        // Pairs with the receiver's Acquire load of head.
        self.word(self.out, H_HEAD).store(c, Ordering::Release);
        self.sent = c;
    }

    fn floor_recv(&mut self, i: u64) {
        let inn = self.inn;
        loop {
            // Pairs with the sender's Release store of head.
            let h = self.word(inn, H_HEAD).load(Ordering::Acquire);
            if h == self.last {
                std::hint::spin_loop();
                continue;
            }
            let b = self.buffer(h);
            // Pairs with the sender's Release store of the even seq.
            let s1 = self.word(inn, b).load(Ordering::Acquire);
            if s1 & 1 != 0 {
                continue;
            }
            let mut dst = [0u64; LEN / 8];
            for (k, d) in dst.iter_mut().enumerate() {
                *d = self
                    .at::<AtomicU64>(inn, b + PAYLOAD + 8 * k)
                    .load(Ordering::Relaxed);
            }
            let commit = self.word(inn, b + B_COMMIT).load(Ordering::Relaxed);
            // Pairs with the sender's Release fence after its odd seq.
            fence(Ordering::Acquire);
            let s2 = self.word(inn, b).load(Ordering::Relaxed);
            if s2 != s1 || commit != h {
                continue;
            }
            self.last = h;
            self.dst = std::hint::black_box(dst);
            if self.dst[SEQ_WORD] == seq_bits(i) {
                return;
            }
        }
    }
}

impl PingPong for Hybrid {
    fn send(&mut self, i: u64) {
        if self.flexshm_writes {
            self.rec.set_seq(i);
            self.w.write(&self.rec).expect("flexshm write");
        } else {
            self.floor_send(i);
        }
    }

    fn recv(&mut self, i: u64) {
        if self.flexshm_writes {
            self.floor_recv(i);
        } else {
            typed_recv(
                &mut self.r,
                &mut self.buf,
                &mut self.out_rec,
                &mut self.last,
                i,
            );
        }
    }
}
