//! Readers: consistent snapshots without locks, per-field status, FIFO cursors.
//!
//! A reader never writes to the region. Everything that is per reader (the FIFO cursor,
//! the change tracking behind `reset_modified`, the count of records lost to a lapping
//! writer) lives in the `Reader` value, so any number of readers get correct answers and
//! a crashed reader affects nobody.

use crate::error::Error;
use crate::header::{self, Geometry, Mode, SchemaBuf, H_HEAD};
use crate::layout::{
    capacity_len, meta_offset, Layout, FLAG_COMMITTED, INFO_LEN_MASK, INFO_TRUNCATED, INFO_WRITTEN,
    MAX_FIELDS, SLOT_COMMIT, SLOT_FLAGS, SLOT_SEQ,
};
use crate::primitive::{fence, Ordering};
use crate::region::Region;
use crate::schema::{FieldDef, Kind};
use crate::value::{decode_scalar, FieldValue};

/// How a read chooses its record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadOptions {
    /// FIFO mode: return the newest record, skipping unread older ones (skipped records
    /// are not counted as lost). Single-slot mode always returns the newest record.
    pub latest: bool,
    /// Report `modified` relative to this reader's previous `reset_modified` read instead
    /// of "written in the record being read", and start a new tracking period.
    pub reset_modified: bool,
}

/// The status of one field in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FieldStatus {
    /// The field has been written since the segment was created.
    pub written: bool,
    /// The last value written did not fit and was cut.
    pub truncated: bool,
    /// Written in the record read (or, with `reset_modified`, since this reader's
    /// previous such read).
    pub modified: bool,
}

impl FieldStatus {
    /// Written and not truncated: the value is exactly what the writer wrote.
    pub fn valid(&self) -> bool {
        self.written && !self.truncated
    }

    /// Never written since the segment was created.
    pub fn unwritten(&self) -> bool {
        !self.written
    }
}

/// What a successful read returned, without the borrowed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadInfo {
    /// Commit number of the record (0 for the empty record of a fresh single-slot
    /// segment).
    pub commit: u32,
    /// FIFO mode: records this reader lost since its previous read because the writer
    /// lapped it. Always 0 in single-slot mode.
    pub lost: u32,
    /// Bit i: field i is `modified`.
    pub modified: u64,
    /// Bit i: field i has been written.
    pub written: u64,
    /// Bit i: field i is truncated.
    pub truncated: u64,
}

impl ReadInfo {
    /// Status of field `i`.
    pub fn status(&self, i: usize) -> FieldStatus {
        let bit = 1u64 << (i % 64);
        FieldStatus {
            written: self.written & bit != 0,
            truncated: self.truncated & bit != 0,
            modified: self.modified & bit != 0,
        }
    }
}

/// A consistent copy of one record, in a buffer the caller owns, with per-field status.
pub struct Snapshot<'b, 'l, S> {
    bytes: &'b [u8],
    layout: &'l Layout<S>,
    info: ReadInfo,
}

/// Default number of copy attempts before a non-blocking read gives up with
/// [`Error::Contended`].
pub const DEFAULT_RETRIES: u32 = 1024;

/// A reader of a segment. See the module docs; create one per consumer.
pub struct Reader<'r, S> {
    region: Region<'r>,
    layout: Layout<S>,
    geo: Geometry,
    /// FIFO: the commit number this reader expects next (None: not started).
    next: Option<u32>,
    /// Per field: the last-write commit seen at the previous `reset_modified` read
    /// (`u32::MAX`: none yet; it is never a commit number).
    seen: [u32; MAX_FIELDS],
    lost_total: u64,
    retries: u32,
}

impl<S> core::fmt::Debug for Reader<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("mode", &self.geo.mode)
            .field("next", &self.next)
            .field("lost_total", &self.lost_total)
            .finish()
    }
}

impl<'r> Reader<'r, SchemaBuf> {
    /// Opens a segment without knowing its schema: the header describes it.
    pub fn open_dynamic(region: Region<'r>) -> Result<Self, Error> {
        let (fields, _) = header::read_schema(&region)?;
        Reader::open(region, fields)
    }
}

impl<'r, S: AsRef<[FieldDef]>> Reader<'r, S> {
    /// Opens a segment, checking that it holds records of exactly `fields` (the error
    /// names the first difference).
    pub fn open(region: Region<'r>, fields: S) -> Result<Self, Error> {
        Self::open_with_layout(region, Layout::new(fields)?)
    }

    /// [`open`](Self::open) with the layout already built.
    pub(crate) fn open_with_layout(region: Region<'r>, layout: Layout<S>) -> Result<Self, Error> {
        let geo = header::validate(&region, &layout)?;
        let mut r = Reader {
            region,
            layout,
            geo,
            next: None,
            seen: [u32::MAX; MAX_FIELDS],
            lost_total: 0,
            retries: DEFAULT_RETRIES,
        };
        // FIFO: the reader's first record is the oldest in the ring now, so records
        // committed after this open and overwritten before the first read count as lost.
        if let Mode::Fifo { slots } = geo.mode {
            r.next = r.oldest_committed(slots);
        }
        Ok(r)
    }

    /// FIFO: the oldest record the ring holds now, or the commit after the newest if it
    /// holds none. `None` if the header's head is corrupt (the first read reports it).
    fn oldest_committed(&self, slots: u32) -> Option<u32> {
        let head = self.load_head().ok()?;
        // Buffers that never held a record (a fresh ring) are skipped; at most one lap.
        let mut c = self.geo.sub(head, slots - 1);
        while c != head && !self.slot_committed(c) {
            c = self.geo.add(c, 1);
        }
        if c == head && !self.slot_committed(c) {
            c = self.geo.add(c, 1);
        }
        Some(c)
    }

    /// The segment's layout.
    pub fn layout(&self) -> &Layout<S> {
        &self.layout
    }

    /// The segment's mode.
    pub fn mode(&self) -> Mode {
        self.geo.mode
    }

    /// Bytes a snapshot buffer needs.
    pub fn snapshot_len(&self) -> usize {
        self.layout.slot_size()
    }

    /// Total records this reader lost to a lapping writer since it was opened.
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// Sets how many copy attempts a non-blocking read makes before it reports
    /// [`Error::Contended`] (at least 1).
    pub fn set_retries(&mut self, retries: u32) {
        self.retries = retries.max(1);
    }

    /// Commit number of the newest record (0 before the first commit). A cheap check for
    /// "is there something new" that copies nothing.
    pub fn head(&self) -> u32 {
        // Pairs with the Release store of head in `Writer::finalize`.
        self.region.load(H_HEAD, Ordering::Acquire)
    }

    /// True if a read now would find a record it has not returned yet (FIFO: an unread
    /// record; single-slot: always true).
    pub fn has_new(&self) -> bool {
        match (self.geo.mode, self.next) {
            (Mode::Single, _) => true,
            (Mode::Fifo { .. }, Some(next)) => !self.is_ahead_of(next, self.head()),
            (Mode::Fifo { .. }, None) => self.head() != 0 || self.slot_committed(0),
        }
    }

    /// True if commit `c` is newer than `head` (in the modular order: less than half the
    /// modulus ahead), i.e. not published as far as this reader can see.
    fn is_ahead_of(&self, c: u32, head: u32) -> bool {
        let ahead = self.geo.sub(c, head);
        ahead != 0 && ahead < self.geo.modulus / 2
    }

    fn slot_committed(&self, c: u32) -> bool {
        let off = self.geo.slot(c);
        self.region.load(off + SLOT_FLAGS, Ordering::Relaxed) & FLAG_COMMITTED != 0
    }

    /// Takes a snapshot into `buf` without waiting. Single-slot mode: the newest record
    /// (the empty record, every field unwritten, before the first write). FIFO mode: the
    /// next unread record, or the newest with `opts.latest`; [`Error::NoRecord`] if there
    /// is none. [`Error::Contended`] if the writer overtook every copy attempt.
    pub fn try_read<'b>(
        &mut self,
        buf: &'b mut [u8],
        opts: ReadOptions,
    ) -> Result<Snapshot<'b, '_, S>, Error> {
        let info = self.try_read_info(buf, opts)?;
        Ok(self.snapshot(buf, info))
    }

    /// Like [`try_read`](Self::try_read) but returns only the [`ReadInfo`]; the record is
    /// in `buf` and [`snapshot`](Self::snapshot) gives a view of it.
    pub fn try_read_info(&mut self, buf: &mut [u8], opts: ReadOptions) -> Result<ReadInfo, Error> {
        let need = self.layout.slot_size();
        let buf = buf
            .get_mut(..need)
            .ok_or(Error::BufferTooSmall { needed: need })?;
        let (commit, lost) = match self.geo.mode {
            Mode::Single => (self.read_single(buf)?, 0),
            Mode::Fifo { slots } => self.read_fifo(buf, slots, opts.latest)?,
        };
        self.finish(buf, commit, lost, opts.reset_modified)
    }

    /// A view of a record that [`try_read_info`](Self::try_read_info) left in `buf`.
    pub fn snapshot<'b>(&self, buf: &'b [u8], info: ReadInfo) -> Snapshot<'b, '_, S> {
        Snapshot {
            bytes: buf,
            layout: &self.layout,
            info,
        }
    }

    /// One seqlock-protected copy of the buffer holding commit `c` into `buf`.
    fn copy_slot(&self, c: u32, buf: &mut [u8]) -> Result<(), ()> {
        let off = self.geo.slot(c);
        // Pairs with the Release store of seq in `Writer::finalize`: if we see the even
        // value it stored, the copy below sees the record it completed (or newer bytes,
        // which the re-check catches).
        let s1 = self.region.load(off + SLOT_SEQ, Ordering::Acquire);
        if s1 & 1 != 0 {
            return Err(()); // being written
        }
        self.region.read_bytes(off, buf);
        // Pairs with the Release fence in `Writer::open_staging`: if any load above saw
        // a store made after the writer made seq odd, the load below sees that odd value
        // (or a later one) and the copy is discarded.
        fence(Ordering::Acquire);
        let s2 = self.region.load(off + SLOT_SEQ, Ordering::Relaxed);
        if s1 == s2 {
            Ok(())
        } else {
            Err(())
        }
    }

    fn load_head(&self) -> Result<u32, Error> {
        // Pairs with the Release store of head in `Writer::finalize`.
        let head = self.region.load(H_HEAD, Ordering::Acquire);
        if head >= self.geo.modulus {
            return Err(Error::CorruptHeader {
                what: "head commit number",
            });
        }
        Ok(head)
    }

    /// Single-slot: copy the newest record; retry only if the writer published twice
    /// during a copy (then it rewrote the buffer being copied).
    fn read_single(&mut self, buf: &mut [u8]) -> Result<u32, Error> {
        for _ in 0..self.retries {
            let head = self.load_head()?;
            if self.copy_slot(head, buf).is_ok() {
                let commit = word(buf, SLOT_COMMIT);
                if commit >= self.geo.modulus || self.geo.slot(commit) != self.geo.slot(head) {
                    return Err(Error::CorruptHeader {
                        what: "slot commit number does not belong to the head's buffer",
                    });
                }
                if commit == head {
                    return Ok(commit);
                }
                // The writer published twice between our load of head and our load of
                // seq, and the copy is a consistent copy of a newer record (head + 2)
                // whose own store of head may not be visible to us yet. Returning it
                // would let this reader's next read, still seeing an older head, go
                // back in time (and if the writer died before storing head, the record
                // was never published at all). Retry: head has moved on already.
            }
            core::hint::spin_loop();
        }
        Err(Error::Contended)
    }

    /// FIFO: the next unread record (or the newest), with lapped-reader accounting.
    fn read_fifo(&mut self, buf: &mut [u8], slots: u32, latest: bool) -> Result<(u32, u32), Error> {
        if !latest {
            if let Some(next) = self.next {
                if self.copy_next(next, slots, buf) {
                    self.next = Some(self.geo.add(next, 1));
                    return Ok((next, 0));
                }
            }
        }
        let geo = self.geo;
        for _ in 0..self.retries {
            let head = self.load_head()?;
            let oldest = geo.sub(head, slots - 1);
            let mut lost = 0u32;
            let mut cursor = if latest {
                if self.next.is_some_and(|n| self.is_ahead_of(n, head)) {
                    return Err(Error::NoRecord);
                }
                head
            } else {
                self.next.unwrap_or(oldest)
            };
            // Walk forward at most one ring's worth (a fresh reader skips buffers that
            // never held a record).
            let mut raced = false;
            for _ in 0..=slots {
                if self.is_ahead_of(cursor, head) {
                    // Nothing newer than `head` is visible. The cursor can be more than
                    // one past it: the fast path may already have read records whose
                    // buffers were closed (seq Release) before the writer's store of head
                    // became visible here.
                    return Err(Error::NoRecord);
                }
                let behind = geo.sub(head, cursor);
                if behind >= slots {
                    // Lapped: records cursor..oldest were overwritten before we read them.
                    lost = lost.saturating_add(behind - (slots - 1));
                    cursor = oldest;
                }
                if !self.slot_committed(cursor) {
                    // Never held a record (young ring): skip it without a full copy.
                    // `head` was loaded with Acquire, and a committed buffer's flag is
                    // stored before the Release store of that head, and never cleared;
                    // so a clear flag here means no record up to `head` lives there.
                    cursor = geo.add(cursor, 1);
                    continue;
                }
                if self.copy_slot(cursor, buf).is_err() {
                    raced = true;
                    break;
                }
                let commit = word(buf, SLOT_COMMIT);
                let flags = word(buf, SLOT_FLAGS);
                if flags & FLAG_COMMITTED == 0 {
                    // Never held a record (fresh segment): not a loss, look further.
                    cursor = geo.add(cursor, 1);
                    continue;
                }
                if commit == cursor {
                    self.next = Some(geo.add(cursor, 1));
                    self.lost_total += lost as u64;
                    return Ok((commit, lost));
                }
                // The buffer holds another record: overwritten by a newer one during
                // or just before our copy (lapped); reload head and account for it.
                raced = true;
                break;
            }
            if !raced {
                return Err(Error::NoRecord);
            }
            core::hint::spin_loop();
        }
        Err(Error::Contended)
    }

    /// FIFO fast path: if the buffer of commit `next` holds that record and it is still
    /// in the readable window, copies it without reading `head`. A reader that keeps up
    /// then touches only the slots it reads, not the header word the writer stores at
    /// every commit. Anything else (not written yet, being written, out of the window,
    /// overwritten by a later lap) returns false and the caller takes the full path
    /// through `head`, which also counts losses.
    fn copy_next(&self, next: u32, slots: u32, buf: &mut [u8]) -> bool {
        let off = self.geo.slot(next);
        // A cheap look before copying the whole slot; the copy below decides. Pairs with
        // the Release store of seq in `Writer::finalize`, like `copy_slot`.
        let s = self.region.load(off + SLOT_SEQ, Ordering::Acquire);
        if s & 1 != 0 || self.region.load(off + SLOT_COMMIT, Ordering::Relaxed) != next {
            return false;
        }
        if self.copy_slot(next, buf).is_err()
            || word(buf, SLOT_COMMIT) != next
            || word(buf, SLOT_FLAGS) & FLAG_COMMITTED == 0
        {
            return false;
        }
        // `next` left the window (S records) once commit `next + S` was published; that
        // record lives in the buffer just before `next`'s. While that buffer holds an
        // older record, `next` was in the window when it was copied. Acquire: ordered
        // after the copy's loads (pairs with the Release store of seq in `finalize`, which
        // follows the store of the commit word).
        let later = self.geo.add(next, slots);
        let there = self
            .region
            .load(self.geo.slot(later) + SLOT_COMMIT, Ordering::Acquire);
        // `there` is `later` or newer (out of the window) unless it lies behind `later`.
        self.geo.sub(there, later) >= self.geo.modulus / 2
    }

    /// Validates a copied record's metadata and computes the statuses.
    fn finish(
        &mut self,
        buf: &[u8],
        commit: u32,
        lost: u32,
        reset: bool,
    ) -> Result<ReadInfo, Error> {
        let mut info = ReadInfo {
            commit,
            lost,
            modified: 0,
            written: 0,
            truncated: 0,
        };
        // Validate everything before updating the change tracking.
        for (i, f) in self.layout.fields().iter().enumerate() {
            let m = meta_offset(i);
            let winfo = word(buf, m + 4);
            let len = winfo & INFO_LEN_MASK;
            let bad = |what| Error::CorruptRecord {
                field: f.name,
                what,
            };
            if winfo & INFO_WRITTEN == 0 {
                if winfo != 0 {
                    return Err(bad("status bits set on an unwritten field"));
                }
                continue;
            }
            match f.kind {
                Kind::Scalar(_) if len != 0 => return Err(bad("length on a scalar")),
                _ if len > capacity_len(&f.kind) => {
                    return Err(bad("stored length exceeds capacity"))
                }
                _ => {}
            }
            let bit = 1u64 << i;
            info.written |= bit;
            if winfo & INFO_TRUNCATED != 0 {
                info.truncated |= bit;
            }
        }
        for i in 0..self.layout.len() {
            let bit = 1u64 << i;
            if info.written & bit == 0 {
                continue;
            }
            let wc = word(buf, meta_offset(i));
            let modified = if reset {
                let m = wc != self.seen[i];
                self.seen[i] = wc;
                m
            } else {
                wc == commit
            };
            if modified {
                info.modified |= bit;
            }
        }
        Ok(info)
    }
}

fn word(buf: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = buf.get(off..off + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

impl<'b, S: AsRef<[FieldDef]>> Snapshot<'b, '_, S> {
    /// What the read returned: commit number, loss count, status masks.
    pub fn info(&self) -> ReadInfo {
        self.info
    }

    /// Commit number of the record.
    pub fn commit(&self) -> u32 {
        self.info.commit
    }

    /// FIFO: records lost to a lapping writer since this reader's previous read.
    pub fn lost(&self) -> u32 {
        self.info.lost
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// True if the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// Declaration of field `i`.
    pub fn field(&self, i: usize) -> Option<&FieldDef> {
        self.layout.fields().get(i)
    }

    /// Index of the field called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.layout.index_of(name)
    }

    /// Status of field `i`.
    pub fn status(&self, i: usize) -> FieldStatus {
        self.info.status(i)
    }

    /// The raw bytes of field `i`'s stored value (little-endian; strings and arrays cut
    /// to their stored length).
    pub fn raw(&self, i: usize) -> Result<&'b [u8], Error> {
        raw_field(self.bytes, self.layout, i)
    }

    /// Decodes field `i`. Unwritten fields decode as zero / empty.
    pub fn get(&self, i: usize) -> Result<FieldValue<'b>, Error> {
        decode_field(self.bytes, self.layout, i)
    }

    /// Decodes the field called `name`.
    pub fn get_named(&self, name: &str) -> Result<FieldValue<'b>, Error> {
        let i = self.index_of(name).ok_or(Error::UnknownField {
            name: crate::schema::Name::lossy(name),
        })?;
        self.get(i)
    }
}

/// The stored bytes of field `i` in a snapshot buffer (length validated by the read).
pub fn raw_field<'b, S: AsRef<[FieldDef]>>(
    bytes: &'b [u8],
    layout: &Layout<S>,
    i: usize,
) -> Result<&'b [u8], Error> {
    let f = layout.fields().get(i).ok_or(Error::UnknownField {
        name: crate::schema::Name::EMPTY,
    })?;
    let len = word(bytes, meta_offset(i) + 4) & INFO_LEN_MASK;
    let used = match f.kind {
        Kind::Scalar(d) => d.size() as usize,
        Kind::Str { .. } => len as usize,
        // Checked: `len` is untrusted when the bytes did not come from a validated read,
        // and the product can overflow a 32-bit usize.
        Kind::Array { dtype, dims } => (len as usize)
            .saturating_mul(dims.row_elems().unwrap_or(0) as usize * dtype.size() as usize),
    };
    let off = layout.offset(i);
    let corrupt = Error::CorruptRecord {
        field: f.name,
        what: "stored length exceeds capacity",
    };
    if used > layout.size(i) {
        return Err(corrupt);
    }
    bytes.get(off..off + used).ok_or(corrupt)
}

/// Decodes field `i` of a snapshot buffer.
pub fn decode_field<'b, S: AsRef<[FieldDef]>>(
    bytes: &'b [u8],
    layout: &Layout<S>,
    i: usize,
) -> Result<FieldValue<'b>, Error> {
    let raw = raw_field(bytes, layout, i)?;
    let f = &layout.fields()[i];
    Ok(match f.kind {
        Kind::Scalar(d) => decode_scalar(d, raw),
        Kind::Str { .. } => {
            FieldValue::Str(core::str::from_utf8(raw).map_err(|_| Error::CorruptRecord {
                field: f.name,
                what: "string is not valid UTF-8",
            })?)
        }
        Kind::Array { dtype, dims } => FieldValue::Array {
            dtype,
            rows: raw.len() / (dims.row_elems().unwrap_or(1) as usize * dtype.size() as usize),
            bytes: raw,
        },
    })
}
