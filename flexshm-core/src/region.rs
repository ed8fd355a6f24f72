//! The byte region a segment lives in, and the only code that touches it.
//!
//! Every access goes through 32-bit atomic loads and stores: the region is shared with
//! other cores or processes that write it concurrently, so a plain or volatile access
//! would be a data race. Payload copies are done word by word with relaxed atomics (a
//! "byte-wise atomic memcpy"); the seqlock around them decides whether a copy is kept.
//! On x86-64 hosts, copies of 16 bytes or more go through opaque inline assembly with
//! the same byte-wise semantics (the `bulk` module, docs/PROTOCOL.md §11.4).

use core::marker::PhantomData;
#[cfg(not(loom))]
use core::ptr::NonNull;

#[cfg(not(loom))]
use crate::error::Error;
use crate::primitive::{AtomicU32, Ordering};

/// Required alignment of a region's start address.
pub const REGION_ALIGN: usize = 8;

/// Spans at least this long are copied (and zeroed) with the string instructions of
/// [`bulk`]: a string instruction's start-up costs about as much as copying a few dozen
/// words.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const BULK_MIN: usize = 256;

/// Spans at least this long are copied through [`bulk`] (`bulk::copy_in` and
/// `bulk::copy_out`): shorter than [`BULK_MIN`], with 16-byte vector moves (a 64-byte
/// span is four moves instead of sixteen word stores). Shorter ones stay word loops.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const VECTOR_MIN: usize = 16;

/// Bulk copies on x86-64: `rep movsb` / `rep stosb`, and 16-byte vector moves for shorter
/// spans, in inline assembly (docs/PROTOCOL.md §11.4).
///
/// Why this is sound where a plain `memcpy` would not be: the Rust compiler treats an
/// `asm!` block as an opaque operation that may read and write the memory it is given
/// (no `nomem`/`readonly` option), so it cannot assume that no other thread or process
/// touches those bytes, cannot split, repeat or invent the accesses, and keeps every
/// memory access of the surrounding code on its side of the block. What the block does
/// is then defined by the hardware: every byte is read or written by a single-copy
/// atomic access, in some order, the semantics of a byte-wise atomic `memcpy` (C++
/// P1478). A copy that races with the other side's stores may be torn, and the seqlock
/// discards it, exactly as with the word loop.
///
/// Ordering: the stores of a fast-string operation may become visible out of order
/// among themselves, but a later ordinary store is not visible before them; the
/// `sfence` after the writer's block makes that explicit, so the Release store of `seq`
/// (W6) that follows is ordered after every byte stored. On the reader's side the
/// `lfence` after the block keeps its loads before the re-check of `seq` (R4/R5).
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
mod bulk {
    /// Copies `len` bytes from `src` to `dst`, then `lfence`: for copies out of the
    /// region (reads).
    ///
    /// # Safety
    ///
    /// `src` is valid for reads and `dst` for writes of `len` bytes, and they do not
    /// overlap.
    #[inline(always)]
    pub(super) unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: the caller's contract covers the `len` bytes at `src` and `dst`; the
        // block touches no other memory and no stack, and leaves the direction flag
        // clear (the ABI guarantees it is clear on entry).
        unsafe {
            core::arch::asm!(
                "rep movsb",
                "lfence",
                inout("rcx") len => _,
                inout("rsi") src => _,
                inout("rdi") dst => _,
                options(nostack, preserves_flags)
            );
        }
    }

    /// Copies `len` bytes from `src` to `dst`, then `sfence`: for copies into the
    /// region (writes).
    ///
    /// # Safety
    ///
    /// As [`load`].
    #[inline(always)]
    pub(super) unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: as in `load`.
        unsafe {
            core::arch::asm!(
                "rep movsb",
                "sfence",
                inout("rcx") len => _,
                inout("rsi") src => _,
                inout("rdi") dst => _,
                options(nostack, preserves_flags)
            );
        }
    }

    /// Copies `len` bytes from `src` to `dst` with 16-byte vector moves, then 4-byte and
    /// 1-byte moves for the rest: for spans too short for `rep movsb`'s start-up, in
    /// either direction (into or out of the region).
    ///
    /// Ordinary loads and stores, so x86-64's ordering applies without a fence: loads
    /// are not reordered with later loads (R3 before the re-check R5), stores not with
    /// later stores (W4 before the Release store W6). Each byte is accessed once by a
    /// single-copy atomic access, as for the string copy.
    ///
    /// # Safety
    ///
    /// As [`load`].
    #[inline(always)]
    pub(super) unsafe fn copy_short(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: as in `load`; the block touches only the `len` bytes at `src` and
        // `dst` and the registers it names.
        unsafe {
            core::arch::asm!(
                "6:",
                "cmp {n}, 64",
                "jb 2f",
                "movdqu {v}, xmmword ptr [{s}]",
                "movdqu {v1}, xmmword ptr [{s} + 16]",
                "movdqu {v2}, xmmword ptr [{s} + 32]",
                "movdqu {v3}, xmmword ptr [{s} + 48]",
                "movdqu xmmword ptr [{d}], {v}",
                "movdqu xmmword ptr [{d} + 16], {v1}",
                "movdqu xmmword ptr [{d} + 32], {v2}",
                "movdqu xmmword ptr [{d} + 48], {v3}",
                "add {s}, 64",
                "add {d}, 64",
                "sub {n}, 64",
                "jmp 6b",
                "2:",
                "cmp {n}, 16",
                "jb 3f",
                "movdqu {v}, xmmword ptr [{s}]",
                "movdqu xmmword ptr [{d}], {v}",
                "add {s}, 16",
                "add {d}, 16",
                "sub {n}, 16",
                "jmp 2b",
                "3:",
                "cmp {n}, 4",
                "jb 4f",
                "mov {w:e}, dword ptr [{s}]",
                "mov dword ptr [{d}], {w:e}",
                "add {s}, 4",
                "add {d}, 4",
                "sub {n}, 4",
                "jmp 3b",
                "4:",
                "test {n}, {n}",
                "jz 5f",
                "mov {w:l}, byte ptr [{s}]",
                "mov byte ptr [{d}], {w:l}",
                "add {s}, 1",
                "add {d}, 1",
                "sub {n}, 1",
                "jmp 4b",
                "5:",
                n = inout(reg) len => _,
                s = inout(reg) src => _,
                d = inout(reg) dst => _,
                v = out(xmm_reg) _,
                v1 = out(xmm_reg) _,
                v2 = out(xmm_reg) _,
                v3 = out(xmm_reg) _,
                w = out(reg) _,
                options(nostack)
            );
        }
    }

    /// [`copy_short`] for a length known at compile time (a typed record's slot): the
    /// same moves, each group its own assembly block, with the loops around them in
    /// Rust, so the compiler turns them into a straight run of blocks. The same
    /// accesses and ordering as `copy_short`.
    ///
    /// Lengths known only at run time keep `copy_short`: its loop is one block, and an
    /// A/B of the cross-process FIFO benchmark did not show that this form is as fast
    /// there. Only a typed reader's copy of its own slot uses this.
    ///
    /// # Safety
    ///
    /// As [`load`].
    #[inline(always)]
    pub(super) unsafe fn copy_fixed(src: *const u8, dst: *mut u8, len: usize) {
        let mut done = 0;
        while len - done >= 64 {
            // SAFETY: as in `load`; the block touches only bytes `done..done + 64` at
            // `src` and `dst` (`done + 64 <= len`) and the registers it names.
            unsafe {
                core::arch::asm!(
                    "movdqu {v0}, xmmword ptr [{s}]",
                    "movdqu {v1}, xmmword ptr [{s} + 16]",
                    "movdqu {v2}, xmmword ptr [{s} + 32]",
                    "movdqu {v3}, xmmword ptr [{s} + 48]",
                    "movdqu xmmword ptr [{d}], {v0}",
                    "movdqu xmmword ptr [{d} + 16], {v1}",
                    "movdqu xmmword ptr [{d} + 32], {v2}",
                    "movdqu xmmword ptr [{d} + 48], {v3}",
                    s = in(reg) src.add(done),
                    d = in(reg) dst.add(done),
                    v0 = out(xmm_reg) _,
                    v1 = out(xmm_reg) _,
                    v2 = out(xmm_reg) _,
                    v3 = out(xmm_reg) _,
                    options(nostack, preserves_flags)
                );
            }
            done += 64;
        }
        while len - done >= 16 {
            // SAFETY: as above, for bytes `done..done + 16` (`done + 16 <= len`).
            unsafe {
                core::arch::asm!(
                    "movdqu {v}, xmmword ptr [{s}]",
                    "movdqu xmmword ptr [{d}], {v}",
                    s = in(reg) src.add(done),
                    d = in(reg) dst.add(done),
                    v = out(xmm_reg) _,
                    options(nostack, preserves_flags)
                );
            }
            done += 16;
        }
        while len - done >= 4 {
            // SAFETY: as above, for bytes `done..done + 4` (`done + 4 <= len`).
            unsafe {
                core::arch::asm!(
                    "mov {w:e}, dword ptr [{s}]",
                    "mov dword ptr [{d}], {w:e}",
                    s = in(reg) src.add(done),
                    d = in(reg) dst.add(done),
                    w = out(reg) _,
                    options(nostack, preserves_flags)
                );
            }
            done += 4;
        }
        while done < len {
            // SAFETY: as above, for bytes `done..done + 1` (`done + 1 <= len`).
            unsafe {
                core::arch::asm!(
                    "mov {w:l}, byte ptr [{s}]",
                    "mov byte ptr [{d}], {w:l}",
                    s = in(reg) src.add(done),
                    d = in(reg) dst.add(done),
                    w = out(reg) _,
                    options(nostack, preserves_flags)
                );
            }
            done += 1;
        }
    }

    /// A copy out of the region (a read): the string copy from
    /// [`BULK_MIN`](super::BULK_MIN) bytes on, the vector loop below that.
    ///
    /// # Safety
    ///
    /// As [`load`].
    #[inline(always)]
    pub(super) unsafe fn copy_out(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if len >= super::BULK_MIN {
                load(src, dst, len)
            } else {
                copy_short(src, dst, len)
            }
        }
    }

    /// A copy into the region (a write): as [`copy_out`], with `store` for long spans.
    ///
    /// # Safety
    ///
    /// As [`load`].
    #[inline(always)]
    pub(super) unsafe fn copy_in(src: *const u8, dst: *mut u8, len: usize) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if len >= super::BULK_MIN {
                store(src, dst, len)
            } else {
                copy_short(src, dst, len)
            }
        }
    }

    /// Sets `len` bytes at `dst` to zero, then `sfence`.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of `len` bytes.
    #[inline(always)]
    pub(super) unsafe fn zero(dst: *mut u8, len: usize) {
        // SAFETY: as in `load`, for the `len` bytes at `dst`.
        unsafe {
            core::arch::asm!(
                "rep stosb",
                "sfence",
                inout("rcx") len => _,
                inout("rdi") dst => _,
                in("al") 0u8,
                options(nostack, preserves_flags)
            );
        }
    }
}

/// A shared byte region: a pointer and a length, accessed only through 32-bit atomics.
///
/// `Region` is `Copy`: every holder accesses the bytes through atomics only, so aliasing
/// handles to the same memory (a writer and several readers in one program, say) are
/// sound.
#[derive(Clone, Copy)]
pub struct Region<'a> {
    #[cfg(not(loom))]
    ptr: NonNull<u8>,
    #[cfg(loom)]
    words: &'a [AtomicU32],
    len: usize,
    /// False for memory that may only be read (a read-only mapping): writers refuse such
    /// a region, and every store asserts this in debug builds.
    writable: bool,
    _life: PhantomData<&'a [AtomicU32]>,
}

// SAFETY: a Region only hands out access through atomic operations on the memory it
// points to (see `word`), so sharing or sending it between threads cannot cause a data
// race. The lifetime 'a keeps the memory alive.
unsafe impl Send for Region<'_> {}
// SAFETY: as for Send: all access is atomic.
unsafe impl Sync for Region<'_> {}

impl core::fmt::Debug for Region<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.len)
            .field("writable", &self.writable)
            .finish()
    }
}

#[cfg(not(loom))]
impl<'a> Region<'a> {
    /// A region over raw memory: an OS mapping, dual-port RAM, a linker section.
    ///
    /// The length is rounded down to a multiple of 4; the start must be aligned to
    /// [`REGION_ALIGN`].
    ///
    /// # Safety
    ///
    /// For the whole lifetime `'a`:
    /// - `ptr` is valid for reads and writes of `len` bytes (mapped, not freed, not
    ///   unmapped);
    /// - every other access to these bytes, from this program, another core or another
    ///   process, is a 32-bit atomic access at a 4-aligned offset (that is what flexshm
    ///   does on every target) or does not overlap in time with flexshm's accesses. Plain
    ///   reads or writes that race with flexshm are undefined behaviour.
    pub unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> Result<Region<'a>, Error> {
        let ptr = NonNull::new(ptr).ok_or(Error::Misaligned { address: 0 })?;
        if !(ptr.as_ptr() as usize).is_multiple_of(REGION_ALIGN) {
            return Err(Error::Misaligned {
                address: ptr.as_ptr() as usize,
            });
        }
        Ok(Region {
            ptr,
            len: len & !3,
            writable: true,
            _life: PhantomData,
        })
    }

    /// A region over memory this program may only read: a read-only mapping of a
    /// segment another process writes. Readers work on it; writers refuse it with
    /// [`Error::ReadOnlyRegion`].
    ///
    /// # Safety
    ///
    /// For the whole lifetime `'a`:
    /// - `ptr` is valid for reads of `len` bytes (mapped, not freed, not unmapped);
    /// - every other access to these bytes is a 32-bit atomic access at a 4-aligned
    ///   offset, as in [`from_raw_parts`](Self::from_raw_parts).
    ///
    /// Only atomic *loads* are ever made through the returned region. Rust permits
    /// atomic loads on read-only memory when they are lock-free and no wider than a
    /// pointer, which 32-bit loads on every supported target are (they compile to plain
    /// load instructions, never to compare-and-swap).
    pub unsafe fn from_raw_parts_read_only(
        ptr: *const u8,
        len: usize,
    ) -> Result<Region<'a>, Error> {
        // SAFETY: the caller's contract covers reads; the region is marked read-only, so
        // no store is ever made through it (writers check `is_writable`, and `word_mut`
        // asserts it).
        let mut r = unsafe { Region::from_raw_parts(ptr as *mut u8, len) }?;
        r.writable = false;
        Ok(r)
    }

    /// A region over memory this program owns exclusively for `'a`, e.g. a `static mut`
    /// buffer handed out once, or a buffer on the heap or stack shared between threads.
    pub fn new(bytes: &'a mut [u8]) -> Result<Region<'a>, Error> {
        // SAFETY:
        // - the exclusive borrow makes `bytes` valid for reads and writes for 'a, and no
        //   other code can touch it while it lasts, so all accesses are flexshm's own
        //   atomic accesses.
        unsafe { Region::from_raw_parts(bytes.as_mut_ptr(), bytes.len()) }
    }

    /// The word at byte offset `off`.
    #[inline(always)]
    fn word(&self, off: usize) -> &AtomicU32 {
        // `len` is a multiple of 4, so a 4-aligned `off` below it starts a whole word of
        // the region; unlike `off + 4 <= len`, this cannot overflow for an `off` near
        // usize::MAX.
        assert!(
            off.is_multiple_of(4) && off < self.len,
            "region access out of bounds"
        );
        // SAFETY:
        // - in bounds and 4-aligned: checked just above, and the base is REGION_ALIGN-aligned;
        // - valid for 'a and only ever accessed atomically: the contract of
        //   `from_raw_parts`;
        // - AtomicU32 has the size and alignment of u32 and no invalid bit patterns.
        unsafe { &*(self.ptr.as_ptr().add(off) as *const AtomicU32) }
    }

    /// Words `off/4 .. off/4 + n` as a slice of atomics.
    #[inline(always)]
    fn words(&self, off: usize, n: usize) -> &[AtomicU32] {
        // `off <= len` also for an empty range: `ptr.add(off)` must stay inside (or one
        // past) the region.
        assert!(
            off.is_multiple_of(4) && off <= self.len && n <= (self.len - off) / 4,
            "region access out of bounds"
        );
        // SAFETY: as in `word`, for every word of the range, which lies inside the region
        // (checked just above).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().add(off) as *const AtomicU32, n) }
    }
}

#[cfg(loom)]
impl<'a> Region<'a> {
    /// A region over loom atomics (model checking only).
    pub fn from_loom_words(words: &'a [AtomicU32]) -> Region<'a> {
        Region {
            words,
            len: words.len() * 4,
            writable: true,
            _life: PhantomData,
        }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0);
        &self.words[off / 4]
    }

    fn words(&self, off: usize, n: usize) -> &[AtomicU32] {
        assert!(off % 4 == 0 && off <= self.len);
        &self.words[off / 4..off / 4 + n]
    }
}

impl<'a> Region<'a> {
    /// The `len` bytes at `off` as a region of their own, bounds-checked here once (with
    /// a constant `len`, the checks of accesses at constant offsets inside it are then
    /// constants too). `off` is a multiple of [`REGION_ALIGN`] and `len` of 4.
    #[inline(always)]
    pub(crate) fn sub(&self, off: usize, len: usize) -> Region<'a> {
        debug_assert!(off.is_multiple_of(REGION_ALIGN) && len.is_multiple_of(4));
        let n = len / 4;
        #[cfg(not(loom))]
        let ptr = {
            let words = self.words(off, n);
            // SAFETY: `words` checked that the span lies inside this region and that
            // `off` is 4-aligned, so the pointer is not null and every word of the new
            // region is an aligned word of this one (the callers pass buffer offsets,
            // multiples of 64, so it keeps REGION_ALIGN as well).
            unsafe { NonNull::new_unchecked(words.as_ptr() as *mut u8) }
        };
        #[cfg(loom)]
        let words = {
            let all: &'a [AtomicU32] = self.words;
            &all[off / 4..off / 4 + n]
        };
        Region {
            #[cfg(not(loom))]
            ptr,
            #[cfg(loom)]
            words,
            len: n * 4,
            writable: self.writable,
            _life: PhantomData,
        }
    }
}

impl Region<'_> {
    /// Length in bytes (a multiple of 4).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// False for a region made with
    /// [`from_raw_parts_read_only`](Self::from_raw_parts_read_only).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Loads the little-endian u32 at `off`.
    #[inline]
    pub(crate) fn load(&self, off: usize, order: Ordering) -> u32 {
        u32::from_le(self.word(off).load(order))
    }

    /// Stores `v` as a little-endian u32 at `off`.
    #[inline]
    pub(crate) fn store(&self, off: usize, v: u32, order: Ordering) {
        self.word_mut(off).store(v.to_le(), order)
    }

    /// Stores `a` and `b` as the little-endian u32s at `off` and `off + 4`, relaxed: on
    /// hosts with one bounds check for both; on microcontrollers as two word stores,
    /// which take less flash.
    #[inline(always)]
    pub(crate) fn store_pair(&self, off: usize, a: u32, b: u32) {
        #[cfg(not(target_os = "none"))]
        if let [wa, wb] = self.words_mut(off, 2) {
            wa.store(a.to_le(), Ordering::Relaxed);
            wb.store(b.to_le(), Ordering::Relaxed);
        }
        #[cfg(target_os = "none")]
        {
            self.store(off, a, Ordering::Relaxed);
            self.store(off + 4, b, Ordering::Relaxed);
        }
    }

    /// Stores the low `size` bytes (1, 2, 4 or 8) of `bits` little-endian at `off`, which
    /// is aligned to `size` (scalars sit at their natural alignment): one or two relaxed
    /// word stores, or a merge into one word for 1 and 2 bytes (single writer).
    #[inline(always)]
    pub(crate) fn store_scalar(&self, off: usize, bits: u64, size: usize) {
        match size {
            8 => self.store_pair(off, bits as u32, (bits >> 32) as u32),
            4 => self.store(off, bits as u32, Ordering::Relaxed),
            _ => self.merge_word(off, &bits.to_le_bytes()[..size.min(4)]),
        }
    }

    /// The word at `off`, for a store: only writers store, and they refuse read-only
    /// regions when they are made.
    #[inline(always)]
    fn word_mut(&self, off: usize) -> &AtomicU32 {
        debug_assert!(self.writable, "store into a read-only region");
        self.word(off)
    }

    /// Words for stores (see `word_mut`).
    #[inline(always)]
    fn words_mut(&self, off: usize, n: usize) -> &[AtomicU32] {
        debug_assert!(self.writable, "store into a read-only region");
        self.words(off, n)
    }

    /// Copies `dst.len()` bytes starting at the 4-aligned offset `off` into `dst` with
    /// relaxed atomic word loads.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        self.read_bytes_as(off, dst, false)
    }

    /// [`read_bytes`](Self::read_bytes), for a length known at compile time if `fixed`
    /// (then x86-64 copies a span shorter than the string copy's with
    /// `bulk::copy_fixed`).
    #[inline(always)]
    pub(crate) fn read_bytes_as(&self, off: usize, dst: &mut [u8], fixed: bool) {
        let _ = fixed;
        let full = dst.len() / 4;
        let nwords = dst.len().div_ceil(4);
        let src = self.words(off, nwords);
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        if dst.len() >= VECTOR_MIN {
            // SAFETY: `words` checked that the `nwords * 4 >= dst.len()` bytes at `off`
            // lie in the region; `dst` is an exclusive borrow of private memory, so the
            // two do not overlap.
            unsafe {
                let (src, dst, len) = (src.as_ptr() as *const u8, dst.as_mut_ptr(), dst.len());
                if fixed && len < BULK_MIN {
                    bulk::copy_fixed(src, dst, len)
                } else {
                    bulk::copy_out(src, dst, len)
                }
            };
            return;
        }
        let (body, tail) = dst.split_at_mut(full * 4);
        for (d, w) in body.chunks_exact_mut(4).zip(src) {
            d.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        if !tail.is_empty() {
            let w = src[full].load(Ordering::Relaxed).to_ne_bytes();
            tail.copy_from_slice(&w[..tail.len()]);
        }
    }

    /// Writes `src` at byte offset `off` (any alignment) with relaxed atomic word stores
    /// (or the bulk copy). Partial words are read, merged and stored back, which is only
    /// correct because there is a single writer.
    pub(crate) fn write_bytes(&self, off: usize, src: &[u8]) {
        // Whole aligned words (every scalar of 4 or 8 bytes, most arrays): no merging.
        if off.is_multiple_of(4) && src.len().is_multiple_of(4) {
            self.store_words(off, src);
            return;
        }
        // Unaligned head: the bytes up to the next word boundary, merged.
        let head = ((4 - off % 4) % 4).min(src.len());
        if head > 0 {
            self.merge_word(off, &src[..head]);
        }
        let body = &src[head..];
        if body.is_empty() {
            return;
        }
        // Whole words (the bulk of an array or string), then a tail shorter than a word,
        // merged.
        let start = off + head;
        let full = body.len() / 4 * 4;
        self.store_words(start, &body[..full]);
        if full < body.len() {
            self.merge_word(start + full, &body[full..]);
        }
    }

    /// Stores `src` (a whole number of words) at the 4-aligned offset `off`.
    #[inline(always)]
    fn store_words(&self, off: usize, src: &[u8]) {
        let words = self.words_mut(off, src.len() / 4);
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        if src.len() >= VECTOR_MIN {
            // SAFETY: `words_mut` checked that the destination lies in the region; `src`
            // is private memory, not part of the region.
            unsafe { bulk::copy_in(src.as_ptr(), words.as_ptr() as *mut u8, src.len()) };
            return;
        }
        for (w, b) in words.iter().zip(src.chunks_exact(4)) {
            w.store(
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                Ordering::Relaxed,
            );
        }
    }

    /// Stores `bytes` (at most up to the end of the word holding `off`) into that word,
    /// keeping its other bytes.
    fn merge_word(&self, off: usize, bytes: &[u8]) {
        let base = off & !3;
        let lo = off - base;
        debug_assert!(lo + bytes.len() <= 4);
        let w = self.word_mut(base);
        let mut b = w.load(Ordering::Relaxed).to_ne_bytes();
        b[lo..lo + bytes.len()].copy_from_slice(bytes);
        w.store(u32::from_ne_bytes(b), Ordering::Relaxed);
    }

    /// Sets `len` bytes at `off` (any alignment) to zero.
    pub(crate) fn zero(&self, off: usize, len: usize) {
        if len == 0 {
            return;
        }
        let mut a = off;
        let end = off + len;
        // Unaligned head, byte-merged.
        while a < end && !a.is_multiple_of(4) {
            let n = (4 - a % 4).min(end - a);
            self.write_bytes(a, &[0u8; 4][..n]);
            a += n;
        }
        // `a` is 4-aligned here unless the head loop already reached `end` (a range
        // inside one word); then there are no full words and `words` must not be asked
        // for an unaligned offset.
        let full = (end - a) / 4;
        if full > 0 {
            let words = self.words_mut(a, full);
            #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
            let words = if full * 4 >= BULK_MIN {
                // SAFETY: `words_mut` checked that the range lies in the region.
                unsafe { bulk::zero(words.as_ptr() as *mut u8, full * 4) };
                &[]
            } else {
                words
            };
            for w in words {
                w.store(0, Ordering::Relaxed);
            }
        }
        a += full * 4;
        if a < end {
            self.write_bytes(a, &[0u8; 4][..end - a]);
        }
    }

    /// Copies `len` bytes (a multiple of 4) from `src` to `dst` inside the region, both
    /// 4-aligned and not overlapping; relaxed atomic loads and stores.
    pub(crate) fn copy_within(&self, src: usize, dst: usize, len: usize) {
        debug_assert!(len.is_multiple_of(4) && (src + len <= dst || dst + len <= src));
        let n = len / 4;
        let s = self.words(src, n);
        let d = self.words_mut(dst, n);
        #[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
        if len >= VECTOR_MIN {
            // SAFETY: both ranges lie in the region (checked by `words`/`words_mut`) and
            // do not overlap (the caller's contract, asserted above in debug builds).
            unsafe { bulk::copy_in(s.as_ptr() as *const u8, d.as_ptr() as *mut u8, len) };
            return;
        }
        for (d, s) in d.iter().zip(s) {
            d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod bounds_tests {
    use super::*;

    /// An aligned offset so large that `off + 4` would overflow is out of bounds (it must
    /// not wrap around and pass the check).
    #[test]
    #[should_panic(expected = "region access out of bounds")]
    fn offset_near_usize_max_is_out_of_bounds() {
        let mut mem = [0u64; 4];
        // SAFETY: `mem` is a live, 8-aligned local of 32 bytes, only accessed through
        // this region until the end of the test.
        let region = unsafe { Region::from_raw_parts(mem.as_mut_ptr() as *mut u8, 32) }.unwrap();
        region.load(usize::MAX - 3, Ordering::Relaxed);
    }

    /// An empty access is checked too: its offset may be the end of the region, not
    /// beyond it (forming a pointer past the end is undefined behaviour).
    #[test]
    fn empty_access_past_the_end_is_out_of_bounds() {
        let mut mem = [0u64; 4];
        // SAFETY: as above.
        let region = unsafe { Region::from_raw_parts(mem.as_mut_ptr() as *mut u8, 32) }.unwrap();
        let mut none = [0u8; 0];
        region.read_bytes(32, &mut none); // at the end: allowed
        let past = std::panic::catch_unwind(|| {
            let mut none = [0u8; 0];
            region.read_bytes(36, &mut none)
        });
        assert!(
            past.is_err(),
            "an empty read at offset 36 of 32 bytes was let through"
        );
    }

    /// Every copy path (word loop, 16-byte vector loop, string instruction) moves exactly
    /// the bytes asked for: reads and writes of every length up to 300 at every offset
    /// alignment agree with a plain byte model, and leave the bytes around them alone.
    #[test]
    fn copies_of_every_length_and_offset_match_a_byte_model() {
        const LEN: usize = 320;
        let mut mem = [0u64; LEN / 8];
        // SAFETY: as above.
        let region = unsafe { Region::from_raw_parts(mem.as_mut_ptr() as *mut u8, LEN) }.unwrap();
        let fill = |model: &mut [u8; LEN], seed: u8| {
            for (i, b) in model.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
            }
            region.write_bytes(0, &model[..]);
        };
        let read_all = || {
            let mut out = [0u8; LEN];
            region.read_bytes(0, &mut out);
            out
        };
        let lengths = (0..=300).step_by(if cfg!(miri) { 37 } else { 1 });
        let mut model = [0u8; LEN];
        for len in lengths {
            for off in 0..8usize.min(LEN - len + 1) {
                fill(&mut model, len as u8);
                assert_eq!(read_all(), model, "fill, len {len}");
                let src: [u8; LEN] = core::array::from_fn(|i| 0xA5 ^ (i as u8));
                region.write_bytes(off, &src[..len]);
                model[off..off + len].copy_from_slice(&src[..len]);
                assert_eq!(read_all(), model, "write_bytes at {off}, len {len}");
                let aligned = off & !3;
                let mut got = [0xEEu8; LEN];
                region.read_bytes(aligned, &mut got[..len]);
                assert_eq!(
                    got[..len],
                    model[aligned..aligned + len],
                    "read_bytes at {aligned}, len {len}"
                );
                assert!(
                    got[len..].iter().all(|&b| b == 0xEE),
                    "read_bytes wrote past {len}"
                );
                let mut fixed = [0xEEu8; LEN];
                region.read_bytes_as(aligned, &mut fixed[..len], true);
                assert_eq!(fixed, got, "read_bytes_as(fixed) at {aligned}, len {len}");
                region.zero(off, len);
                model[off..off + len].fill(0);
                assert_eq!(read_all(), model, "zero at {off}, len {len}");
                if len % 4 == 0 && aligned + len <= LEN / 2 {
                    region.copy_within(aligned, LEN / 2, len);
                    model.copy_within(aligned..aligned + len, LEN / 2);
                    assert_eq!(read_all(), model, "copy_within from {aligned}, len {len}");
                }
            }
        }
    }

    /// The last word is in bounds, the one after it is not.
    #[test]
    fn last_word_in_bounds() {
        let mut mem = [0u64; 4];
        // SAFETY: as above.
        let region = unsafe { Region::from_raw_parts(mem.as_mut_ptr() as *mut u8, 32) }.unwrap();
        region.store(28, 7, Ordering::Relaxed);
        assert_eq!(region.load(28, Ordering::Relaxed), 7);
        let past_end = std::panic::catch_unwind(|| region.load(32, Ordering::Relaxed));
        assert!(past_end.is_err());
    }
}
