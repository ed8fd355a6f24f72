//! What the targets do with a region: open it every way there is, read it with every
//! option, attach a writer and read back what it wrote, and check every answer.

use flexshm_core::internal::{
    decode_field_entry, fnv1a64, read_schema, DESCRIPTOR_OFFSET, FIELD_ENTRY_LEN,
};
use flexshm_core::{
    Dtype, Dynamic, Error, FieldDef, FieldValue, Fields, Kind, Layout, Mode, ReadOptions, Reader,
    Record, Region, Snapshot, Value, Writer,
};

use crate::check::{self, CountingDelay};
use crate::input::{value_for, Input, Owned};
use crate::mem::Mem;
use crate::schemas::{typed_of, AllTypes, Scalars, Sensor, Tiny, Typed};

/// Header word offsets (docs/PROTOCOL.md §4).
pub const H_HASH_LO: usize = 16;
/// Header word offsets (docs/PROTOCOL.md §4).
pub const H_HEAD: usize = 48;

/// Copy attempts per non-blocking read: small, so that a buffer left odd costs little;
/// the input may ask for up to 16.
fn retries(inp: &mut Input<'_>) -> u32 {
    1 + (inp.u8() % 16) as u32
}

/// One read with options chosen by `op` (bit 0 latest, bit 1 reset_modified, bit 2
/// blocking with a timeout and poll interval from the input), checked. Returns the
/// commit read, if any.
pub fn read_op<F: Fields>(
    r: &mut Reader<'_, Dynamic<F>>,
    buf: &mut [u8],
    op: u8,
    inp: &mut Input<'_>,
) -> Option<u32> {
    let fifo = r.mode().is_fifo();
    let opts = ReadOptions {
        latest: op & 1 != 0,
        reset_modified: op & 2 != 0,
    };
    let lost_before = r.lost_total();
    let typed = typed_of(r.layout().fields());
    let blocking = op & 4 != 0;
    let mut delay = CountingDelay::default();
    // At most 64 polls: enough to cover every branch of the wait loop, cheap per input.
    let (timeout_us, poll_us) = (inp.u8() as u32 % 64 * 8, 8 + inp.u8() as u32 % 57);
    let res = if blocking {
        r.read_blocking(buf, opts, &mut delay, timeout_us, poll_us)
    } else {
        r.try_read(buf, opts)
    };
    if blocking {
        check::blocking_bounds(&delay, timeout_us, poll_us);
    }
    let commit = match res {
        Ok(snap) => {
            let fields = snap.layout().fields();
            let decoded = check::snapshot(&snap, fields);
            check::typed_agrees(typed, snap.bytes(), snap.info(), &decoded);
            if !fifo {
                assert_eq!(snap.lost(), 0);
            }
            Some(snap.commit())
        }
        Err(e) => {
            check::read_error(&e, fifo, blocking);
            None
        }
    };
    let lost_after = r.lost_total();
    assert!(lost_after >= lost_before);
    if commit.is_none() {
        assert_eq!(lost_after, lost_before, "a failed read counted losses");
    }
    let _ = r.has_new();
    let _ = r.head();
    commit
}

/// Up to `steps` reads with the input's choice of options.
fn reads<F: Fields>(r: &mut Reader<'_, Dynamic<F>>, inp: &mut Input<'_>, steps: usize) {
    r.set_retries(retries(inp));
    let mut buf = vec![0u8; r.snapshot_len()];
    for _ in 0..steps {
        if inp.is_empty() {
            break;
        }
        let op = inp.u8();
        read_op(r, &mut buf, op, inp);
    }
}

/// A typed reader on the region, if the schema has a typed twin: it opens exactly when
/// the run-time-schema reader for the same fields opens, and reads without panicking.
fn typed_reader(region: Region<'_>, fields: &[FieldDef], expect_ok: bool, inp: &mut Input<'_>) {
    match typed_of(fields) {
        Typed::Sensor => typed_reads::<Sensor>(region, expect_ok, inp),
        Typed::AllTypes => typed_reads::<AllTypes>(region, expect_ok, inp),
        Typed::Tiny => typed_reads::<Tiny>(region, expect_ok, inp),
        Typed::Scalars => typed_reads::<Scalars>(region, expect_ok, inp),
        Typed::None => {}
    }
}

/// Single-slot segments of a schema with a typed twin: a typed reader's read (the path
/// that checks the metadata against the record's constant fields, first with one
/// comparison per field for a record of scalars written whole, and decodes at constant
/// offsets) reports what a run-time-schema read of the same segment reports: the same
/// bytes, commit and statuses and the same values, or the same error. Both readers are
/// opened for the comparison, so the caller's readers keep their state.
pub fn typed_read_agrees(region: Region<'_>, fields: &[FieldDef]) {
    match typed_of(fields) {
        Typed::Sensor => typed_single::<Sensor>(region, fields),
        Typed::AllTypes => typed_single::<AllTypes>(region, fields),
        Typed::Tiny => typed_single::<Tiny>(region, fields),
        Typed::Scalars => typed_single::<Scalars>(region, fields),
        Typed::None => {}
    }
}

fn typed_single<R: Record + Default + core::fmt::Debug>(region: Region<'_>, fields: &[FieldDef]) {
    let (Ok(mut t), Ok(mut d)) = (
        Reader::<R>::open(region),
        Reader::<Dynamic<&[FieldDef]>>::open_with(region, fields),
    ) else {
        // Whether both open alike is `segment`'s check.
        return;
    };
    if d.mode().is_fifo() {
        return;
    }
    let mut tbuf = vec![0u8; R::SNAPSHOT_LEN];
    let mut dbuf = vec![0u8; d.snapshot_len()];
    let typed = t.try_read(&mut tbuf, ReadOptions::default());
    let dynamic = d.try_read(&mut dbuf, ReadOptions::default());
    match (typed, dynamic) {
        (Ok(ts), Ok(ds)) => {
            assert_eq!(
                ts.bytes(),
                ds.bytes(),
                "the two reads copied different bytes"
            );
            assert_eq!(
                ts.info(),
                ds.info(),
                "typed and run-time-schema reads of one record report different statuses"
            );
            // The typed reader's decode (constant offsets) against a decode of the same
            // bytes through a plain snapshot, and both against the run-time schema.
            let mut own = R::default();
            let own_res = ts.decode(&mut own);
            let layout = Layout::new(R::FIELDS).expect("typed schema");
            let mut plain = R::default();
            let plain_res = Snapshot::<R>::new(ts.bytes(), &layout, ts.info()).decode(&mut plain);
            assert_eq!(
                own_res, plain_res,
                "the typed reader's decode and a snapshot's differ"
            );
            for k in 0..R::FIELDS.len() {
                let (a, b) = (own.value(k), plain.value(k));
                // Bit for bit: a NaN read twice is the same NaN.
                let equal = match (&a, &b) {
                    (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
                    _ => a == b,
                };
                assert!(
                    equal,
                    "field {k}: the typed reader decodes {a:?}, a snapshot {b:?}"
                );
            }
            let decoded = check::snapshot(&ds, fields);
            check::typed_agrees(typed_of(fields), ds.bytes(), ds.info(), &decoded);
        }
        (Err(te), Err(de)) => {
            assert_eq!(te, de, "typed and run-time-schema reads fail differently")
        }
        (t, d) => panic!(
            "typed and run-time-schema reads of one segment disagree: typed {:?}, run-time {:?}",
            t.map(|s| s.info()),
            d.map(|s| s.info())
        ),
    }
}

fn typed_reads<R: Record + Default>(region: Region<'_>, expect_ok: bool, inp: &mut Input<'_>) {
    match Reader::<R>::open(region) {
        Ok(mut r) => {
            assert!(
                expect_ok,
                "the typed reader opens a segment the dynamic one refuses"
            );
            r.set_retries(retries(inp));
            let mut buf = vec![0u8; R::SNAPSHOT_LEN];
            let op = inp.u8();
            let opts = ReadOptions {
                latest: op & 1 != 0,
                reset_modified: op & 2 != 0,
            };
            let fifo = r.mode().is_fifo();
            match r.try_read(&mut buf, opts) {
                Ok(snap) => {
                    let mut out = R::default();
                    if let Err(e) = snap.decode(&mut out) {
                        assert!(matches!(e, Error::CorruptRecord { .. }), "{e:?}");
                    }
                }
                Err(e) => check::read_error(&e, fifo, false),
            }
        }
        Err(e) => {
            assert!(
                !expect_ok,
                "the typed reader refuses a segment the dynamic one opens: {e:?}"
            );
            check::open_error(&e);
        }
    }
}

/// Every way of opening the region, with the consistency checks between them, then reads
/// and (if the input asks) a writer that attaches and a read-back of what it wrote.
/// `expected` is the schema the caller believes the segment has.
pub fn segment(region: Region<'_>, expected: &[FieldDef], inp: &mut Input<'_>) {
    // The schema as the header describes it.
    let described = read_schema(&region);
    if let Err(e) = &described {
        check::open_error(e);
    }
    // A reader that takes the schema from the header opens exactly when read_schema
    // accepts the header, and with the same fields and mode.
    match (Reader::<Dynamic>::open(region), &described) {
        (Ok(mut r), Ok((fields, mode))) => {
            assert_eq!(r.layout().fields(), &fields[..]);
            assert_eq!(r.mode(), *mode);
            reads(&mut r, inp, 4);
        }
        (Err(e), Err(d)) => assert_eq!(&e, d, "read_schema and Reader::open disagree"),
        (Ok(_), Err(d)) => {
            panic!("Reader::<Dynamic>::open accepts what read_schema refuses: {d:?}")
        }
        (Err(e), Ok(_)) => {
            panic!("Reader::<Dynamic>::open refuses what read_schema accepts: {e:?}")
        }
    }
    // A reader with the caller's schema opens exactly when the header describes that
    // schema.
    let matches = matches!(&described, Ok((f, _)) if &f[..] == expected);
    match Reader::<Dynamic<&[FieldDef]>>::open_with(region, expected) {
        Ok(mut r) => {
            assert!(
                matches,
                "open_with accepts a segment of another schema: {described:?}"
            );
            reads(&mut r, inp, 6);
        }
        Err(e) => {
            assert!(
                !matches,
                "open_with refuses a segment of its own schema: {e:?}"
            );
            check::open_error(&e);
        }
    }
    typed_reader(region, expected, matches, inp);
    if inp.u8() & 1 != 0 {
        attach_roundtrip(region, expected, inp);
    }
}

/// Attaches a writer with `fields`; if that works, writes every field with values from
/// the input, commits, and checks that a new reader reads back exactly those values, with
/// every field written and modified, whatever the rest of the segment holds.
pub fn attach_roundtrip(region: Region<'_>, fields: &[FieldDef], inp: &mut Input<'_>) {
    let mut w = match Writer::<Dynamic<&[FieldDef]>>::attach(region, fields) {
        Ok(w) => w,
        Err(e) => {
            check::open_error(&e);
            return;
        }
    };
    let values: Vec<Owned> = fields.iter().map(|f| value_for(inp, f)).collect();
    let refs: Vec<(usize, Value<'_>)> = values.iter().map(Owned::value).enumerate().collect();
    if let Err(e) = w.write_fields(&refs) {
        panic!("a valid write was rejected: {e:?} ({values:?})");
    }
    let commit = w.finalize();
    assert_eq!(commit, w.head());
    let mut r = Reader::<Dynamic<&[FieldDef]>>::open_with(region, fields)
        .expect("a reader opens the segment a writer just attached to");
    let mut buf = vec![0u8; r.snapshot_len()];
    let opts = ReadOptions {
        latest: true,
        reset_modified: inp.u8() & 1 != 0,
    };
    let snap = r
        .try_read(&mut buf, opts)
        .unwrap_or_else(|e| panic!("the record just written does not read back: {e:?}"));
    assert_eq!(snap.commit(), commit);
    for (i, (f, v)) in fields.iter().zip(&values).enumerate() {
        let st = snap.status(i);
        let got = snap
            .get(i)
            .unwrap_or_else(|e| panic!("field {i} just written does not decode: {e:?}"));
        let (want_truncated, ok) = expected_read(f, v, &got);
        assert!(st.written && st.modified, "field {i}: {st:?}");
        assert_eq!(st.truncated, want_truncated, "field {i}: truncated");
        assert!(ok, "field {i}: wrote {v:?}, read {got:?}");
    }
}

/// Whether the writer cuts value `v` for field `f`, and whether `got` is what it stores.
fn expected_read(f: &FieldDef, v: &Owned, got: &FieldValue<'_>) -> (bool, bool) {
    match (f.kind, v, got) {
        (Kind::Str { chars }, Owned::Str(s), FieldValue::Str(g)) => {
            let kept: String = s.chars().take(chars as usize).collect();
            (s.chars().count() > chars as usize, *g == kept)
        }
        (
            Kind::Array { dims, dtype },
            Owned::Array { shape, bytes, .. },
            FieldValue::Array { .. },
        ) => {
            let cap = dims.rows() as usize;
            let rows = shape[0].min(cap);
            let row_bytes = bytes.len().checked_div(shape[0]).unwrap_or(0);
            let mut kept = bytes[..rows * row_bytes].to_vec();
            if dtype == Dtype::Bool {
                // Any non-zero element is stored as true (docs/PROTOCOL.md §8).
                kept.iter_mut().for_each(|b| *b = (*b != 0) as u8);
            }
            let stored = Value::Array(flexshm_core::ArrayRef::new(dtype, &[rows], &kept).unwrap());
            (shape[0] > cap, check::same(&stored, got))
        }
        (Kind::Scalar(_), v, g) => (false, check::same(&v.value(), g)),
        _ => (false, false),
    }
}

/// Makes the header agree with whatever its descriptor says, as a buggy or hostile
/// writer would leave it: layout hash, descriptor length, offsets and sizes recomputed.
/// Validation then passes the header checks and reaches the buffers with a schema that
/// may not match the bytes after it.
pub fn reseal(mem: &Mem) {
    let count = mem.u32_at(DESCRIPTOR_OFFSET) as usize;
    let slots = mem.u32_at(12);
    let desc_end = DESCRIPTOR_OFFSET + 4 + FIELD_ENTRY_LEN * count;
    if count > 64 || desc_end > mem.len() || slots == 0 || slots > 1 << 24 {
        return;
    }
    let bytes = mem.bytes();
    let desc = &bytes[DESCRIPTOR_OFFSET..desc_end];
    let mut fields = Vec::with_capacity(count);
    for e in desc[4..].chunks_exact(FIELD_ENTRY_LEN) {
        match decode_field_entry(e.try_into().unwrap()) {
            Ok(f) => fields.push(f),
            Err(_) => return,
        }
    }
    let Ok(l) = Layout::new(fields.as_slice()) else {
        return;
    };
    let Ok(total) = l.segment_size(slots) else {
        return;
    };
    let hash = fnv1a64(desc);
    mem.set_u32(H_HASH_LO, hash as u32);
    mem.set_u32(H_HASH_LO + 4, (hash >> 32) as u32);
    mem.set_u32(24, desc.len() as u32);
    mem.set_u32(28, l.slots_offset() as u32);
    mem.set_u32(32, l.slot_size() as u32);
    mem.set_u32(36, l.slot_stride() as u32);
    mem.set_u32(40, total as u32);
}

/// A fresh segment of `fields` in `mode`, in memory of exactly its size, after `records`
/// commits of input-chosen values to input-chosen fields (FIFO: one to three writes per
/// record; single-slot: one write per record).
pub fn build(fields: &'static [FieldDef], mode: Mode, records: u8, inp: &mut Input<'_>) -> Mem {
    let layout = Layout::new(fields).expect("table schema");
    let mem = Mem::new(layout.segment_size(mode.slots()).expect("small segment"));
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), fields, mode).expect("create");
    for _ in 0..records {
        let writes = if mode.is_fifo() { inp.u8() % 4 } else { 1 };
        for _ in 0..writes {
            let mask = inp.u64();
            let values: Vec<(usize, Owned)> = fields
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(i, f)| (i, value_for(inp, f)))
                .collect();
            let refs: Vec<(usize, Value<'_>)> =
                values.iter().map(|(i, v)| (*i, v.value())).collect();
            if let Err(e) = w.write_fields(&refs) {
                panic!("a valid write was rejected: {e:?} ({values:?})");
            }
        }
        w.finalize();
    }
    mem
}

/// The single-slot or FIFO mode an input byte selects: 0 is single-slot, `k` a FIFO ring
/// of `1 + (k - 1) % max_slots` slots.
pub fn mode(b: u8, max_slots: u8) -> Mode {
    if b == 0 {
        Mode::Single
    } else {
        Mode::Fifo {
            slots: 1 + (b - 1) as u32 % max_slots as u32,
        }
    }
}
