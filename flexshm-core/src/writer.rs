//! The single writer: stages values into the spare buffer and publishes it.
//!
//! Protocol (docs/PROTOCOL.md §§11-13): the segment holds `slots + 1` buffers and the
//! record with commit number `c` lives in buffer `c % (slots + 1)`. The writer fills the
//! buffer after the newest one (never a buffer readers are directed to), guarded by that
//! buffer's seqlock counter, then publishes it by storing `head`.

use crate::error::Error;
use crate::header::{self, Geometry, Mode, H_HEAD};
use crate::layout::{
    meta_offset, Layout, FIELD_META_LEN, FLAG_COMMITTED, INFO_WRITTEN, MAX_FIELDS, SLOT_COMMIT,
    SLOT_FLAGS, SLOT_HEADER_LEN, SLOT_SEQ,
};
use crate::primitive::{fence, Ordering};
use crate::region::Region;
use crate::schema::{Dtype, FieldDef, Kind, Name};
use crate::value::{self, Plan, Value};

/// The one writer of a segment.
///
/// In single-slot mode every [`write`](Writer::write) commits a record; in FIFO mode
/// writes stage into the pending record and [`finalize`](Writer::finalize) commits it.
/// Fields a record does not write carry their previous value (and status) over, with
/// `modified` cleared.
pub struct Writer<'r, S> {
    region: Region<'r>,
    layout: Layout<S>,
    geo: Geometry,
    /// Commit number of the newest published record.
    head: u32,
    /// The odd seq value of the buffer being staged, if one is open.
    staging: Option<u32>,
    /// Copy every field into the next staging buffer (after attaching to a segment whose
    /// previous writer may have died mid-write).
    full_copy: bool,
}

impl<S> core::fmt::Debug for Writer<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer")
            .field("mode", &self.geo.mode)
            .field("head", &self.head)
            .field("staging", &self.staging.is_some())
            .finish()
    }
}

impl<'r, S: AsRef<[FieldDef]>> Writer<'r, S> {
    /// Initialises `region` as a new, empty segment for `fields` and returns its writer.
    /// Everything previously in the region is discarded.
    pub fn create(region: Region<'r>, fields: S, mode: Mode) -> Result<Self, Error> {
        Self::create_with_layout(region, Layout::new(fields)?, mode)
    }

    /// [`create`](Self::create) with the layout already built.
    pub(crate) fn create_with_layout(
        region: Region<'r>,
        layout: Layout<S>,
        mode: Mode,
    ) -> Result<Self, Error> {
        let geo = header::initialize(&region, &layout, mode)?;
        Ok(Writer {
            region,
            layout,
            geo,
            head: 0,
            staging: None,
            full_copy: false,
        })
    }

    /// Becomes the writer of an existing segment (a restarted writer, or a new process
    /// taking over from a dead one). The header must match `fields`; the last committed
    /// record is kept and the next commit follows it. A buffer the previous writer left
    /// mid-write is rebuilt completely before it is published.
    pub fn attach(region: Region<'r>, fields: S) -> Result<Self, Error> {
        Self::attach_with_layout(region, Layout::new(fields)?)
    }

    /// [`attach`](Self::attach) with the layout already built.
    pub(crate) fn attach_with_layout(region: Region<'r>, layout: Layout<S>) -> Result<Self, Error> {
        let geo = header::validate(&region, &layout)?;
        // We are the only writer from here on; the Acquire pairs with the previous
        // writer's Release store of head (in-process handover), harmless otherwise.
        let head = region.load(H_HEAD, Ordering::Acquire);
        Ok(Writer {
            region,
            layout,
            geo,
            head,
            staging: None,
            full_copy: true,
        })
    }

    /// The segment's layout.
    pub fn layout(&self) -> &Layout<S> {
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

    /// The region this writer writes.
    pub fn region(&self) -> Region<'r> {
        self.region
    }

    /// Writes fields given by index. Single-slot mode: commits at once. FIFO mode: stages
    /// into the pending record. All values are validated before anything is written: on
    /// error the segment is unchanged.
    pub fn write(&mut self, values: &[(usize, Value<'_>)]) -> Result<(), Error> {
        self.write_iter(values.iter().copied())
    }

    /// Like [`write`](Self::write), with fields given by name.
    pub fn write_named(&mut self, values: &[(&str, Value<'_>)]) -> Result<(), Error> {
        // Resolve every name first so an unknown name writes nothing.
        let mut idx = [0usize; MAX_FIELDS];
        for (k, (name, _)) in values.iter().enumerate() {
            let i = self.layout.index_of(name).ok_or(Error::UnknownField {
                name: Name::lossy(name),
            })?;
            // More names than fields means one is repeated.
            *idx.get_mut(k).ok_or(Error::DuplicateField {
                field: Name::lossy(name),
            })? = i;
        }
        self.write_iter(values.iter().enumerate().map(|(k, (_, v))| (idx[k], *v)))
    }

    /// Writes the `(index, value)` pairs of an iterator that can be walked twice (once to
    /// validate, once to write).
    pub fn write_iter<'v, I>(&mut self, values: I) -> Result<(), Error>
    where
        I: Iterator<Item = (usize, Value<'v>)> + Clone,
    {
        let mut mask = 0u64;
        let fields = self.layout.fields();
        for (i, v) in values.clone() {
            let f = fields
                .get(i)
                .ok_or(Error::UnknownField { name: Name::EMPTY })?;
            if mask & (1 << i) != 0 {
                return Err(Error::DuplicateField { field: f.name });
            }
            mask |= 1 << i;
            value::check(f, &v)?;
        }
        // Validation passed: from here on nothing can fail.
        self.open_staging(mask);
        let commit = self.geo.add(self.head, 1);
        let base = self.geo.slot(commit);
        for (i, v) in values {
            // By reference: copying the FieldDef here cost more than storing a scalar.
            let f = &self.layout.fields()[i];
            // A checked scalar's plan needs no second check; strings and arrays redo it
            // for their stored length. Cannot fail: checked above.
            let plan = match f.kind {
                Kind::Scalar(d) => Ok(Plan {
                    used: d.size() as usize,
                    info: INFO_WRITTEN,
                }),
                _ => value::check(f, &v),
            };
            if let Ok(plan) = plan {
                self.store_field(base, i, f, &v, plan, commit);
            }
        }
        if !self.geo.mode.is_fifo() {
            self.finalize();
        }
        Ok(())
    }

    /// Writes all `n` fields of a typed record (`n` is the field count). `scalar(i)` gives
    /// field `i`'s stored bits when its Rust type makes every value valid for the field
    /// (stored at its constant offset without a `Value` or a check); otherwise `value(i)`
    /// goes through the checked path. Same bytes and errors as [`write_iter`] over all
    /// fields in order.
    ///
    /// [`write_iter`]: Self::write_iter
    #[inline(always)]
    pub(crate) fn write_record<'v>(
        &mut self,
        scalar: impl Fn(usize) -> Option<u64>,
        value: impl Fn(usize) -> Value<'v>,
    ) -> Result<(), Error> {
        let n = self.layout.len();
        // Validate the strings and arrays first: nothing is written on error.
        for i in 0..n {
            let f = &self.layout.fields()[i];
            if !matches!((scalar(i), f.kind), (Some(_), Kind::Scalar(_))) {
                value::check(f, &value(i))?;
            }
        }
        let mask = if n == 0 { 0 } else { u64::MAX >> (64 - n) };
        self.open_staging(mask);
        let commit = self.geo.add(self.head, 1);
        let base = self.geo.slot(commit);
        for i in 0..n {
            let f = &self.layout.fields()[i];
            match (scalar(i), f.kind) {
                (Some(bits), Kind::Scalar(d)) => {
                    let region = &self.region;
                    region.store_scalar(base + self.layout.offset(i), bits, d.size() as usize);
                    let m = base + meta_offset(i);
                    region.store(m, commit, Ordering::Relaxed);
                    region.store(m + 4, INFO_WRITTEN, Ordering::Relaxed);
                }
                _ => {
                    let v = value(i);
                    // Cannot fail: checked above.
                    if let Ok(plan) = value::check(f, &v) {
                        self.store_field(base, i, f, &v, plan, commit);
                    }
                }
            }
        }
        if !self.geo.mode.is_fifo() {
            self.finalize();
        }
        Ok(())
    }

    /// Commits the pending record and returns its commit number. In FIFO mode a record
    /// with nothing staged repeats the previous values (all `modified` cleared). In
    /// single-slot mode writes commit themselves and this does the same as in FIFO mode.
    pub fn finalize(&mut self) -> u32 {
        if self.staging.is_none() {
            self.open_staging(0);
        }
        let odd = self.staging.take().unwrap_or(1);
        let commit = self.geo.add(self.head, 1);
        let base = self.geo.slot(commit);
        self.region
            .store(base + SLOT_COMMIT, commit, Ordering::Relaxed);
        self.region
            .store(base + SLOT_FLAGS, FLAG_COMMITTED, Ordering::Relaxed);
        // Close the seqlock: pairs with the Acquire load of seq in `Reader::copy_slot`
        // (a reader that sees this even value sees every store of the record).
        self.region
            .store(base + SLOT_SEQ, odd.wrapping_add(1), Ordering::Release);
        // Publish: pairs with the Acquire load of head in `Reader` (a reader that sees
        // the new head finds the buffer's seq already even and its record complete).
        self.region.store(H_HEAD, commit, Ordering::Release);
        self.head = commit;
        commit
    }

    /// Opens the buffer for the next commit: makes its seq odd, then carries over every
    /// field whose value changed since the buffer last held a record, except those in
    /// `skip` (about to be written in full).
    fn open_staging(&mut self, skip: u64) {
        if self.staging.is_some() {
            return;
        }
        let commit = self.geo.add(self.head, 1);
        let dst = self.geo.slot(commit);
        let src = self.geo.slot(self.head);
        let s = self.region.load(dst + SLOT_SEQ, Ordering::Relaxed);
        // Already odd: a previous writer died while filling this buffer; keep it odd.
        let odd = s | 1;
        self.region.store(dst + SLOT_SEQ, odd, Ordering::Relaxed);
        // Pairs with the Acquire fence in `Reader::copy_slot`: a reader whose copy saw
        // any store below re-reads seq and sees it odd (or newer), so it drops the copy.
        fence(Ordering::Release);
        self.staging = Some(odd);
        // The slot header words (commit, flags) are rewritten by finalize.
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

    fn store_field(
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
            (Kind::Scalar(d), v) => {
                let (b, n) = value::scalar_bytes(d, v);
                region.write_bytes(off, &b[..n]);
            }
            (Kind::Str { .. }, Value::Str(s)) => {
                region.write_bytes(off, &s.as_bytes()[..plan.used]);
                region.zero(off + plan.used, cap - plan.used);
            }
            (Kind::Array { dtype, .. }, Value::Array(a)) => {
                write_elements(region, off, dtype, &a.bytes[..plan.used]);
                region.zero(off + plan.used, cap - plan.used);
            }
            _ => debug_assert!(false, "value kinds are checked before writing"),
        }
        let m = base + meta_offset(i);
        region.store(m, commit, Ordering::Relaxed);
        region.store(m + 4, plan.info | INFO_WRITTEN, Ordering::Relaxed);
    }
}

/// Stores native-order elements as little-endian.
fn write_elements(region: &Region<'_>, off: usize, dtype: Dtype, bytes: &[u8]) {
    if cfg!(target_endian = "little") || dtype.size() == 1 {
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
