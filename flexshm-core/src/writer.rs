//! The single writer: stages values into the spare buffer and publishes it.
//!
//! Protocol (docs/PROTOCOL.md §§11-13): the segment holds `slots + 1` buffers and the
//! record with commit number `c` lives in buffer `c % (slots + 1)`. The writer fills the
//! buffer after the newest one (never a buffer readers are directed to), guarded by that
//! buffer's seqlock counter ([`Slot`]), then publishes it by storing `head`.

use core::marker::PhantomData;

use crate::error::Error;
use crate::field_type::FieldType;
use crate::header::{self, Geometry, Mode, H_HEAD};
use crate::layout::{
    meta_offset, Layout, FIELD_META_LEN, INFO_LEN_MASK, INFO_TRUNCATED, INFO_WRITTEN, MAX_FIELDS,
    SLOT_HEADER_LEN,
};
use crate::primitive::Ordering;
use crate::record::{layout_of, Dynamic, Fields, Record, Schema};
use crate::region::Region;
use crate::schema::{Dtype, FieldDef, Kind, Name};
use crate::slot::Slot;
use crate::value::{self, Plan, Value};

/// The one writer of a segment, for records of `S`: a [`Record`] type, or [`Dynamic`]
/// for a schema given at run time.
///
/// In single-slot mode every write commits a record; in FIFO mode writes stage into the
/// pending record and [`finalize`](Writer::finalize) commits it. Fields a record does
/// not write carry their previous value (and status) over, with `modified` cleared. A
/// write is all-or-nothing: every value is checked before the region is touched.
///
/// There must be one writer per segment at any time. Taking over a segment from a
/// previous writer ([`attach`](Writer::attach)) requires that every store of the
/// previous writer happens-before the attach (docs/PROTOCOL.md §12.3): the previous
/// writer has exited, or handed over with a Release/Acquire pair.
pub struct Writer<'r, S: Schema> {
    region: Region<'r>,
    layout: Layout<S::Fields>,
    geo: Geometry,
    /// Commit number of the newest published record.
    head: u32,
    /// Byte offsets of `head`'s buffer and of the next commit's (the staging buffer),
    /// kept as commits advance so that a write locates neither with a division.
    head_at: usize,
    next_at: usize,
    /// The odd seq value of the buffer being staged, if one is open.
    staging: Option<u32>,
    /// Copy every field into the next staging buffer (after attaching to a segment whose
    /// previous writer may have died mid-write).
    full_copy: bool,
    _s: PhantomData<fn(&S)>,
}

impl<S: Schema> core::fmt::Debug for Writer<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer")
            .field("mode", &self.geo.mode)
            .field("head", &self.head)
            .field("staging", &self.staging.is_some())
            .finish()
    }
}

impl<'r, R: Record> Writer<'r, R> {
    /// Initialises `region` as a new, empty segment of `R` records and returns its
    /// writer. Everything previously in the region is discarded.
    pub fn create(region: Region<'r>, mode: Mode) -> Result<Self, Error> {
        Self::create_with_layout(region, layout_of::<R>()?, mode)
    }

    /// Becomes the writer of an existing segment of `R` records (see
    /// [`Writer::<Dynamic<F>>::attach`](Writer::attach-1) for what happens to the record
    /// the previous writer left).
    pub fn attach(region: Region<'r>) -> Result<Self, Error> {
        Self::attach_with_layout(region, layout_of::<R>()?)
    }

    /// Writes every field of `record` (single-slot: commits; FIFO: stages).
    /// All-or-nothing.
    pub fn write(&mut self, record: &R) -> Result<(), Error> {
        // Microcontrollers keep the loop over field indices: code per field costs flash.
        if R::VISITS_FIELDS && cfg!(not(target_os = "none")) {
            return self.write_visited(record);
        }
        self.write_record(
            R::DIRECT_SCALARS,
            |i| record.scalar_bits(i),
            |i| record.value(i),
        )
    }

    /// [`write`](Self::write) for a record that visits its fields: the same checks,
    /// bytes and errors as [`write_record`](Self::write_record), with each field's code
    /// specialised for its Rust type (a scalar's size and offset handling are constants).
    #[inline(always)]
    fn write_visited(&mut self, record: &R) -> Result<(), Error> {
        // Validate the strings and arrays first: nothing is written on error.
        let mut check = CheckVisited {
            fields: R::FIELDS,
            direct: R::DIRECT_SCALARS,
            next: 0,
        };
        record.visit(&mut check)?;
        if check.next != R::FIELDS.len() {
            return Err(Error::InvalidField {
                field: Name::EMPTY,
                reason: NOT_VISITED,
            });
        }
        self.open_staging(every_field(R::FIELDS.len()));
        let commit = self.geo.add(self.head, 1);
        let base = self.next_at;
        // Cannot fail: every value was checked above.
        record.visit(&mut StoreVisited {
            w: self,
            base,
            slot: self.region.sub(base, R::SNAPSHOT_LEN),
            commit,
        })?;
        if !self.geo.mode.is_fifo() {
            self.commit();
        }
        Ok(())
    }
}

/// A `Record::visit` that did not visit every field once, in order.
pub(crate) const NOT_VISITED: &str = "Record::visit did not visit every field once, in order";
/// A `Record::visit` that gave a field of another kind than `Record::FIELDS` declares.
pub(crate) const VISITED_WRONG: &str =
    "Record::visit gave a field out of order or of another kind than Record::FIELDS declares";

/// The mask of a record's `n` fields, all written.
#[inline(always)]
pub(crate) fn every_field(n: usize) -> u64 {
    if n == 0 {
        0
    } else {
        u64::MAX >> (64 - n)
    }
}

/// The check pass of a typed write, for field `f` with the bits `bits` its Rust type
/// gives (`Record::scalar_bits`): a scalar with bits needs no check; one without is a
/// broken `DIRECT_SCALARS` promise under `direct` (`WrongKind`) and otherwise checked
/// through `value()`, like a string or array.
#[inline(always)]
fn check_typed<'v>(
    f: &FieldDef,
    bits: Option<u64>,
    direct: bool,
    value: impl FnOnce() -> Value<'v>,
) -> Result<(), Error> {
    match (bits, f.kind) {
        (Some(_), Kind::Scalar(_)) => Ok(()),
        (None, Kind::Scalar(_)) if direct => Err(Error::WrongKind {
            field: f.name,
            expected: f.kind,
        }),
        _ if direct => value::check_sized(f, &value()).map(|_| ()),
        _ => value::check(f, &value()).map(|_| ()),
    }
}

/// The check pass of [`Writer::write_visited`] (as in `write_record` with direct
/// scalars). It also holds the record to its `VISITS_FIELDS` promise: every field once,
/// in order, with the kind `FIELDS` declares (for `record!` types these checks are
/// constants and vanish), so a broken promise is an error before anything is written.
struct CheckVisited {
    fields: &'static [FieldDef],
    /// `Record::DIRECT_SCALARS`.
    direct: bool,
    /// The index the next visited field must have.
    next: usize,
}

impl crate::record::FieldVisitor for CheckVisited {
    #[inline(always)]
    fn field<T: FieldType>(&mut self, i: usize, x: &T) -> Result<(), Error> {
        let f = match self.fields.get(i) {
            Some(f) if i == self.next && f.kind.same(&T::KIND) => f,
            f => {
                return Err(Error::InvalidField {
                    field: f.map_or(Name::EMPTY, |f| f.name),
                    reason: VISITED_WRONG,
                })
            }
        };
        self.next += 1;
        check_typed(f, x.scalar_bits(), self.direct, || x.to_value())
    }
}

/// The store pass of [`Writer::write_visited`].
struct StoreVisited<'a, 'r, R: Record> {
    w: &'a Writer<'r, R>,
    base: usize,
    /// The staging buffer's record (`R::SNAPSHOT_LEN` bytes at `base`).
    slot: Region<'r>,
    commit: u32,
}

impl<R: Record> crate::record::FieldVisitor for StoreVisited<'_, '_, R> {
    #[inline(always)]
    fn field<T: FieldType>(&mut self, i: usize, x: &T) -> Result<(), Error> {
        // A scalar with bits, in a record whose layout was computed at compile time (the
        // writer's layout is then that one): its offset is a constant, and so are the
        // bounds checks of its stores in `slot`. The guard repeats the check pass's (a
        // constant for a `record!` type), in case `visit` gave other fields this time.
        let declared = R::FIELDS.get(i).is_some_and(|f| f.kind.same(&T::KIND));
        if let (true, Kind::Scalar(d), Some(bits), Some(layout)) = (
            declared,
            T::KIND,
            x.scalar_bits(),
            const { Layout::precomputed(R::FIELDS) },
        ) {
            self.slot
                .store_scalar(layout.offset(i), stored_bits(d, bits), d.size() as usize);
            self.slot
                .store_pair(meta_offset(i), self.commit, INFO_WRITTEN);
            return Ok(());
        }
        // `R::FIELDS[i]` exists and has `T`'s kind: the check pass saw to it (and it is a
        // constant here, like the kind).
        if let Some(f) = R::FIELDS.get(i) {
            let (bits, direct) = (x.scalar_bits(), R::DIRECT_SCALARS);
            self.w
                .store_typed(self.base, i, f, bits, direct, || x.to_value(), self.commit);
        }
        Ok(())
    }
}

impl<'r, F: Fields> Writer<'r, Dynamic<F>> {
    /// Initialises `region` as a new, empty segment for `fields` and returns its writer.
    /// Everything previously in the region is discarded.
    pub fn create(region: Region<'r>, fields: F, mode: Mode) -> Result<Self, Error> {
        Self::create_with_layout(region, Layout::new(fields)?, mode)
    }

    /// Becomes the writer of an existing segment (a restarted writer, or a new process
    /// taking over from a dead one). The header must match `fields`; the last committed
    /// record is kept and the next commit follows it.
    ///
    /// A record the previous writer completed (its buffer's `seq` closed) but did not
    /// publish before it stopped is published now ("rolled forward"): a reader may
    /// already have returned it, so the record keeps its commit number and nobody can
    /// see two different records with one number. A buffer the previous writer left
    /// mid-write is rebuilt completely before it is published.
    ///
    /// Requirement: every store the previous writer made happens-before this call
    /// (docs/PROTOCOL.md §12.3). A writer judged dead that is in fact still running
    /// breaks the protocol.
    pub fn attach(region: Region<'r>, fields: F) -> Result<Self, Error> {
        Self::attach_with_layout(region, Layout::new(fields)?)
    }
}

impl<'r, S: Schema> Writer<'r, S> {
    pub(crate) fn create_with_layout(
        region: Region<'r>,
        layout: Layout<S::Fields>,
        mode: Mode,
    ) -> Result<Self, Error> {
        if !region.is_writable() {
            return Err(Error::ReadOnlyRegion);
        }
        let geo = header::initialize(&region, &layout, mode)?;
        Ok(Writer {
            region,
            layout,
            geo,
            head: 0,
            head_at: geo.slot(0),
            next_at: geo.slot(1),
            staging: None,
            full_copy: false,
            _s: PhantomData,
        })
    }

    pub(crate) fn attach_with_layout(
        region: Region<'r>,
        layout: Layout<S::Fields>,
    ) -> Result<Self, Error> {
        if !region.is_writable() {
            return Err(Error::ReadOnlyRegion);
        }
        let geo = header::validate(&region, &layout)?;
        // We are the only writer from here on. Acquire pairs with the previous writer's
        // Release store of head (W7); the caller guarantees that all of its stores
        // happen-before this point anyway (see `attach`).
        let mut head = region.load(H_HEAD, Ordering::Acquire);
        if head >= geo.modulus {
            return Err(Error::CorruptHeader {
                what: "head commit number",
            });
        }
        // Roll forward a record that was closed (W6) but not published (W7).
        let next = geo.add(head, 1);
        let slot = Slot::new(region, geo.slot(next));
        let seq = slot.seq_acquire();
        if seq & 1 == 0 && seq != 0 && slot.committed() && slot.commit(Ordering::Relaxed) == next {
            // W7 for the completed record. Pairs with the readers' Acquire load of head.
            region.store(H_HEAD, next, Ordering::Release);
            head = next;
        }
        Ok(Writer {
            region,
            layout,
            geo,
            head,
            head_at: geo.slot(head),
            next_at: geo.slot(geo.add(head, 1)),
            staging: None,
            full_copy: true,
            _s: PhantomData,
        })
    }

    /// The segment's layout.
    pub fn layout(&self) -> &Layout<S::Fields> {
        &self.layout
    }

    /// Single-slot or FIFO, and the slot count.
    pub fn mode(&self) -> Mode {
        self.geo.mode
    }

    /// Commit number of the newest published record (0 before the first commit).
    pub fn head(&self) -> u32 {
        self.head
    }

    /// True if a FIFO record is staged and not yet finalized.
    pub fn is_staging(&self) -> bool {
        self.staging.is_some()
    }

    /// Writes the fields given by index. Single-slot mode: commits at once. FIFO mode:
    /// stages into the pending record. All values are validated before anything is
    /// written: on error the segment is unchanged.
    pub fn write_fields(&mut self, values: &[(usize, Value<'_>)]) -> Result<(), Error> {
        self.write_checked(values, 0)
    }

    /// Like [`write_fields`](Self::write_fields), storing the fields whose bit is set in
    /// `truncated` with the TRUNCATED status, as values that were already cut to fit
    /// at their source. For mirrors and bridges that copy records between segments;
    /// each such value must fit its field (it is not cut again).
    pub fn write_fields_truncated(
        &mut self,
        values: &[(usize, Value<'_>)],
        truncated: u64,
    ) -> Result<(), Error> {
        self.write_checked(values, truncated)
    }

    /// Like [`write_fields`](Self::write_fields), with fields given by name.
    pub fn write_named(&mut self, values: &[(&str, Value<'_>)]) -> Result<(), Error> {
        let mut staged: heapless::Vec<(usize, Value<'_>), MAX_FIELDS> = heapless::Vec::new();
        for (name, v) in values {
            let i = self.layout.index_of(name).ok_or(Error::UnknownField {
                name: Name::lossy(name),
            })?;
            // More names than fields means one is repeated.
            staged.push((i, *v)).map_err(|_| Error::DuplicateField {
                field: Name::lossy(name),
            })?;
        }
        self.write_checked(&staged, 0)
    }

    /// Like [`write_fields`](Self::write_fields), from any iterator of `(index, value)`
    /// pairs. The iterator is walked once, into a fixed array of at most
    /// [`MAX_FIELDS`] entries, and the check and the stores both use that array.
    pub fn write_iter<'v, I>(&mut self, values: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = (usize, Value<'v>)>,
    {
        let mut staged: heapless::Vec<(usize, Value<'v>), MAX_FIELDS> = heapless::Vec::new();
        for (i, v) in values {
            let field = self.layout.fields().get(i).map_or(Name::EMPTY, |f| f.name);
            // More entries than fields means one is repeated (or out of range, which the
            // check reports first).
            staged
                .push((i, v))
                .map_err(|_| Error::DuplicateField { field })?;
        }
        self.write_checked(&staged, 0)
    }

    /// Checks every value, then stages (and in single-slot mode commits) them.
    fn write_checked(
        &mut self,
        values: &[(usize, Value<'_>)],
        truncated: u64,
    ) -> Result<(), Error> {
        let mut mask = 0u64;
        let fields = self.layout.fields();
        for (i, v) in values {
            let f = fields
                .get(*i)
                .ok_or(Error::UnknownField { name: Name::EMPTY })?;
            if mask & (1 << i) != 0 {
                return Err(Error::DuplicateField { field: f.name });
            }
            mask |= 1 << i;
            let plan = value::check(f, v)?;
            if truncated & (1 << i) != 0 && plan.info & INFO_TRUNCATED != 0 {
                // A mirrored value is stored as it came: it must not need cutting again.
                return Err(Error::InvalidField {
                    field: f.name,
                    reason: "a value written as already truncated must fit its field",
                });
            }
        }
        if truncated & !mask != 0 {
            return Err(Error::InvalidField {
                field: Name::EMPTY,
                reason: "truncated mask names a field that is not written",
            });
        }
        // Validation passed: from here on nothing can fail, and every store below uses
        // the values checked above (the same slice).
        self.open_staging(mask);
        let commit = self.geo.add(self.head, 1);
        let base = self.next_at;
        for (i, v) in values {
            let f = &self.layout.fields()[*i];
            // Cannot fail: checked above.
            if let Ok(mut plan) = value::check(f, v) {
                if truncated & (1 << i) != 0 {
                    plan.info |= INFO_TRUNCATED;
                }
                self.store_field(base, *i, f, v, plan, commit);
            }
        }
        if !self.geo.mode.is_fifo() {
            self.commit();
        }
        Ok(())
    }

    /// Writes all `n` fields of a typed record (`n` is the field count). `scalar(i)` gives
    /// field `i`'s stored bits when its Rust type makes every value valid for the field
    /// (stored at its constant offset without a `Value` or a check); otherwise `value(i)`
    /// goes through the checked path. With `direct` (`Record::DIRECT_SCALARS`, a
    /// constant here) every scalar has bits, so the scalar half of the checked path is
    /// never reached and not linked. Same bytes and errors as `write_fields` over all
    /// fields in order.
    #[inline(always)]
    fn write_record<'v>(
        &mut self,
        direct: bool,
        scalar: impl Fn(usize) -> Option<u64>,
        value: impl Fn(usize) -> Value<'v>,
    ) -> Result<(), Error> {
        let n = self.layout.len();
        // Validate the strings and arrays first: nothing is written on error.
        for i in 0..n {
            check_typed(&self.layout.fields()[i], scalar(i), direct, || value(i))?;
        }
        self.open_staging(every_field(n));
        let commit = self.geo.add(self.head, 1);
        let base = self.next_at;
        for i in 0..n {
            let f = &self.layout.fields()[i];
            self.store_typed(base, i, f, scalar(i), direct, || value(i), commit);
        }
        if !self.geo.mode.is_fifo() {
            self.commit();
        }
        Ok(())
    }

    /// FIFO mode: commits the pending record and returns its commit number; with nothing
    /// staged it commits a record that repeats the previous values (no field
    /// `modified`). Single-slot mode: every write has already committed itself, so this
    /// changes nothing and returns the newest commit number.
    pub fn finalize(&mut self) -> u32 {
        if self.geo.mode.is_fifo() {
            self.commit()
        } else {
            self.head
        }
    }

    /// W5–W7: closes the staging buffer and publishes it.
    fn commit(&mut self) -> u32 {
        if self.staging.is_none() {
            self.open_staging(0);
        }
        let odd = self.staging.take().unwrap_or(1);
        let commit = self.geo.add(self.head, 1);
        Slot::new(self.region, self.next_at).close_write(odd, commit);
        // W7. Pairs with the Acquire load of head R1 in `Reader` (a reader that sees the
        // new head finds the buffer's seq already even and its record complete).
        self.region.store(H_HEAD, commit, Ordering::Release);
        self.head = commit;
        self.head_at = self.next_at;
        // The buffer after the last one is the first: commit numbers wrap at a multiple
        // of the buffer count (docs/PROTOCOL.md §10).
        let next = self.next_at + self.geo.stride;
        self.next_at = if next == self.geo.slots_offset + self.geo.nbuf as usize * self.geo.stride {
            self.geo.slots_offset
        } else {
            next
        };
        debug_assert_eq!(self.next_at, self.geo.slot(self.geo.add(commit, 1)));
        commit
    }

    /// W1–W3 and the carry-over: opens the buffer for the next commit, then copies over
    /// every field whose value changed since the buffer last held a record, except those
    /// in `skip` (about to be written in full).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn open_staging(&mut self, skip: u64) {
        if self.staging.is_some() {
            return;
        }
        self.staging = Some(Slot::new(self.region, self.next_at).open_write());
        if self.full_copy || skip != every_field(self.layout.len()) {
            self.carry_over(skip);
        }
    }

    /// The copying part of [`open_staging`](Self::open_staging), for a buffer just
    /// opened: the whole record after a takeover (`full_copy`), otherwise every field
    /// not in `skip` whose value changed since the buffer last held a record.
    fn carry_over(&mut self, skip: u64) {
        let (dst, src) = (self.next_at, self.head_at);
        // The slot header words (commit, flags) are rewritten by `commit`.
        let region = self.region;
        if self.full_copy {
            let len = self.layout.slot_size() - SLOT_HEADER_LEN;
            region.copy_within(src + SLOT_HEADER_LEN, dst + SLOT_HEADER_LEN, len);
            self.full_copy = false;
            return;
        }
        for i in 0..self.layout.len() {
            if skip & (1 << i) != 0 {
                continue;
            }
            let m = meta_offset(i);
            let (sc, si) = (
                region.load(src + m, Ordering::Relaxed),
                region.load(src + m + 4, Ordering::Relaxed),
            );
            let (dc, di) = (
                region.load(dst + m, Ordering::Relaxed),
                region.load(dst + m + 4, Ordering::Relaxed),
            );
            if sc == dc && si == di {
                continue; // unchanged since this buffer last held a record
            }
            // Copy the 4-aligned span that covers the value. Bytes of neighbouring fields
            // in that span are either unchanged (equal in both buffers), carried over
            // too, or rewritten in full later in this staging.
            let off = self.layout.offset(i);
            let start = off & !3;
            let end = (off + self.layout.size(i) + 3) & !3;
            region.copy_within(src + start, dst + start, end - start);
            region.copy_within(src + m, dst + m, FIELD_META_LEN);
        }
    }

    /// The store pass of a typed write, for field `i` (`f`) with the bits `bits` its Rust
    /// type gives (`Record::scalar_bits`): a scalar with bits is stored from them, a
    /// scalar without them is skipped under `direct` (the check pass refused it) and
    /// otherwise stored through `value()`, like a string or array. Cannot fail: the values
    /// were checked by [`check_typed`], and `value()` gives the value that was checked.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn store_typed<'v>(
        &self,
        base: usize,
        i: usize,
        f: &FieldDef,
        bits: Option<u64>,
        direct: bool,
        value: impl FnOnce() -> Value<'v>,
        commit: u32,
    ) {
        match (bits, f.kind) {
            (Some(bits), Kind::Scalar(d)) => {
                let off = base + self.layout.offset(i);
                self.region
                    .store_scalar(off, stored_bits(d, bits), d.size() as usize);
                self.store_meta(base, i, INFO_WRITTEN, commit);
            }
            (None, Kind::Scalar(_)) if direct => {} // refused by the check pass
            _ => {
                let v = value();
                if direct {
                    if let Ok(plan) = value::check_sized(f, &v) {
                        self.store_sized(base, i, f, &v, plan, commit);
                    }
                } else if let Ok(plan) = value::check(f, &v) {
                    self.store_field(base, i, f, &v, plan, commit);
                }
            }
        }
    }

    fn store_field(
        &self,
        base: usize,
        i: usize,
        f: &FieldDef,
        v: &Value<'_>,
        plan: Plan,
        commit: u32,
    ) {
        match f.kind {
            Kind::Scalar(d) => {
                let (b, n) = value::scalar_bytes(d, v);
                self.region
                    .write_bytes(base + self.layout.offset(i), &b[..n]);
                self.store_meta(base, i, plan.info, commit);
            }
            _ => self.store_sized(base, i, f, v, plan, commit),
        }
    }

    /// [`store_field`](Self::store_field) for a string or array field: its bytes, then
    /// zeros down to where an earlier value of the field may have left bytes, then its
    /// metadata.
    ///
    /// The zeros stop at the larger of the field's stored lengths in the staging buffer
    /// and in `head`'s buffer: every byte past both is zero already, so a long field that
    /// usually holds little (a `str[32]` with a short text) leaves the rest of its cache
    /// lines untouched, and a reader finds them unchanged in its cache. Why the bytes
    /// there are zero (docs/PROTOCOL.md §8, "Zero tails": every closed buffer of this
    /// protocol's writers holds zeros past a field's stored length, and readers never
    /// rely on it):
    /// - a buffer starts zeroed, and every store of a value zeroes at least down to this
    ///   bound, so past its own info word's length the staging buffer holds zeros;
    /// - carry-over copies words from `head`'s buffer: a field's whole span when the
    ///   field is not being written, and, for a field that is, at most the words it
    ///   shares with a neighbour whose span is copied. Those bytes are zero past `head`'s
    ///   length;
    /// - the one buffer a writer can leave with bytes past its info word, the one it was
    ///   staging when it stopped, is copied whole from `head`'s buffer by the first
    ///   staging of the writer that takes over (`full_copy`).
    ///
    /// A byte that something outside the protocol stored past a field's length (another
    /// process scribbling on the segment) is therefore left until a longer value covers
    /// it; readers decode exactly the stored length and never look at it. A value that
    /// fills its field has nothing to zero and looks at neither length.
    fn store_sized(
        &self,
        base: usize,
        i: usize,
        f: &FieldDef,
        v: &Value<'_>,
        plan: Plan,
        commit: u32,
    ) {
        let region = &self.region;
        let off = base + self.layout.offset(i);
        let cap = self.layout.size(i);
        match (f.kind, v) {
            (Kind::Str { .. }, Value::Str(s)) => {
                region.write_bytes(off, &s.as_bytes()[..plan.used]);
            }
            (Kind::Array { dtype, .. }, Value::Array(a)) => {
                write_elements(region, off, dtype, &a.bytes[..plan.used]);
            }
            _ => debug_assert!(false, "value kinds are checked before writing"),
        }
        if plan.used < cap {
            let head = self.head_at;
            let stale = self
                .stored_len(base, i, f, cap)
                .max(self.stored_len(head, i, f, cap));
            region.zero(off + plan.used, stale.saturating_sub(plan.used));
        }
        self.store_meta(base, i, plan.info, commit);
    }

    /// Bytes of string or array field `i` in use in the buffer at `base` by its info
    /// word's length (at most `cap`).
    fn stored_len(&self, base: usize, i: usize, f: &FieldDef, cap: usize) -> usize {
        let info = self
            .region
            .load(base + meta_offset(i) + 4, Ordering::Relaxed);
        let len = (info & INFO_LEN_MASK) as usize;
        let used = match f.kind {
            Kind::Array { dims, .. } => match dims.as_slice().first() {
                Some(&rows) if rows > 0 => len.saturating_mul(cap / rows as usize),
                _ => cap,
            },
            _ => len,
        };
        used.min(cap)
    }

    /// Field `i`'s metadata in the buffer at `base`: written in `commit`, with `info`.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn store_meta(&self, base: usize, i: usize, info: u32, commit: u32) {
        self.region
            .store_pair(base + meta_offset(i), commit, info | INFO_WRITTEN);
    }

    /// Test hook for the loom models: W5–W6 of the pending record without W7, as a
    /// writer that stops between closing a buffer and publishing it leaves a segment.
    #[cfg(all(test, loom))]
    pub(crate) fn close_without_publishing(&mut self) {
        let odd = self.staging.take().unwrap_or_else(|| {
            Slot::new(self.region, self.geo.slot(self.geo.add(self.head, 1))).open_write()
        });
        let commit = self.geo.add(self.head, 1);
        Slot::new(self.region, self.geo.slot(commit)).close_write(odd, commit);
    }
}

/// The bits a writer stores for a scalar of dtype `d` that a typed record gives as
/// `bits`: bools as 0 or 1 (docs/PROTOCOL.md §8), whatever non-zero bits a hand-written
/// `Record` gives; other dtypes as they are.
#[inline(always)]
fn stored_bits(d: Dtype, bits: u64) -> u64 {
    if d == Dtype::Bool {
        (bits != 0) as u64
    } else {
        bits
    }
}

/// Stores native-order elements as little-endian; bool elements as 0 or 1 (any non-zero
/// byte is true), the only bytes a reader accepts (docs/PROTOCOL.md §8).
fn write_elements(region: &Region<'_>, off: usize, dtype: Dtype, bytes: &[u8]) {
    if dtype == Dtype::Bool {
        let mut tmp = [0u8; 64];
        for (k, chunk) in bytes.chunks(tmp.len()).enumerate() {
            for (t, &b) in tmp.iter_mut().zip(chunk) {
                *t = (b != 0) as u8;
            }
            region.write_bytes(off + k * tmp.len(), &tmp[..chunk.len()]);
        }
    } else if cfg!(target_endian = "little") || dtype.size() == 1 {
        region.write_bytes(off, bytes);
    } else {
        let n = dtype.size() as usize;
        let mut tmp = [0u8; 8];
        for (k, e) in bytes.chunks_exact(n).enumerate() {
            for (j, b) in e.iter().rev().enumerate() {
                tmp[j] = *b;
            }
            region.write_bytes(off + k * n, &tmp[..n]);
        }
    }
}

const _: () = assert!(MAX_FIELDS <= 64, "field masks are u64");
