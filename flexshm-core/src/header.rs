//! The segment header: self-description, validation, initialisation.
//!
//! ```text
//! offset  word            written by        meaning
//! 0       magic           init (last)       0x4D53_5846, the bytes "FXSM"
//! 4       version         init              protocol version (1)
//! 8       flags           init              bit 0: FIFO mode
//! 12      slots           init              record slots (1 in single-slot mode)
//! 16      hash_lo         init              layout hash, low 32 bits
//! 20      hash_hi         init              layout hash, high 32 bits
//! 24      descriptor_len  init              bytes of the schema descriptor
//! 28      slots_offset    init              offset of buffer 0
//! 32      slot_size       init              bytes of one record
//! 36      slot_stride     init              distance between buffers
//! 40      total_size      init              bytes of the whole segment
//! 44      reserved        -                 0
//! 48      head            writer (Release)  commit number of the newest record
//! 52..64  reserved        -                 0
//! 64..128 frontend area   std frontend      writer claim, wake-up words; the core
//!                                           never reads or writes it
//! 128     descriptor      init              schema descriptor (docs/PROTOCOL.md)
//! ```

use crate::descriptor::{self as schema, FIELD_ENTRY_LEN};
use crate::error::Error;
use crate::layout::{self, Layout, MAX_FIELDS};
use crate::primitive::{fence, Ordering};
use crate::region::Region;
use crate::schema::{FieldDef, Name};

/// The first word of every segment: the bytes `F X S M`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"FXSM");
/// The protocol version this build reads and writes.
pub const VERSION: u32 = 1;
/// Most record slots a FIFO segment may have.
pub const MAX_SLOTS: u32 = 1 << 24;

pub(crate) const H_MAGIC: usize = 0;
pub(crate) const H_VERSION: usize = 4;
pub(crate) const H_FLAGS: usize = 8;
pub(crate) const H_SLOTS: usize = 12;
pub(crate) const H_HASH_LO: usize = 16;
pub(crate) const H_HASH_HI: usize = 20;
pub(crate) const H_DESCRIPTOR_LEN: usize = 24;
pub(crate) const H_SLOTS_OFFSET: usize = 28;
pub(crate) const H_SLOT_SIZE: usize = 32;
pub(crate) const H_SLOT_STRIDE: usize = 36;
pub(crate) const H_TOTAL_SIZE: usize = 40;
/// Offset of the `head` word.
pub const H_HEAD: usize = 48;
/// Start of the 64 bytes reserved for a frontend (the std crate keeps its writer claim
/// and wake-up words there). The core initialises them to zero and never touches them
/// again.
pub const FRONTEND_AREA: usize = 64;
/// Length of the frontend area.
pub const FRONTEND_AREA_LEN: usize = 64;
/// Offset of the schema descriptor.
pub const DESCRIPTOR_OFFSET: usize = 128;

const FLAG_FIFO: u32 = 1;

/// How records are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// Each write commits at once; readers get the latest record.
    Single,
    /// Writes are staged and `finalize` commits them into a ring of `slots` records that
    /// readers consume in order.
    Fifo {
        /// Records kept in the ring.
        slots: u32,
    },
}

impl Mode {
    /// Record slots (1 in single-slot mode).
    pub fn slots(self) -> u32 {
        match self {
            Mode::Single => 1,
            Mode::Fifo { slots } => slots,
        }
    }

    /// True in FIFO mode.
    pub fn is_fifo(self) -> bool {
        matches!(self, Mode::Fifo { .. })
    }
}

/// Geometry of a validated segment, shared by writer and reader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub mode: Mode,
    pub nbuf: u32,
    pub modulus: u32,
    pub slots_offset: usize,
    pub stride: usize,
    /// `c mod nbuf` without a division: see [`Geometry::buffer`].
    #[cfg(not(target_os = "none"))]
    nbuf_inv: u64,
}

impl Geometry {
    pub fn new<S: AsRef<[FieldDef]>>(layout: &Layout<S>, mode: Mode) -> Geometry {
        let nbuf = layout::buffers(mode.slots());
        Geometry::from_parts(
            mode,
            nbuf,
            layout::modulus(nbuf),
            layout.slots_offset(),
            layout.slot_stride(),
        )
    }

    fn from_parts(
        mode: Mode,
        nbuf: u32,
        modulus: u32,
        slots_offset: usize,
        stride: usize,
    ) -> Geometry {
        Geometry {
            mode,
            nbuf,
            modulus,
            slots_offset,
            stride,
            // ceil(2^64 / nbuf); nbuf >= 2, so it fits (and 1 would wrap to 0, which
            // still gives the right remainder, 0).
            #[cfg(not(target_os = "none"))]
            nbuf_inv: (u64::MAX / nbuf.max(1) as u64).wrapping_add(1),
        }
    }

    /// The buffer index of commit `c`: `c mod nbuf`.
    ///
    /// On hosts, without a division instruction (a 32-bit `div` takes ~25 cycles, and a
    /// write locates buffers three times): with `M = ceil(2^64 / d)`, the low 64 bits of
    /// `M * c` are the fraction `c / d` scaled by 2^64 (rounded up by less than
    /// `c / 2^64 * d`), and multiplying it by `d` and keeping the high 64 bits gives the
    /// remainder exactly for every 32-bit `c` and `d` (Lemire, Kaser and Kurz, "Faster
    /// remainder by direct computation", 2019). Tested against `%` in this module.
    /// Microcontrollers keep `%`: a 128-bit product is a library call there.
    #[inline]
    pub fn buffer(&self, c: u32) -> u32 {
        #[cfg(not(target_os = "none"))]
        {
            let frac = self.nbuf_inv.wrapping_mul(c as u64);
            ((frac as u128 * self.nbuf as u128) >> 64) as u32
        }
        #[cfg(target_os = "none")]
        {
            c % self.nbuf
        }
    }

    /// Byte offset of the buffer holding commit `c`.
    // On bare-metal targets (flash-bound firmware) `slot`, `add` and `sub` are called
    // rather than inlined at their ~25 call sites: about 300 bytes less `.text` on
    // Cortex-M (docs/EMBEDDED.md). Hosts keep them inline for the hot paths.
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn slot(&self, c: u32) -> usize {
        debug_assert!(c < self.modulus);
        self.slots_offset + self.buffer(c) as usize * self.stride
    }

    /// Byte offset of the buffer holding commit `c` in a single-slot segment, whose two
    /// buffers make `c mod 2` a mask: one cycle where [`slot`](Self::slot)'s
    /// remainder takes about ten, on the path from a loaded `head` to the loads of
    /// its buffer. Hosts only: microcontrollers keep the one shared `slot` (flash).
    #[cfg(not(target_os = "none"))]
    #[inline]
    pub fn single_slot(&self, c: u32) -> usize {
        debug_assert!(self.mode == Mode::Single && self.nbuf == 2 && c < self.modulus);
        self.slots_offset + (c & 1) as usize * self.stride
    }

    /// `(c + k) mod modulus`, in 32-bit arithmetic: a 64-bit `%` costs ~900 bytes of
    /// flash on Cortex-M (a software division routine).
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn add(&self, c: u32, k: u32) -> u32 {
        let m = self.modulus;
        let (c, k) = (reduce(c, m), reduce(k, m));
        // c, k < m, so c + k < 2m: at most one subtraction of m.
        if c >= m - k {
            c - (m - k)
        } else {
            c + k
        }
    }

    /// `(a - b) mod modulus`, in 32-bit arithmetic (see `add`).
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn sub(&self, a: u32, b: u32) -> u32 {
        let m = self.modulus;
        let (a, b) = (reduce(a, m), reduce(b, m));
        if a >= b {
            a - b
        } else {
            a + (m - b)
        }
    }
}

/// `x mod m` without a division in the common case `x < m` (commit numbers and small
/// offsets always are; a division costs tens of cycles, several times per commit).
#[inline]
fn reduce(x: u32, m: u32) -> u32 {
    if x < m {
        x
    } else {
        x % m
    }
}

fn check_mode(mode: Mode) -> Result<(), Error> {
    let slots = mode.slots();
    if slots == 0 || slots > MAX_SLOTS {
        return Err(Error::ModeMismatch {
            expected_slots: slots,
            found_slots: 0,
        });
    }
    Ok(())
}

/// Writes a fresh header, descriptor and empty buffers into `region`. Readers see the
/// segment only once the magic word is stored (Release), last.
pub(crate) fn initialize<S: AsRef<[FieldDef]>>(
    region: &Region<'_>,
    layout: &Layout<S>,
    mode: Mode,
) -> Result<Geometry, Error> {
    check_mode(mode)?;
    let total = layout.segment_size(mode.slots())?;
    if region.len() < total {
        return Err(Error::RegionTooSmall {
            needed: total,
            available: region.len(),
        });
    }
    // Hide the segment from readers while it is rebuilt: a reader that loads magic == 0
    // rejects the segment.
    region.store(H_MAGIC, 0, Ordering::Relaxed);
    fence(Ordering::Release);
    region.zero(4, total - 4);
    let hash = layout.hash();
    region.store(H_VERSION, VERSION, Ordering::Relaxed);
    region.store(
        H_FLAGS,
        if mode.is_fifo() { FLAG_FIFO } else { 0 },
        Ordering::Relaxed,
    );
    region.store(H_SLOTS, mode.slots(), Ordering::Relaxed);
    region.store(H_HASH_LO, hash as u32, Ordering::Relaxed);
    region.store(H_HASH_HI, (hash >> 32) as u32, Ordering::Relaxed);
    let fields = layout.fields();
    region.store(
        H_DESCRIPTOR_LEN,
        schema::descriptor_len(fields.len()) as u32,
        Ordering::Relaxed,
    );
    region.store(
        H_SLOTS_OFFSET,
        layout.slots_offset() as u32,
        Ordering::Relaxed,
    );
    region.store(H_SLOT_SIZE, layout.slot_size() as u32, Ordering::Relaxed);
    region.store(
        H_SLOT_STRIDE,
        layout.slot_stride() as u32,
        Ordering::Relaxed,
    );
    region.store(H_TOTAL_SIZE, total as u32, Ordering::Relaxed);
    region.write_bytes(DESCRIPTOR_OFFSET, &(fields.len() as u32).to_le_bytes());
    let mut e = [0u8; FIELD_ENTRY_LEN];
    for (i, f) in fields.iter().enumerate() {
        schema::encode_entry(f, &mut e);
        region.write_bytes(
            DESCRIPTOR_OFFSET + schema::DESCRIPTOR_PREAMBLE + i * FIELD_ENTRY_LEN,
            &e,
        );
    }
    // Publish: pairs with the Acquire load of magic in `validate`, so a reader that sees
    // the magic also sees every header word and the zeroed buffers.
    region.store(H_MAGIC, MAGIC, Ordering::Release);
    Ok(Geometry::new(layout, mode))
}

/// What a validated header says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderInfo {
    pub mode: Mode,
    pub field_count: usize,
}

/// Checks the fixed header words; returns the mode and the descriptor's field count.
pub(crate) fn validate_prefix(region: &Region<'_>) -> Result<HeaderInfo, Error> {
    if region.len() < DESCRIPTOR_OFFSET + schema::DESCRIPTOR_PREAMBLE {
        return Err(Error::RegionTooSmall {
            needed: DESCRIPTOR_OFFSET + schema::DESCRIPTOR_PREAMBLE,
            available: region.len(),
        });
    }
    // Pairs with the Release store of magic at the end of `initialize`.
    let magic = region.load(H_MAGIC, Ordering::Acquire);
    if magic != MAGIC {
        return Err(Error::BadMagic { found: magic });
    }
    let version = region.load(H_VERSION, Ordering::Relaxed);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let flags = region.load(H_FLAGS, Ordering::Relaxed);
    if flags & !FLAG_FIFO != 0 {
        return Err(Error::CorruptHeader { what: "flags" });
    }
    let slots = region.load(H_SLOTS, Ordering::Relaxed);
    if slots == 0 || slots > MAX_SLOTS || (flags & FLAG_FIFO == 0 && slots != 1) {
        return Err(Error::CorruptHeader { what: "slot count" });
    }
    let mode = if flags & FLAG_FIFO != 0 {
        Mode::Fifo { slots }
    } else {
        Mode::Single
    };
    let mut pre = [0u8; 4];
    region.read_bytes(DESCRIPTOR_OFFSET, &mut pre);
    let field_count = u32::from_le_bytes(pre) as usize;
    if field_count > MAX_FIELDS {
        return Err(Error::CorruptHeader {
            what: "field count above 64",
        });
    }
    let dlen = region.load(H_DESCRIPTOR_LEN, Ordering::Relaxed) as usize;
    if dlen != schema::descriptor_len(field_count) {
        return Err(Error::CorruptHeader {
            what: "descriptor length",
        });
    }
    if region.len() < DESCRIPTOR_OFFSET + dlen {
        return Err(Error::RegionTooSmall {
            needed: DESCRIPTOR_OFFSET + dlen,
            available: region.len(),
        });
    }
    Ok(HeaderInfo { mode, field_count })
}

/// Reads and validates field entry `i` of the descriptor (after `validate_prefix`).
pub(crate) fn read_field(region: &Region<'_>, i: usize) -> Result<FieldDef, Error> {
    let mut e = [0u8; FIELD_ENTRY_LEN];
    region.read_bytes(
        DESCRIPTOR_OFFSET + schema::DESCRIPTOR_PREAMBLE + i * FIELD_ENTRY_LEN,
        &mut e,
    );
    schema::decode_field_entry(&e)
}

/// Checks the remaining header words against a layout built from the segment's (or the
/// caller's, already compared) fields.
pub(crate) fn validate_geometry<S: AsRef<[FieldDef]>>(
    region: &Region<'_>,
    layout: &Layout<S>,
    info: HeaderInfo,
) -> Result<Geometry, Error> {
    let hash = layout.hash();
    let lo = region.load(H_HASH_LO, Ordering::Relaxed);
    let hi = region.load(H_HASH_HI, Ordering::Relaxed);
    if lo != hash as u32 || hi != (hash >> 32) as u32 {
        return Err(Error::CorruptHeader {
            what: "layout hash does not match the schema descriptor",
        });
    }
    let total = layout.segment_size(info.mode.slots())?;
    let expect = |off, v: usize, what| {
        if region.load(off, Ordering::Relaxed) as usize != v {
            Err(Error::CorruptHeader { what })
        } else {
            Ok(())
        }
    };
    expect(H_SLOTS_OFFSET, layout.slots_offset(), "slots offset")?;
    expect(H_SLOT_SIZE, layout.slot_size(), "slot size")?;
    expect(H_SLOT_STRIDE, layout.slot_stride(), "slot stride")?;
    expect(H_TOTAL_SIZE, total, "total size")?;
    if region.len() < total {
        return Err(Error::RegionTooSmall {
            needed: total,
            available: region.len(),
        });
    }
    let geo = Geometry::new(layout, info.mode);
    let head = region.load(H_HEAD, Ordering::Relaxed);
    if head >= geo.modulus {
        return Err(Error::CorruptHeader {
            what: "head commit number",
        });
    }
    Ok(geo)
}

/// Validates a segment against the caller's layout: header, descriptor (field by field,
/// the error names the first difference), geometry.
pub(crate) fn validate<S: AsRef<[FieldDef]>>(
    region: &Region<'_>,
    layout: &Layout<S>,
) -> Result<Geometry, Error> {
    let info = validate_prefix(region)?;
    let expected = layout.fields();
    let n = info.field_count.max(expected.len());
    for i in 0..n {
        let found = if i < info.field_count {
            Some(read_field(region, i)?)
        } else {
            None
        };
        let e = expected.get(i);
        // As `layout::compare_fields` on the two fields at position i.
        let what = match (e, &found) {
            (Some(e), Some(f)) if e.name != f.name => "name",
            (Some(e), Some(f)) if e.kind != f.kind => "type",
            (Some(_), Some(_)) => continue,
            _ => "field count",
        };
        return Err(Error::SchemaMismatch {
            position: i as u16,
            expected: e.map_or(Name::EMPTY, |x| x.name),
            found: found.map_or(Name::EMPTY, |x| x.name),
            what,
        });
    }
    validate_geometry(region, layout, info)
}

/// Reads the schema a segment describes, validating the header; for tools and readers
/// that do not know the record type in advance.
pub fn read_schema(region: &Region<'_>) -> Result<(crate::SchemaBuf, Mode), Error> {
    let info = validate_prefix(region)?;
    let mut fields = crate::SchemaBuf::new();
    for i in 0..info.field_count {
        let f = read_field(region, i)?;
        // Cannot fail: field_count <= MAX_FIELDS was checked in validate_prefix.
        fields
            .push(f)
            .map_err(|_| Error::TooManyFields { count: i + 1 })?;
    }
    let layout = Layout::new(fields).map_err(|_| Error::CorruptHeader {
        what: "schema descriptor has invalid or duplicate fields",
    })?;
    validate_geometry(region, &layout, info)?;
    Ok((layout.into_fields(), info.mode))
}

#[cfg(test)]
mod geometry_tests {
    use super::*;

    /// The division-free buffer index equals `c % nbuf` for every buffer count a segment
    /// can have at its edges, and every commit number near 0, near multiples of `nbuf`,
    /// near the modulus and the top of u32, plus a pseudo-random spread.
    #[test]
    fn buffer_index_matches_remainder() {
        // Miri runs a few thousandth of it: small counts and the edges.
        let (last, spread) = if cfg!(miri) { (12, 20) } else { (300, 2000) };
        let mut counts: std::vec::Vec<u32> = (2..=last).collect();
        counts.extend([511, 512, 513, 1023, 1024, 1025, 65535, 65536, 65537]);
        counts.extend([MAX_SLOTS - 1, MAX_SLOTS, MAX_SLOTS + 1]);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for nbuf in counts {
            let m = layout::modulus(nbuf);
            let g = Geometry::from_parts(Mode::Single, nbuf, m, 0, 64);
            let mut cs = std::vec::Vec::new();
            for base in [0, nbuf, 2 * nbuf, m / 2, m - nbuf, m, u32::MAX - nbuf] {
                let near = if cfg!(miri) { 4 } else { 2 * nbuf.min(64) };
                cs.extend((0..=near).map(|k| base.wrapping_add(k).wrapping_sub(2)));
            }
            for _ in 0..spread {
                // xorshift64: a spread over the whole u32 range.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                cs.push(x as u32);
            }
            for c in cs {
                assert_eq!(g.buffer(c), c % nbuf, "buffer({c}) with {nbuf} buffers");
            }
        }
    }

    /// A single-slot segment's buffer by mask is the general one, for every commit
    /// number near 0 and near the modulus and over a pseudo-random spread (the
    /// geometry of a real one-field segment: its slot offset and stride).
    #[test]
    fn single_slot_matches_slot() {
        let g = Geometry::new(
            &Layout::new(
                &[crate::schema::FieldDef::new(
                    "x",
                    crate::schema::Kind::Scalar(crate::schema::Dtype::F64),
                )][..],
            )
            .unwrap(),
            Mode::Single,
        );
        assert_eq!(g.nbuf, 2);
        let m = g.modulus;
        let mut cs: std::vec::Vec<u32> = (0..64).chain(m - 64..m).collect();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..if cfg!(miri) { 50 } else { 5000 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cs.push(x as u32 % m);
        }
        for c in cs {
            assert_eq!(g.single_slot(c), g.slot(c), "commit {c}");
        }
        assert_ne!(g.single_slot(1), g.single_slot(2));
    }

    /// The 32-bit `add`/`sub` agree with the plain 64-bit formulas for every in-range
    /// input near the edges, for small and the largest buffer counts.
    #[test]
    fn add_sub_match_u64_reference() {
        for nbuf in [2u32, 3, 5, 17, MAX_SLOTS + 1] {
            let m = layout::modulus(nbuf);
            let g = Geometry::from_parts(Mode::Single, nbuf, m, 0, 64);
            let edge = [0, 1, 2, nbuf - 1, nbuf, m / 2, m - nbuf, m - 2, m - 1];
            for &a in &edge {
                for &b in &edge {
                    let add = ((a as u64 + b as u64) % m as u64) as u32;
                    let sub = ((a as u64 + m as u64 - b as u64) % m as u64) as u32;
                    assert_eq!(g.add(a, b), add, "add({a}, {b}) mod {m}");
                    assert_eq!(g.sub(a, b), sub, "sub({a}, {b}) mod {m}");
                }
            }
        }
    }
}
