//! One buffer of a segment and the seqlock that guards it (docs/PROTOCOL.md §7, §11).
//!
//! ```text
//! buffer offset  word     meaning
//! 0              seq      odd while the writer fills the buffer, even otherwise
//! 4              commit   commit number of the record in the buffer
//! 8              flags    bit 0 COMMITTED: the buffer holds a committed record
//! 12             reserved 0
//! 16 + 8i        meta i   [last_write][info] of field i
//! ..             payload
//! ```
//!
//! The writer side is [`Slot::open_write`] (W1–W3) and [`Slot::close_write`] (W5–W6);
//! everything it stores in between (W4) is relaxed. The reader side is
//! [`Slot::try_copy`] (R2–R5). The step names are those of the protocol document, and
//! every ordering below names the step it pairs with.

use crate::layout::FLAG_COMMITTED;
use crate::primitive::{fence, Ordering};
use crate::region::Region;

/// Offset of the sequence counter in a buffer.
pub(crate) const SLOT_SEQ: usize = 0;
/// Offset of the commit number in a buffer.
pub(crate) const SLOT_COMMIT: usize = 4;
/// Offset of the flags word in a buffer.
pub(crate) const SLOT_FLAGS: usize = 8;

/// A copy attempt that overlapped a write: the copy must be discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Raced;

/// The buffer starting at byte `off` of a region.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'r> {
    region: Region<'r>,
    off: usize,
}

impl<'r> Slot<'r> {
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn new(region: Region<'r>, off: usize) -> Slot<'r> {
        Slot { region, off }
    }

    /// W1–W3: makes the sequence counter odd and issues the Release fence that orders
    /// every later store to the buffer after it. Returns the odd value, which
    /// [`close_write`](Self::close_write) turns even. A counter left odd by a writer
    /// that died mid-write stays odd (`s | 1`).
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn open_write(&self) -> u32 {
        let s = self.region.load(self.off + SLOT_SEQ, Ordering::Relaxed);
        let odd = s | 1;
        self.region
            .store(self.off + SLOT_SEQ, odd, Ordering::Relaxed);
        // W3. Pairs with the Acquire fence R4 in `try_copy`: a reader whose copy saw any
        // store made after this fence re-reads seq and sees `odd` (or later), so it
        // drops the copy.
        fence(Ordering::Release);
        odd
    }

    /// W5–W6: stores the commit number and the COMMITTED flag, then makes the counter
    /// even with Release.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn close_write(&self, odd: u32, commit: u32) {
        self.region
            .store(self.off + SLOT_COMMIT, commit, Ordering::Relaxed);
        self.region
            .store(self.off + SLOT_FLAGS, FLAG_COMMITTED, Ordering::Relaxed);
        // W6. Pairs with the Acquire load R2 in `try_copy` (and with the Acquire loads of
        // `seq` in `seq_acquire`): a reader that sees this even value sees every store
        // of the record.
        self.region
            .store(self.off + SLOT_SEQ, odd.wrapping_add(1), Ordering::Release);
    }

    /// R2–R5: one attempt to copy `buf.len()` bytes of the buffer (the record, from
    /// `seq` on) into `buf`. `Ok` if no write overlapped the copy; then every word of
    /// `buf` belongs to the one record whose W6 stored the `seq` value copied
    /// (docs/PROTOCOL.md §11.3).
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn try_copy(&self, buf: &mut [u8]) -> Result<(), Raced> {
        self.try_copy_as(buf, false)
    }

    /// [`try_copy`](Self::try_copy) with `fixed`: `buf.len()` is known at compile time
    /// (`Region::read_bytes_as`).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub(crate) fn try_copy_as(&self, buf: &mut [u8], fixed: bool) -> Result<(), Raced> {
        // R2. Pairs with the Release store W6 in `close_write`.
        let s1 = self.seq_acquire();
        if s1 & 1 != 0 {
            return Err(Raced); // being written
        }
        // R3.
        #[cfg(not(target_os = "none"))]
        self.region.read_bytes_as(self.off, buf, fixed);
        // Microcontrollers keep one copy of `read_bytes` (flash); `fixed` is false there.
        #[cfg(target_os = "none")]
        {
            let _ = fixed;
            self.region.read_bytes(self.off, buf);
        }
        // R4. Pairs with the Release fence W3 in `open_write`: if any load of R3 saw a
        // store made after W3, the load below sees W2's odd value or a later one.
        fence(Ordering::Acquire);
        // R5.
        let s2 = self.region.load(self.off + SLOT_SEQ, Ordering::Relaxed);
        if s1 == s2 {
            Ok(())
        } else {
            Err(Raced)
        }
    }

    /// The sequence counter, Acquire (pairs with W6 in `close_write`).
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn seq_acquire(&self) -> u32 {
        self.region.load(self.off + SLOT_SEQ, Ordering::Acquire)
    }

    /// The commit word, with the given ordering.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn commit(&self, order: Ordering) -> u32 {
        self.region.load(self.off + SLOT_COMMIT, order)
    }

    /// True if the buffer holds committed record `c`: a consistent copy (R2–R5) of its
    /// first three words has commit word `c` and COMMITTED. A buffer being written
    /// (seq odd, or changed during the copy) does not: whatever it held is being
    /// replaced by a newer record.
    pub(crate) fn holds(&self, c: u32) -> bool {
        let mut words = [0u8; 12];
        if self.try_copy(&mut words).is_err() {
            return false;
        }
        let word = |off: usize| {
            u32::from_le_bytes([words[off], words[off + 1], words[off + 2], words[off + 3]])
        };
        word(SLOT_COMMIT) == c && word(SLOT_FLAGS) & FLAG_COMMITTED != 0
    }

    /// True if the flags word has COMMITTED (a relaxed look, not a consistent copy).
    pub(crate) fn committed(&self) -> bool {
        self.region.load(self.off + SLOT_FLAGS, Ordering::Relaxed) & FLAG_COMMITTED != 0
    }
}
