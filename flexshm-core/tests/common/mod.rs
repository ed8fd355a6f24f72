//! Helpers shared by the integration tests: owned, aligned test memory that can be
//! inspected and poked between operations, and the reference schemas.
#![allow(dead_code)]

use flexshm_core::{Dtype, FieldDef, Kind, Layout, Mode, Region};

/// The seed's SensorData record.
pub const SENSOR: &[FieldDef] = &[
    FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
    FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
    FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
    FieldDef::new("status_msg", Kind::str(32)),
];

/// One field of every kind the bad-input tests need.
pub const MIXED: &[FieldDef] = &[
    FieldDef::new("f", Kind::Scalar(Dtype::F64)),
    FieldDef::new("i", Kind::Scalar(Dtype::I32)),
    FieldDef::new("u8", Kind::Scalar(Dtype::U8)),
    FieldDef::new("flag", Kind::Scalar(Dtype::Bool)),
    FieldDef::new("s", Kind::str(4)),
    FieldDef::new("arr", Kind::array(Dtype::I16, &[3, 2])),
    FieldDef::new("i64", Kind::Scalar(Dtype::I64)),
];

/// Offset of the head word in the header (docs/PROTOCOL.md).
pub const HEAD: usize = 48;

/// The commit-number modulus for `nbuf` buffers: commit numbers run in `0..modulus`.
pub fn modulus(nbuf: u32) -> u32 {
    (u32::MAX / nbuf) * nbuf
}

/// Test memory: a 64-aligned heap buffer. The region handed out and the byte helpers
/// below all derive from one raw pointer; the helpers use plain accesses, which is sound
/// because the tests call them only while no flexshm operation runs (see the safety
/// contract of `Region::from_raw_parts`).
pub struct Mem {
    ptr: *mut u8,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: the memory is owned by `Mem`; concurrent access happens only through
// `Region`, which uses atomics.
unsafe impl Send for Mem {}
// SAFETY: as above; the plain-access helpers take `&self` but are documented to be used
// only when no other thread touches the memory.
unsafe impl Sync for Mem {}

impl Mem {
    /// `len` zeroed bytes, 64-aligned.
    pub fn new(len: usize) -> Mem {
        let layout = std::alloc::Layout::from_size_align(len.max(4), 64).unwrap();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Mem { ptr, len, layout }
    }

    /// Memory for a segment of `fields` in `mode`, exactly as large as it needs.
    pub fn for_schema(fields: &[FieldDef], mode: Mode) -> Mem {
        let l = Layout::new(fields).unwrap();
        Mem::new(l.segment_size(mode.slots()).unwrap())
    }

    /// A region over the whole buffer.
    pub fn region(&self) -> Region<'_> {
        // SAFETY:
        // - ptr is valid for len bytes until `self` is dropped, which the borrow prevents;
        // - the only other accesses are the helpers below, used between operations.
        unsafe { Region::from_raw_parts(self.ptr, self.len) }.unwrap()
    }

    /// A region starting `skip` bytes into the buffer (for misalignment tests).
    pub fn region_at(&self, skip: usize) -> Result<Region<'_>, flexshm_core::Error> {
        assert!(skip <= self.len);
        // SAFETY: as in `region`, over a sub-range of the buffer.
        unsafe { Region::from_raw_parts(self.ptr.add(skip), self.len - skip) }
    }

    /// A region over the first `len` bytes.
    pub fn prefix(&self, len: usize) -> Region<'_> {
        assert!(len <= self.len);
        // SAFETY: as in `region`, over a prefix of the buffer.
        unsafe { Region::from_raw_parts(self.ptr, len) }.unwrap()
    }

    /// A copy of every byte.
    pub fn bytes(&self) -> Vec<u8> {
        // SAFETY: in bounds; no flexshm operation runs concurrently (caller's contract).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
    }

    /// Overwrites every byte.
    pub fn set_bytes(&self, b: &[u8]) {
        assert_eq!(b.len(), self.len);
        // SAFETY: in bounds, non-overlapping; no concurrent flexshm operation.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr, self.len) }
    }

    /// The little-endian u32 at `off`.
    pub fn u32_at(&self, off: usize) -> u32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: in bounds and 4-aligned (base is 64-aligned).
        u32::from_le(unsafe { self.ptr.add(off).cast::<u32>().read() })
    }

    /// Stores `v` little-endian at `off`.
    pub fn set_u32(&self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: in bounds and 4-aligned.
        unsafe { self.ptr.add(off).cast::<u32>().write(v.to_le()) }
    }

    /// Stores byte `v` at `off`.
    pub fn set_u8(&self, off: usize, v: u8) {
        assert!(off < self.len);
        // SAFETY: in bounds.
        unsafe { self.ptr.add(off).write(v) }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// Where the buffers of a segment are.
pub struct Geo {
    pub slots_offset: usize,
    pub stride: usize,
    pub nbuf: u32,
    pub nfields: usize,
}

impl Geo {
    pub fn new(fields: &[FieldDef], mode: Mode) -> Geo {
        let l = Layout::new(fields).unwrap();
        Geo {
            slots_offset: l.slots_offset(),
            stride: l.slot_stride(),
            nbuf: mode.slots() + 1,
            nfields: fields.len(),
        }
    }

    /// Byte offset of buffer `b`.
    pub fn buffer(&self, b: u32) -> usize {
        self.slots_offset + b as usize * self.stride
    }
}

/// Slot header offsets (docs/PROTOCOL.md).
pub const SLOT_SEQ: usize = 0;
pub const SLOT_COMMIT: usize = 4;
pub const SLOT_FLAGS: usize = 8;
pub const INFO_WRITTEN: u32 = 1 << 30;

/// Renumbers every commit of a quiescent segment by `+d` (a multiple of the buffer
/// count, so each record stays in its buffer): the head word, the commit word of every
/// committed buffer and the last-write commit of every written field. The result is the
/// segment a writer would have left after `d` more commits of history, which lets the
/// tests reach the commit-number wrap-around without billions of writes.
pub fn renumber(mem: &Mem, g: &Geo, d: u32) {
    assert_eq!(
        d % g.nbuf,
        0,
        "renumbering must keep records in their buffers"
    );
    let m = modulus(g.nbuf);
    let shift = |c: u32| ((c as u64 + d as u64) % m as u64) as u32;
    mem.set_u32(HEAD, shift(mem.u32_at(HEAD)));
    for b in 0..g.nbuf {
        let base = g.buffer(b);
        if mem.u32_at(base + SLOT_FLAGS) & 1 != 0 {
            mem.set_u32(base + SLOT_COMMIT, shift(mem.u32_at(base + SLOT_COMMIT)));
        }
        for i in 0..g.nfields {
            let meta = base + flexshm_core::internal::meta_offset(i);
            if mem.u32_at(meta + 4) & INFO_WRITTEN != 0 {
                mem.set_u32(meta, shift(mem.u32_at(meta)));
            }
        }
    }
}

/// The first differing offset of two byte strings, if any.
pub fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Scales an iteration count down under Miri.
pub fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}
