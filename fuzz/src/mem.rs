//! Test memory for one fuzz input: a 64-aligned heap block of exactly the input's length
//! (so AddressSanitizer's redzone starts right after the last byte), and a `Region` over
//! it.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

use flexshm_core::Region;

/// Zeroed, 64-aligned memory that flexshm regions are made over.
///
/// The plain-access helpers (`set_*`, `u32_at`, `bytes`) are only called while no
/// flexshm operation runs: the targets are single-threaded, so that is between two calls
/// into flexshm-core, which is what `Region::from_raw_parts` requires.
pub struct Mem {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

impl Mem {
    /// `len` zeroed bytes.
    pub fn new(len: usize) -> Mem {
        let layout = Layout::from_size_align(len.max(1), 64).expect("fuzz region layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("out of memory");
        Mem { ptr, len, layout }
    }

    /// Memory holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Mem {
        let m = Mem::new(bytes.len());
        m.set_bytes(0, bytes);
        m
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for zero bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A region over the whole block.
    pub fn region(&self) -> Region<'_> {
        self.prefix(self.len)
    }

    /// A region over the first `len` bytes (at most the whole block).
    pub fn prefix(&self, len: usize) -> Region<'_> {
        let len = len.min(self.len);
        // SAFETY: the block is valid for reads and writes of `len` bytes until `self` is
        // dropped, which the borrow prevents; besides flexshm's own atomic accesses the
        // block is only touched by the helpers below, never during a flexshm call.
        unsafe { Region::from_raw_parts(self.ptr.as_ptr(), len) }.expect("64-aligned block")
    }

    /// Copies `bytes` to offset `off`; whatever does not fit is dropped.
    pub fn set_bytes(&self, off: usize, bytes: &[u8]) {
        if off >= self.len {
            return;
        }
        let n = bytes.len().min(self.len - off);
        // SAFETY: `off + n <= len`; `bytes` is not part of this block; no flexshm call
        // runs at the same time (see the type's documentation).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(off), n) }
    }

    /// Stores `v` little-endian at `off` (if the whole word fits).
    pub fn set_u32(&self, off: usize, v: u32) {
        if off.checked_add(4).is_some_and(|end| end <= self.len) {
            self.set_bytes(off, &v.to_le_bytes());
        }
    }

    /// The little-endian u32 at `off`, 0 past the end.
    pub fn u32_at(&self, off: usize) -> u32 {
        let mut w = [0u8; 4];
        if off.checked_add(4).is_some_and(|end| end <= self.len) {
            // SAFETY: in bounds; no flexshm call runs at the same time.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), w.as_mut_ptr(), 4) }
        }
        u32::from_le_bytes(w)
    }

    /// The byte at `off`, 0 past the end.
    pub fn u8_at(&self, off: usize) -> u8 {
        if off >= self.len {
            return 0;
        }
        // SAFETY: in bounds; no flexshm call runs at the same time.
        unsafe { self.ptr.as_ptr().add(off).read() }
    }

    /// A copy of every byte.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len];
        // SAFETY: in bounds; no flexshm call runs at the same time.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), v.as_mut_ptr(), self.len) }
        v
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}
