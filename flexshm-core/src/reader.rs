//! Readers: consistent snapshots without locks, per-field status, FIFO cursors.
//!
//! A reader never writes to the region (it works on a read-only mapping). Everything
//! that is per reader (the FIFO cursor, the change tracking behind `reset_modified`, the
//! count of records lost to a lapping writer) lives in the `Reader` value, so any number
//! of readers get correct answers and a crashed reader affects nobody.

use core::marker::PhantomData;

use crate::error::Error;
use crate::header::{self, Geometry, Mode, H_HEAD};
use crate::layout::{
    capacity_len, meta_offset, Layout, FIELD_META_LEN, INFO_LEN_MASK, INFO_TRUNCATED, INFO_WRITTEN,
    MAX_FIELDS, SLOT_HEADER_LEN,
};
use crate::primitive::Ordering;
use crate::record::{layout_of, Dynamic, Fields, Record, Schema};
use crate::region::Region;
use crate::schema::FieldDef;
use crate::schema::Kind;
use crate::slot::{Slot, SLOT_COMMIT, SLOT_FLAGS};
use crate::snapshot::Snapshot;
use crate::status::{ReadInfo, ReadOptions};

/// Default number of copy attempts before a non-blocking read gives up with
/// [`Error::Contended`].
pub const DEFAULT_RETRIES: u32 = 1024;

/// A reader of a segment of `S` records (a [`Record`] type, or [`Dynamic`]). Create one
/// per consumer: each keeps its own FIFO position, change tracking and loss count.
pub struct Reader<'r, S: Schema> {
    region: Region<'r>,
    layout: Layout<S::Fields>,
    geo: Geometry,
    /// FIFO: the commit number this reader reads next. Set at open; moved only by a read
    /// that succeeds.
    next: u32,
    /// Single-slot: the commit number of the record this reader returned last (0 before
    /// its first read).
    last: u32,
    /// Per field: the last-write commit seen at the previous `reset_modified` read
    /// (`u32::MAX`: none yet; it is never a commit number).
    seen: [u32; MAX_FIELDS],
    lost_total: u64,
    retries: u32,
    /// The layout's fields are `S::RECORD_FIELDS` (a typed reader on its own record's
    /// layout): `finish` may take the kinds from the constant.
    own: bool,
    _s: PhantomData<fn() -> S>,
}

impl<S: Schema> core::fmt::Debug for Reader<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("mode", &self.geo.mode)
            .field("next", &self.next)
            .field("lost_total", &self.lost_total)
            .finish()
    }
}

/// Where a FIFO cursor stands relative to a `head` the reader loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Everything up to `head` was read. The cursor is `head + 1`, or `head + 2` when the
    /// fast path read a record whose publication this reader does not see yet.
    Ahead,
    /// The cursor's record is in the readable window.
    InWindow,
    /// The writer overwrote the cursor's record; `behind` commits lie between the
    /// cursor and `head`.
    Lapped { behind: u32 },
}

/// The record a FIFO read chose, before it is validated.
#[derive(Debug, Clone, Copy)]
struct Pick {
    commit: u32,
    lost: u32,
}

impl<'r, R: Record> Reader<'r, R> {
    /// Opens a segment, checking that it holds `R` records (the error names the first
    /// difference).
    pub fn open(region: Region<'r>) -> Result<Self, Error> {
        Self::open_with_layout(region, layout_of::<R>()?)
    }
}

impl<'r> Reader<'r, Dynamic> {
    /// Opens a segment without knowing its schema: the header describes it.
    pub fn open(region: Region<'r>) -> Result<Self, Error> {
        let (fields, _) = header::read_schema(&region)?;
        Self::open_with_layout(region, Layout::new(fields)?)
    }
}

impl<'r, F: Fields> Reader<'r, Dynamic<F>> {
    /// Opens a segment, checking that it holds records of exactly `fields` (the error
    /// names the first difference).
    pub fn open_with(region: Region<'r>, fields: F) -> Result<Self, Error> {
        Self::open_with_layout(region, Layout::new(fields)?)
    }
}

impl<'r, S: Schema> Reader<'r, S> {
    /// Opens a segment, checking that it holds records of `layout` (e.g. a writer's
    /// [`Writer::layout`](crate::Writer::layout)).
    pub fn open_layout(region: Region<'r>, layout: Layout<S::Fields>) -> Result<Self, Error> {
        Self::open_with_layout(region, layout)
    }

    pub(crate) fn open_with_layout(
        region: Region<'r>,
        layout: Layout<S::Fields>,
    ) -> Result<Self, Error> {
        let geo = header::validate(&region, &layout)?;
        // Microcontrollers do not use it, and skip the comparison's code.
        let own =
            cfg!(not(target_os = "none")) && S::RECORD_FIELDS.is_some_and(|f| f == layout.fields());
        let mut r = Reader {
            region,
            layout,
            geo,
            next: 0,
            last: 0,
            seen: [u32::MAX; MAX_FIELDS],
            lost_total: 0,
            retries: DEFAULT_RETRIES,
            own,
            _s: PhantomData,
        };
        if let Mode::Fifo { slots } = geo.mode {
            r.next = r.first_cursor(slots)?;
        }
        Ok(r)
    }

    /// FIFO: where a new reader starts (docs/PROTOCOL.md §13.2): the oldest record of the
    /// window that its buffer still holds, or the commit after `head` if there is none.
    /// A buffer that holds any other record is skipped: in a young ring its number never
    /// was a record, and the writer may have overwritten it since `head` was loaded.
    fn first_cursor(&self, slots: u32) -> Result<u32, Error> {
        let head = self.load_head()?;
        let mut c = self.geo.sub(head, slots - 1);
        for _ in 0..slots {
            if self.slot(c).holds(c) {
                return Ok(c);
            }
            c = self.geo.add(c, 1);
        }
        Ok(self.geo.add(head, 1))
    }

    /// The segment's layout.
    pub fn layout(&self) -> &Layout<S::Fields> {
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

    /// Total records this reader lost to a lapping writer since it was opened
    /// (saturating).
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// Sets how many copy attempts a non-blocking read makes before it reports
    /// [`Error::Contended`] (at least 1).
    pub fn set_retries(&mut self, retries: u32) {
        self.retries = retries.max(1);
    }

    /// Commit number of the newest published record (0 before the first commit); copies
    /// nothing.
    pub fn head(&self) -> u32 {
        // Pairs with the Release store of head (W7) in `Writer::commit`.
        self.region.load(H_HEAD, Ordering::Acquire)
    }

    /// True if a read now would return a record this reader has not returned yet:
    /// single-slot, a commit other than the last one it returned; FIFO, an unread record
    /// (also after being lapped). Also true if the header is corrupt, so that the read
    /// that follows reports the error instead of a wait that never ends.
    pub fn has_new(&self) -> bool {
        let head = self.head();
        if head >= self.geo.modulus {
            return true;
        }
        match self.geo.mode {
            Mode::Single => head != self.last,
            Mode::Fifo { slots } => self.position(self.next, head, slots) != Position::Ahead,
        }
    }

    /// Takes a snapshot into `buf` without waiting. Single-slot mode: the newest record
    /// (the empty record, every field unwritten, before the first write). FIFO mode: the
    /// next unread record, or the newest with `opts.latest`; [`Error::NoRecord`] if there
    /// is none. [`Error::Contended`] if the writer overtook every copy attempt.
    ///
    /// A record that fails validation is an error and is not consumed: the FIFO cursor,
    /// the loss count and the change tracking move only when a read succeeds.
    pub fn try_read<'b>(
        &mut self,
        buf: &'b mut [u8],
        opts: ReadOptions,
    ) -> Result<Snapshot<'b, '_, S>, Error> {
        // A single-slot typed reader on its record's own layout (hosts): the slot size
        // is a constant, so the copy is a straight run of moves, `finish` checks the
        // metadata against the constant fields and `decode` loads at constant offsets.
        #[cfg(not(target_os = "none"))]
        if let (Some(own), true) = (const { own_layout(S::RECORD_FIELDS) }, self.own_single()) {
            return self.read_sized(buf, own.slot_size(), true, opts);
        }
        let need = self.layout.slot_size();
        self.read_sized(buf, need, false, opts)
    }

    /// A view of a record that a read of this reader left in `bytes`, with the
    /// [`ReadInfo`] that read returned: for frontends that copy into a buffer of their
    /// own and hand out snapshots of it later. It decodes as the snapshot
    /// [`try_read`](Self::try_read) returns does (a single-slot typed reader on its
    /// record's own layout at constant offsets, FIFO readers through the layout);
    /// decoding checks every length again, so any bytes give errors, never
    /// out-of-bounds reads.
    pub fn snapshot<'b>(&self, bytes: &'b [u8], info: ReadInfo) -> Snapshot<'b, '_, S> {
        if self.own_single() {
            Snapshot::new_own(bytes, &self.layout, info)
        } else {
            Snapshot::new(bytes, &self.layout, info)
        }
    }

    /// [`try_read`](Self::try_read) of a slot of `need` bytes (the layout's slot size),
    /// a compile-time constant if `fixed`. Inline everywhere: a microcontroller build
    /// has one caller.
    #[inline(always)]
    fn read_sized<'b>(
        &mut self,
        buf: &'b mut [u8],
        need: usize,
        fixed: bool,
        opts: ReadOptions,
    ) -> Result<Snapshot<'b, '_, S>, Error> {
        let buf = buf
            .get_mut(..need)
            .ok_or(Error::BufferTooSmall { needed: need })?;
        let info = match self.geo.mode {
            Mode::Single => {
                let commit = self.read_single(buf, fixed)?;
                let info = self.finish(buf, commit, 0, opts.reset_modified)?;
                self.last = commit;
                info
            }
            Mode::Fifo { slots } => {
                let pick = self.read_fifo(buf, slots, opts.latest)?;
                let info = self.finish(buf, pick.commit, pick.lost, opts.reset_modified)?;
                self.next = self.geo.add(pick.commit, 1);
                self.lost_total = self.lost_total.saturating_add(pick.lost as u64);
                info
            }
        };
        if fixed {
            return Ok(Snapshot::new_own(buf, &self.layout, info));
        }
        Ok(Snapshot::new(buf, &self.layout, info))
    }

    fn slot(&self, c: u32) -> Slot<'r> {
        Slot::new(self.region, self.geo.slot(c))
    }

    /// True for a single-slot typed reader on its record's own layout (never on
    /// microcontrollers, where `own` is false): the reads that copy a slot of
    /// compile-time size, check the metadata against the constant fields and decode at
    /// constant offsets. FIFO readers keep the general path (see `finish`).
    #[inline(always)]
    fn own_single(&self) -> bool {
        self.own && !self.geo.mode.is_fifo()
    }

    /// Single-slot mode: the buffer of commit `c` ([`Geometry::single_slot`] on hosts).
    #[inline(always)]
    fn single_slot(&self, c: u32) -> Slot<'r> {
        #[cfg(not(target_os = "none"))]
        return Slot::new(self.region, self.geo.single_slot(c));
        #[cfg(target_os = "none")]
        self.slot(c)
    }

    /// R1: `head`, Acquire, rejected if it is not a commit number.
    fn load_head(&self) -> Result<u32, Error> {
        // Pairs with the Release store of head (W7) in `Writer::commit`.
        let head = self.region.load(H_HEAD, Ordering::Acquire);
        if head >= self.geo.modulus {
            return Err(Error::CorruptHeader {
                what: "head commit number",
            });
        }
        Ok(head)
    }

    /// True if a consistent copy of the buffer of `want` that holds `found` instead is a
    /// record the writer committed after `want` in the same buffer, as far as a `head`
    /// loaded after the copy allows (the writer may have closed one buffer beyond
    /// `head`). Anything else in a consistent copy did not come from the writer.
    fn overwritten_by_newer(&self, want: u32, found: u32) -> Result<bool, Error> {
        let now = self.load_head()?;
        let d = self.geo.sub(found, want);
        let reach = self.geo.sub(self.geo.add(now, 1), want);
        Ok(found < self.geo.modulus && d.is_multiple_of(self.geo.nbuf) && d != 0 && d <= reach)
    }

    /// Single-slot: copy the newest record; retry only if the writer published twice
    /// during a copy (then it rewrote the buffer being copied).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn read_single(&mut self, buf: &mut [u8], fixed: bool) -> Result<u32, Error> {
        for _ in 0..self.retries {
            let head = self.load_head()?;
            if self.single_slot(head).try_copy_as(buf, fixed).is_ok() {
                let commit = word(buf, SLOT_COMMIT);
                if commit == head {
                    return Ok(commit);
                }
                // The writer published twice between our load of head and our load of
                // seq, and the copy is a consistent copy of a newer record (head + 2)
                // whose own store of head may not be visible to us yet. Returning it
                // would let this reader's next read, still seeing an older head, go
                // back in time (and if the writer stopped before storing head, the
                // record was not published). Retry: head has moved on already.
                if !self.overwritten_by_newer(head, commit)? {
                    return Err(Error::CorruptBuffer {
                        commit: head,
                        what: "the buffer of the head record holds another commit number",
                    });
                }
            }
            core::hint::spin_loop();
        }
        Err(Error::Contended)
    }

    /// Where `cursor` stands relative to `head` (docs/PROTOCOL.md §13.2). A legitimate
    /// cursor is at most 2 ahead of any head this reader can load; a cursor further
    /// ahead is one the writer lapped by so much that the commit numbers wrapped past it.
    fn position(&self, cursor: u32, head: u32, slots: u32) -> Position {
        let ahead = self.geo.sub(cursor, head);
        if ahead == 1 || ahead == 2 {
            return Position::Ahead;
        }
        let behind = self.geo.sub(head, cursor);
        if behind < slots {
            Position::InWindow
        } else {
            Position::Lapped { behind }
        }
    }

    /// Records lost when a cursor `behind` commits behind `head` moves to the oldest
    /// record of a ring of `slots`: exact below half the modulus, `u32::MAX` beyond.
    fn lost(&self, behind: u32, slots: u32) -> u32 {
        if behind >= self.geo.modulus / 2 {
            u32::MAX
        } else {
            behind - (slots - 1)
        }
    }

    /// FIFO: the next unread record (or the newest), with lapped-reader accounting. Does
    /// not move the cursor: `try_read` does, once the record is validated.
    fn read_fifo(&mut self, buf: &mut [u8], slots: u32, latest: bool) -> Result<Pick, Error> {
        if !latest && self.copy_next(self.next, slots, buf) {
            return Ok(Pick {
                commit: self.next,
                lost: 0,
            });
        }
        for _ in 0..self.retries {
            let head = self.load_head()?;
            let position = self.position(self.next, head, slots);
            let (cursor, lost) = match position {
                Position::Ahead => return Err(Error::NoRecord),
                // Records skipped by a `latest` read are not losses.
                _ if latest => (head, 0),
                Position::InWindow => (self.next, 0),
                Position::Lapped { behind } => {
                    (self.geo.sub(head, slots - 1), self.lost(behind, slots))
                }
            };
            if self.slot(cursor).try_copy(buf).is_err() {
                core::hint::spin_loop();
                continue; // being written: the writer lapped us during the copy
            }
            let commit = word(buf, SLOT_COMMIT);
            let committed = word(buf, SLOT_FLAGS) & crate::layout::FLAG_COMMITTED != 0;
            if commit == cursor && committed {
                return Ok(Pick { commit, lost });
            }
            // `head` (Acquire) covers every record of the window: a consistent copy of a
            // window buffer holds that record or one the writer committed after it.
            if !committed || !self.overwritten_by_newer(cursor, commit)? {
                return Err(Error::CorruptBuffer {
                    commit: cursor,
                    what: if committed {
                        "a buffer of the readable window holds another commit number"
                    } else {
                        "a buffer of the readable window is not marked committed"
                    },
                });
            }
            // Overwritten during or just before our copy (lapped): reload head, which
            // counts the loss.
            core::hint::spin_loop();
        }
        Err(Error::Contended)
    }

    /// FIFO fast path: if the buffer of commit `next` holds that record and it is still
    /// in the readable window, copies it without reading `head`. A reader that keeps up
    /// then touches only the slots it reads, not the header word the writer stores at
    /// every commit. Anything else (not written yet, being written, out of the window,
    /// overwritten by a later lap) returns false and the caller takes the path through
    /// `head`, which also counts losses.
    ///
    /// The record may be closed (W6) and not yet published (W7); a writer that takes
    /// over publishes such a record rather than reusing its commit number
    /// (`Writer::attach`), so every reader agrees on what commit `next` is.
    fn copy_next(&self, next: u32, slots: u32, buf: &mut [u8]) -> bool {
        let slot = self.slot(next);
        // A cheap look before copying the whole slot; the copy below decides. Pairs with
        // the Release store W6 of seq, like `try_copy`.
        let s = slot.seq_acquire();
        if s & 1 != 0 || slot.commit(Ordering::Relaxed) != next {
            return false;
        }
        if slot.try_copy(buf).is_err()
            || word(buf, SLOT_COMMIT) != next
            || word(buf, SLOT_FLAGS) & crate::layout::FLAG_COMMITTED == 0
        {
            return false;
        }
        // `next` left the window (S records) once commit `next + S` was published; that
        // record lives in the buffer just before `next`'s. While that buffer holds an
        // older record, `next` was in the window when it was copied. Acquire: ordered
        // after the copy's loads (pairs with W6 of that buffer, which follows the store
        // of its commit word).
        let later = self.geo.add(next, slots);
        let there = self.slot(later).commit(Ordering::Acquire);
        // `there` is `later` or newer (out of the window) unless it lies behind `later`.
        self.geo.sub(there, later) >= self.geo.modulus / 2
    }

    /// Validates a copied record's metadata and computes the statuses. Changes nothing
    /// in `self` unless the whole record is valid.
    ///
    /// On hosts, a single-slot typed reader on its record's own layout that does not
    /// track changes checks the metadata inline here, with [`fresh_scalars`] for a
    /// record of scalars written whole and [`meta_masks`] otherwise, against the
    /// constant fields (their count, kinds and the metadata's extent are compile-time
    /// constants). Anything else, and an invalid record, takes
    /// [`finish_fields`](Self::finish_fields). FIFO readers keep the field-by-field check
    /// they had before this path existed: the cross-process FIFO benchmark is bistable,
    /// and an A/B could not show that the new path does not slow a FIFO consumer.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn finish(
        &mut self,
        buf: &[u8],
        commit: u32,
        lost: u32,
        reset: bool,
    ) -> Result<ReadInfo, Error> {
        #[cfg(not(target_os = "none"))]
        if let (Some(own), true, false) = (S::RECORD_FIELDS, self.own_single(), reset) {
            let meta = buf.get(SLOT_HEADER_LEN..SLOT_HEADER_LEN + FIELD_META_LEN * own.len());
            let mut masks = [0u64; 3];
            // The record a typed writer commits (every field written in this commit)
            // needs one comparison per field; any other record takes `meta_masks`.
            let valid = if const { all_scalars(S::RECORD_FIELDS) }
                && meta.is_some_and(|meta| fresh_scalars(meta, commit))
            {
                let all = crate::writer::every_field(own.len());
                masks = [all, 0, all];
                true
            } else {
                meta.is_some_and(|meta| meta_masks(own, meta, commit, &mut masks))
            };
            if valid {
                let [written, truncated, modified] = masks;
                return Ok(ReadInfo {
                    commit,
                    lost,
                    modified,
                    written,
                    truncated,
                });
            }
        }
        self.finish_fields(buf, commit, lost, reset)
    }

    /// [`finish`](Self::finish) for any reader: checks the metadata against the layout's
    /// fields and tracks changes for `reset`.
    fn finish_fields(
        &mut self,
        buf: &[u8],
        commit: u32,
        lost: u32,
        reset: bool,
    ) -> Result<ReadInfo, Error> {
        let fields = self.layout.fields();
        // `buf` holds a whole record (`try_read` checked its length).
        let needed = SLOT_HEADER_LEN + FIELD_META_LEN * fields.len();
        let meta = buf
            .get(SLOT_HEADER_LEN..needed)
            .ok_or(Error::BufferTooSmall { needed })?;
        // The masks: written, truncated, modified. A typed reader on its record's own
        // layout checks against the constant fields, so each field's kind is known at
        // compile time (hosts only; microcontrollers keep one copy of the loop, which
        // takes less flash).
        let mut masks = [0u64; 3];
        match S::RECORD_FIELDS {
            Some(own) if self.own && cfg!(not(target_os = "none")) => {
                check_meta(own, meta, commit, &mut masks)?
            }
            _ => check_meta(fields, meta, commit, &mut masks)?,
        }
        let [written, truncated, mut modified] = masks;
        if reset {
            modified = 0;
            let mut bit = 1u64;
            for (i, seen) in self.seen.iter_mut().enumerate().take(fields.len()) {
                if written & bit != 0 {
                    let wc = word(buf, meta_offset(i));
                    if wc != *seen {
                        modified |= bit;
                    }
                    *seen = wc;
                }
                bit <<= 1;
            }
        }
        Ok(ReadInfo {
            commit,
            lost,
            modified,
            written,
            truncated,
        })
    }
}

/// True if every metadata pair in `meta` is exactly (`commit`, `INFO_WRITTEN`): for a
/// record of scalars only, every field valid, written and modified, and nothing
/// truncated (what [`meta_masks`] finds for such metadata). The typed single-slot
/// read's common case: one comparison per field, which the compiler may make a
/// predicted branch each. Across processes that measured faster than `meta_masks`,
/// whose masks are a chain of arithmetic on every metadata word, although it executes
/// more instructions in a warm loop (BENCHMARKS.md).
#[cfg(not(target_os = "none"))]
#[inline(always)]
fn fresh_scalars(meta: &[u8], commit: u32) -> bool {
    let fresh = u64::from(commit) | u64::from(INFO_WRITTEN) << 32;
    meta.chunks_exact(FIELD_META_LEN)
        .map(|m| meta_pair(m) ^ fresh)
        .fold(0, |a, d| a | d)
        == 0
}

/// True if `fields` is a compile-time field list of scalars only.
#[cfg(not(target_os = "none"))]
const fn all_scalars(fields: Option<&'static [FieldDef]>) -> bool {
    let Some(fields) = fields else {
        return false;
    };
    let mut i = 0;
    while i < fields.len() {
        if !matches!(fields[i].kind, Kind::Scalar(_)) {
            return false;
        }
        i += 1;
    }
    true
}

/// The compile-time layout of a typed record's fields (`Schema::RECORD_FIELDS`).
#[cfg(not(target_os = "none"))]
const fn own_layout(fields: Option<&'static [FieldDef]>) -> Option<Layout<&'static [FieldDef]>> {
    match fields {
        Some(f) => Layout::precomputed(f),
        None => None,
    }
}

/// [`check_meta`]'s rules as arithmetic, for the single-slot typed fast path of
/// [`Reader::finish`]: true, with the masks set, if every field of
/// `fields` is valid; false, with the masks unchanged, if any field is not. A scalar's info word
/// is valid only as 0 or exactly `INFO_WRITTEN`, since its length and truncated bits must
/// be clear (the three parts cover all 32 bits); a string or array is valid unwritten
/// with info 0, or written with a length within its capacity.
#[cfg(not(target_os = "none"))]
#[inline(always)]
fn meta_masks(fields: &[FieldDef], meta: &[u8], commit: u32, masks: &mut [u64; 3]) -> bool {
    let (mut written, mut truncated, mut modified) = (0u64, 0u64, 0u64);
    // Non-zero once any field is invalid.
    let mut bad = 0u32;
    let mut bit = 1u64;
    if meta.len() < fields.len() * FIELD_META_LEN {
        return false;
    }
    for (f, m) in fields.iter().zip(meta.chunks_exact(FIELD_META_LEN)) {
        let (last, winfo) = meta_words(m);
        // All ones if written, else zero; the same for "written in this record".
        let w = u64::from(winfo & INFO_WRITTEN != 0).wrapping_neg();
        let here = w & u64::from(last == commit).wrapping_neg();
        match f.kind {
            Kind::Scalar(_) => bad |= winfo & !INFO_WRITTEN,
            _ => {
                let len_bad = winfo & INFO_LEN_MASK > capacity_len(&f.kind);
                // Unwritten: every bit must be clear. Written: the length must fit.
                bad |= if w != 0 { u32::from(len_bad) } else { winfo };
                truncated |= bit & w & u64::from(winfo & INFO_TRUNCATED != 0).wrapping_neg();
            }
        }
        written |= bit & w;
        modified |= bit & here;
        bit <<= 1;
    }
    if bad != 0 {
        return false;
    }
    *masks = [written, truncated, modified];
    true
}

/// Checks the metadata `meta` (8 bytes per field, one chunk for each of `fields`) of the
/// record of commit `commit`: the (written, truncated, modified) masks, where modified
/// means written in this record, or the first invalid field's error.
#[inline(always)]
fn check_meta(
    fields: &[FieldDef],
    meta: &[u8],
    commit: u32,
    masks: &mut [u64; 3],
) -> Result<(), Error> {
    let [written, truncated, modified] = masks;
    // `bit` is field i's bit, shifted once per field: a variable 64-bit shift is a
    // library call on 32-bit microcontrollers.
    let mut bit = 1u64;
    // One 8-byte chunk per field: the zip covers every field.
    for (f, m) in fields.iter().zip(meta.chunks_exact(FIELD_META_LEN)) {
        let (last, winfo) = meta_words(m);
        let len = winfo & INFO_LEN_MASK;
        let bad = if winfo & INFO_WRITTEN == 0 {
            if winfo != 0 {
                "status bits set on an unwritten field"
            } else {
                ""
            }
        } else {
            match f.kind {
                Kind::Scalar(_) if len != 0 => "length on a scalar",
                Kind::Scalar(_) if winfo & INFO_TRUNCATED != 0 => "truncated bit on a scalar",
                _ if len > capacity_len(&f.kind) => "stored length exceeds capacity",
                _ => {
                    *written |= bit;
                    if winfo & INFO_TRUNCATED != 0 {
                        *truncated |= bit;
                    }
                    // Without `reset`, "modified" means written in this record;
                    // with it, `finish`'s change tracking decides (once the whole
                    // record is valid).
                    if last == commit {
                        *modified |= bit;
                    }
                    ""
                }
            }
        };
        if !bad.is_empty() {
            // One place builds the error (it copies the field name): each
            // construction site costs flash on a microcontroller.
            return Err(Error::CorruptRecord {
                field: f.name,
                what: bad,
            });
        }
        bit <<= 1;
    }
    Ok(())
}

/// An 8-byte metadata chunk as one little-endian load: last write in the low half, info
/// in the high half (hosts).
#[cfg(not(target_os = "none"))]
#[inline(always)]
fn meta_pair(m: &[u8]) -> u64 {
    u64::from_le_bytes(m.try_into().unwrap_or([0; FIELD_META_LEN]))
}

/// The two words of an 8-byte metadata chunk: last write, info.
#[inline(always)]
fn meta_words(m: &[u8]) -> (u32, u32) {
    // Hosts: one 8-byte load, split. Microcontrollers: two word loads (a 64-bit value
    // costs a register pair and shifts on a 32-bit core).
    #[cfg(not(target_os = "none"))]
    {
        let pair = meta_pair(m);
        (pair as u32, (pair >> 32) as u32)
    }
    #[cfg(target_os = "none")]
    (
        u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
        u32::from_le_bytes([m[4], m[5], m[6], m[7]]),
    )
}

#[cfg_attr(not(target_os = "none"), inline)]
fn word(buf: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = buf.get(off..off + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

#[cfg(all(test, not(target_os = "none")))]
mod tests {
    use super::*;
    use crate::schema::Dtype;

    /// `fresh_scalars` accepts exactly the all-(commit, WRITTEN) metadata, and there
    /// `meta_masks` finds every field written and modified and none truncated. Any one
    /// flipped bit, in any field's commit or info word, makes it decline (the record
    /// then takes `meta_masks` and the field-by-field rules).
    #[test]
    fn fresh_scalars_is_the_all_written_case_of_meta_masks() {
        let fields: [FieldDef; 5] = core::array::from_fn(|i| {
            let d = [Dtype::F64, Dtype::Bool, Dtype::U8, Dtype::I32, Dtype::F32][i];
            FieldDef::new("f", Kind::Scalar(d))
        });
        // Up to the largest single-slot commit number (the modulus is 0xffff_fffe).
        for commit in [1u32, 7, 0x7fff_ffff, 0xffff_fffd] {
            let mut meta = [0u8; 5 * FIELD_META_LEN];
            for m in meta.chunks_exact_mut(FIELD_META_LEN) {
                m[..4].copy_from_slice(&commit.to_le_bytes());
                m[4..].copy_from_slice(&INFO_WRITTEN.to_le_bytes());
            }
            assert!(fresh_scalars(&meta, commit));
            let mut masks = [0u64; 3];
            assert!(meta_masks(&fields, &meta, commit, &mut masks));
            assert_eq!(masks, [0b11111, 0, 0b11111]);
            for bit in 0..meta.len() * 8 {
                let mut flipped = meta;
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    !fresh_scalars(&flipped, commit),
                    "commit {commit} bit {bit}"
                );
            }
            assert!(!fresh_scalars(&meta, commit.wrapping_add(1)));
        }
        // No fields: nothing to check, as `meta_masks` says too.
        assert!(fresh_scalars(&[], 3));
    }

    /// A typed read of a record that is not all fresh (a field unwritten, a field
    /// written in an earlier commit) takes the general check: the statuses are those
    /// of the field-by-field rules. (Not a loom model: loom builds have no plain
    /// regions.)
    #[cfg(not(loom))]
    #[test]
    fn typed_read_of_a_partly_written_record() {
        use crate::Value;
        crate::record! {
            #[derive(Default, Debug, PartialEq)]
            struct Three {
                a: f64,
                b: u32,
                c: i16,
            }
        }
        let mut mem = crate::AlignedBuf::<1024>::new();
        let region = Region::new(&mut mem.0).unwrap();
        let mut w = crate::Writer::<Three>::create(region, Mode::Single).unwrap();
        let mut r = Reader::<Three>::open(region).unwrap();
        let mut buf = std::vec![0u8; Three::SNAPSHOT_LEN];
        let mut out = Three::default();
        // One typed read + decode: the (written, modified, truncated) masks.
        let mut read = |r: &mut Reader<'_, Three>, out: &mut Three| {
            let info = r
                .try_read(&mut buf, ReadOptions::default())
                .unwrap()
                .decode(out)
                .unwrap();
            (info.written, info.modified, info.truncated)
        };
        // Field a only: b and c unwritten.
        w.write_fields(&[(0, Value::Float(1.5))]).unwrap();
        assert_eq!(read(&mut r, &mut out), (0b001, 0b001, 0));
        // Then b only: a written earlier, so written but not modified.
        w.write_fields(&[(1, Value::UInt(9))]).unwrap();
        assert_eq!(read(&mut r, &mut out), (0b011, 0b010, 0));
        assert_eq!(out, Three { a: 1.5, b: 9, c: 0 });
        // Then all three: the fresh case.
        w.write_fields(&[
            (0, Value::Float(2.0)),
            (1, Value::UInt(3)),
            (2, Value::Int(-4)),
        ])
        .unwrap();
        assert_eq!(read(&mut r, &mut out), (0b111, 0b111, 0));
        assert_eq!(
            out,
            Three {
                a: 2.0,
                b: 3,
                c: -4
            }
        );
    }

    /// `Reader::snapshot` decodes as `try_read`'s snapshot does: at constant offsets
    /// for a single-slot typed reader on hosts, through the layout for a FIFO one. (Not
    /// a loom model: loom builds have no plain regions.)
    #[cfg(not(loom))]
    #[test]
    fn snapshot_decodes_as_try_read_does() {
        crate::record! {
            struct Two {
                a: f64,
                b: u32,
            }
        }
        for mode in [Mode::Single, Mode::Fifo { slots: 3 }] {
            let mut mem = crate::AlignedBuf::<2048>::new();
            let region = Region::new(&mut mem.0).unwrap();
            let mut w = crate::Writer::<Two>::create(region, mode).unwrap();
            w.write(&Two { a: 1.0, b: 2 }).unwrap();
            w.finalize();
            let mut r = Reader::<Two>::open(region).unwrap();
            let mut buf = std::vec![0u8; Two::SNAPSHOT_LEN];
            let (own, info) = {
                let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
                (snap.is_own(), snap.info())
            };
            assert_eq!(own, mode == Mode::Single && cfg!(not(target_os = "none")));
            assert_eq!(r.snapshot(&buf, info).is_own(), own, "{mode:?}");
        }
    }

    /// Info words around every rule's edges for a field of capacity `cap` (in length
    /// units): each part alone, each part with the others, lengths at and past `cap`.
    fn edge_infos(cap: u32) -> [u32; 16] {
        let w = INFO_WRITTEN;
        let t = INFO_TRUNCATED;
        [
            0,
            1,
            cap,
            w,
            w | 1,
            w | cap,
            w | (cap + 1),
            w | t,
            w | t | cap,
            w | t | (cap + 1),
            t,
            t | 1,
            w | INFO_LEN_MASK,
            INFO_LEN_MASK,
            u32::MAX,
            w | t | 1,
        ]
    }

    /// Every field of `fields` gets every edge info word in turn (the others stay
    /// valid), and then random combinations: `meta_masks` must accept exactly what the
    /// field-by-field rules accept, with the same masks, and leave the masks alone when
    /// it rejects.
    #[test]
    fn meta_masks_agrees_with_the_field_by_field_rules() {
        let fields = [
            FieldDef::new("a", Kind::Scalar(Dtype::F64)),
            FieldDef::new("b", Kind::Scalar(Dtype::Bool)),
            FieldDef::new("c", Kind::str(3)),
            FieldDef::new("d", Kind::Scalar(Dtype::U8)),
            FieldDef::new("e", Kind::array(Dtype::I16, &[4, 2])),
            FieldDef::new("f", Kind::Scalar(Dtype::I32)),
        ];
        let commit = 7;
        let valid = |f: &FieldDef| match f.kind {
            Kind::Scalar(_) => INFO_WRITTEN,
            _ => INFO_WRITTEN | 1,
        };
        let check = |infos: &[u32], lasts: &[u32]| {
            let mut meta = [0u8; 6 * FIELD_META_LEN];
            for (i, m) in meta.chunks_exact_mut(FIELD_META_LEN).enumerate() {
                m[..4].copy_from_slice(&lasts[i].to_le_bytes());
                m[4..].copy_from_slice(&infos[i].to_le_bytes());
            }
            let mut fast = [u64::MAX; 3];
            let accepted = meta_masks(&fields, &meta, commit, &mut fast);
            let mut each = [0u64; 3];
            let rules = check_meta(&fields, &meta, commit, &mut each);
            let what = format!("infos {infos:#x?} lasts {lasts:?}");
            assert_eq!(accepted, rules.is_ok(), "{what}: {rules:?}");
            if accepted {
                assert_eq!(fast, each, "{what}");
            } else {
                assert_eq!(fast, [u64::MAX; 3], "{what}: masks changed on rejection");
            }
            accepted
        };
        let mut accepted = 0;
        let mut cases = 0;
        for (i, f) in fields.iter().enumerate() {
            let cap = capacity_len(&f.kind);
            for info in edge_infos(cap) {
                for last in [commit, commit - 1] {
                    let mut infos: [u32; 6] = core::array::from_fn(|k| valid(&fields[k]));
                    infos[i] = info;
                    let mut lasts = [commit; 6];
                    lasts[i] = last;
                    accepted += check(&infos, &lasts) as u32;
                    cases += 1;
                }
            }
        }
        // Random records: every field drawn from its edge words (xorshift, fixed seed).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Miri interprets every step: a few hundred records there, enough to run each
        // branch of both functions.
        let rounds = if cfg!(miri) { 300 } else { 20_000 };
        for _ in 0..rounds {
            let infos: [u32; 6] = core::array::from_fn(|k| {
                let edges = edge_infos(capacity_len(&fields[k].kind));
                // Half the fields valid, so that rejections come from one or two fields.
                let r = next();
                if r % 2 == 0 {
                    valid(&fields[k])
                } else {
                    edges[(r >> 8) as usize % edges.len()]
                }
            });
            let lasts: [u32; 6] = core::array::from_fn(|_| commit - (next() % 2) as u32);
            accepted += check(&infos, &lasts) as u32;
            cases += 1;
        }
        // Both outcomes occur many times (the rules are not trivially all-accept or
        // all-reject for these inputs).
        assert!(
            accepted > cases / 50 && cases - accepted > cases / 50,
            "{accepted} of {cases}"
        );
    }
}
