//! Tests of the publisher and mirror state machines and loops, without shared memory or a
//! network: a model source, a model sink that applies flexshm's write semantics, and
//! in-memory outlet and inlet.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flexshm_core::{Dtype, FieldDef, FieldStatus, FieldValue, Kind, Mode};

use crate::error::BridgeError;
use crate::mirror::{
    run_mirror, InMessage, Inlet, Mirror, MirrorLoopOptions, MirrorOptions, MirrorStats, Outcome,
    SegmentSink,
};
use crate::publish::{
    commit_modulus, run_publisher, CommitUnwrapper, Outlet, PublishOptions, Publisher,
    SegmentSource, SourceRecord,
};
use crate::wire::{SchemaMsg, WireError, WireField};

/// An owned field value.
#[derive(Debug, Clone, PartialEq)]
enum Ov {
    F(u64),
    I(i64),
    S(String),
    A(Dtype, usize, Vec<u8>),
}

impl Ov {
    fn borrow(&self) -> FieldValue<'_> {
        match self {
            Ov::F(b) => FieldValue::Float(f64::from_bits(*b)),
            Ov::I(i) => FieldValue::Int(*i),
            Ov::S(s) => FieldValue::Str(s),
            Ov::A(d, r, b) => FieldValue::Array {
                dtype: *d,
                rows: *r,
                bytes: b,
            },
        }
    }

    fn own(v: FieldValue<'_>) -> Ov {
        match v {
            FieldValue::Float(x) => Ov::F(x.to_bits()),
            FieldValue::Int(i) => Ov::I(i),
            FieldValue::Str(s) => Ov::S(s.to_string()),
            FieldValue::Array { dtype, rows, bytes } => Ov::A(dtype, rows, bytes.to_vec()),
            other => panic!("not used in these tests: {other:?}"),
        }
    }
}

fn fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
        FieldDef::new("count", Kind::Scalar(Dtype::I32)),
        FieldDef::new("status_msg", Kind::str(4)),
        FieldDef::new("samples", Kind::array(Dtype::U8, &[3, 2])),
    ]
}

/// One committed record as a reader would see it, with the commit each field was last
/// written in.
#[derive(Debug, Clone)]
struct Committed {
    commit: u32,
    values: Vec<Option<Ov>>,
    truncated: Vec<bool>,
    written_at: Vec<u32>,
}

/// Models a flexshm writer: writes of some fields commit a record.
struct WriterModel {
    state: Committed,
}

impl WriterModel {
    fn new(n: usize) -> Self {
        WriterModel {
            state: Committed {
                commit: 0,
                values: vec![None; n],
                truncated: vec![false; n],
                written_at: vec![0; n],
            },
        }
    }

    fn commit(&mut self, writes: &[(usize, Ov, bool)]) -> Committed {
        self.state.commit += 1;
        for (i, v, t) in writes {
            self.state.values[*i] = Some(v.clone());
            self.state.truncated[*i] = *t;
            self.state.written_at[*i] = self.state.commit;
        }
        self.state.clone()
    }
}

/// Value `k` of a recognisable sequence for field `i`.
fn value(i: usize, k: u32) -> Ov {
    match i {
        0 => Ov::F((k as f64 * 0.5).to_bits()),
        1 => Ov::I(k as i64 * 3 - 100),
        2 => Ov::S(format!("{}", k % 10000)),
        _ => {
            let rows = (k % 4) as usize;
            Ov::A(
                Dtype::U8,
                rows,
                (0..rows * 2).map(|b| (b as u32 + k) as u8).collect(),
            )
        }
    }
}

/// The writes of commit `k`: a varying subset of the fields.
fn writes(k: u32) -> Vec<(usize, Ov, bool)> {
    (0..4)
        .filter(|i| k == 1 || !(k + *i as u32).is_multiple_of(3))
        .map(|i| (i, value(i, k), false))
        .collect()
}

/// A source that returns the records given, with `modified` relative to the previous
/// record it returned.
struct ModelSource {
    mode: Mode,
    source_id: u64,
    queue: VecDeque<Committed>,
    last: u32,
    replaced_after_empty: bool,
}

impl ModelSource {
    fn new(mode: Mode, records: Vec<Committed>) -> Self {
        ModelSource {
            mode,
            source_id: 77,
            queue: records.into(),
            last: 0,
            replaced_after_empty: false,
        }
    }
}

fn source_fields(c: &Committed, since: u32) -> Vec<WireField<'_>> {
    (0..c.values.len())
        .map(|i| match &c.values[i] {
            None => WireField::UNWRITTEN,
            Some(v) => WireField {
                status: FieldStatus {
                    written: true,
                    truncated: c.truncated[i],
                    modified: c.written_at[i] > since,
                },
                value: Some(v.borrow()),
            },
        })
        .collect()
}

impl SegmentSource for ModelSource {
    fn name(&self) -> &str {
        "model"
    }
    fn fields(&self) -> &[FieldDef] {
        static F: std::sync::OnceLock<Vec<FieldDef>> = std::sync::OnceLock::new();
        F.get_or_init(fields)
    }
    fn mode(&self) -> Mode {
        self.mode
    }
    fn source_id(&self) -> u64 {
        self.source_id
    }
    fn next_record(&mut self, _: Duration) -> Result<Option<SourceRecord<'_>>, BridgeError> {
        let Some(c) = self.queue.pop_front() else {
            return Ok(None);
        };
        let since = std::mem::replace(&mut self.last, c.commit);
        // Keep the record alive for the borrow: put it back at the front and borrow it.
        self.queue.push_front(c);
        let c = &self.queue[0];
        let rec = SourceRecord {
            commit: c.commit,
            lost: 0,
            fields: source_fields(c, since),
            more: self.queue.len() > 1,
        };
        // Safe to drop from the queue on the next call: mark it consumed.
        Ok(Some(rec))
    }
    fn is_replaced(&self) -> bool {
        self.replaced_after_empty && self.queue.is_empty()
    }
}

/// Pops the record borrowed by the previous `next_record` (the model keeps it at the
/// front until then).
fn consume(src: &mut ModelSource) {
    src.queue.pop_front();
}

/// A local record as a reader of the mirror segment sees it.
#[derive(Debug, Clone, PartialEq)]
struct LocalRecord {
    values: Vec<Option<Ov>>,
    status: Vec<FieldStatus>,
}

/// Applies flexshm's write semantics to an in-memory segment.
#[derive(Debug, Default)]
struct ModelSink {
    prepared: Vec<(Vec<FieldDef>, Mode)>,
    existing_written: u64,
    values: Vec<Option<Ov>>,
    truncated: Vec<bool>,
    records: Vec<LocalRecord>,
    refuse: Option<String>,
}

impl SegmentSink for ModelSink {
    fn name(&self) -> &str {
        "model-sink"
    }
    fn prepare(&mut self, fields: &[FieldDef], mode: Mode) -> Result<u64, BridgeError> {
        if let Some(detail) = &self.refuse {
            return Err(BridgeError::Mismatch {
                name: "model-sink".into(),
                detail: detail.clone(),
            });
        }
        self.prepared.push((fields.to_vec(), mode));
        self.values = vec![None; fields.len()];
        self.truncated = vec![false; fields.len()];
        for i in 0..fields.len() {
            if self.existing_written & (1 << i) != 0 {
                self.values[i] = Some(Ov::I(-1));
            }
        }
        Ok(self.existing_written)
    }
    fn write_record(&mut self, fields: &[WireField<'_>], which: u64) -> Result<u32, BridgeError> {
        let mut status = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            let sel = which & (1 << i) != 0;
            if sel {
                self.values[i] = Some(Ov::own(f.value.expect("selected fields have values")));
                self.truncated[i] = f.status.truncated;
            }
            status.push(FieldStatus {
                written: self.values[i].is_some(),
                truncated: self.truncated[i],
                modified: sel,
            });
        }
        self.records.push(LocalRecord {
            values: self.values.clone(),
            status,
        });
        Ok(self.records.len() as u32)
    }
}

/// What a mirror reader should see for a source record read with `modified` relative to
/// `since`.
fn expected(c: &Committed, since: u32, resync: bool) -> LocalRecord {
    LocalRecord {
        values: c.values.clone(),
        status: (0..c.values.len())
            .map(|i| {
                let written = c.values[i].is_some();
                FieldStatus {
                    written,
                    truncated: c.truncated[i],
                    modified: written && (resync || c.written_at[i] > since),
                }
            })
            .collect(),
    }
}

/// Commits 1..=n of the model writer.
fn history(n: u32) -> Vec<Committed> {
    let mut w = WriterModel::new(4);
    (1..=n).map(|k| w.commit(&writes(k))).collect()
}

/// Encodes each of `records` through one publisher session.
fn publish_all(src: &mut ModelSource, session: u64) -> (SchemaMsg, Vec<Vec<u8>>) {
    let mut p = Publisher::with_session(src, session).unwrap();
    let schema = p.schema().clone();
    let mut msgs = Vec::new();
    loop {
        let mut out = Vec::new();
        match src.next_record(Duration::ZERO).unwrap() {
            Some(rec) => {
                p.encode(&rec, &mut out).unwrap();
            }
            None => break,
        }
        consume(src);
        msgs.push(out);
    }
    (schema, msgs)
}

fn feed(m: &mut Mirror<ModelSink>, schema: &SchemaMsg, msg: &[u8]) -> Outcome {
    match m.handle(msg).unwrap() {
        Outcome::NeedSchema { session } => {
            assert_eq!(session, schema.session);
            m.learn_schema(&schema.encode()).unwrap();
            m.handle(msg).unwrap()
        }
        o => o,
    }
}

#[test]
fn fifo_records_arrive_with_values_and_statuses() {
    let recs = history(50);
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs.clone());
    let (schema, msgs) = publish_all(&mut src, 1);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for (k, msg) in msgs.iter().enumerate() {
        assert_eq!(
            feed(&mut m, &schema, msg),
            Outcome::Written {
                local_commit: k as u32 + 1
            }
        );
    }
    let sink = m.sink();
    assert_eq!(sink.prepared, vec![(fields(), Mode::Fifo { slots: 8 })]);
    for (k, c) in recs.iter().enumerate() {
        let since = if k == 0 { 0 } else { recs[k - 1].commit };
        assert_eq!(sink.records[k], expected(c, since, k == 0), "record {k}");
    }
    let s = m.stats();
    assert_eq!(
        (s.received, s.written, s.lost, s.skipped, s.sessions),
        (50, 50, 0, 0, 1)
    );
}

#[test]
fn truncated_and_unwritten_survive() {
    let mut w = WriterModel::new(4);
    let recs = vec![
        w.commit(&[(2, Ov::S("abcd".into()), true)]),
        w.commit(&[(3, Ov::A(Dtype::U8, 3, vec![1, 2, 3, 4, 5, 6]), true)]),
        w.commit(&[(2, Ov::S("ok".into()), false)]),
    ];
    let mut src = ModelSource::new(Mode::Single, recs.clone());
    let (schema, msgs) = publish_all(&mut src, 2);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in &msgs {
        assert!(matches!(
            feed(&mut m, &schema, msg),
            Outcome::Written { .. }
        ));
    }
    let r = &m.sink().records;
    assert!(r[0].status[0].unwritten() && r[0].status[1].unwritten());
    assert!(r[0].status[2].truncated && r[0].status[2].written);
    assert!(r[1].status[3].truncated && r[1].status[2].truncated);
    assert!(!r[1].status[2].modified);
    assert!(r[2].status[2].valid() && r[2].status[3].truncated);
    assert!(r[2].status[0].unwritten());
    assert_eq!(m.sink().prepared[0].1, Mode::Single);
}

#[test]
fn network_loss_is_counted_and_resyncs() {
    let recs = history(10);
    let mut src = ModelSource::new(Mode::Fifo { slots: 4 }, recs.clone());
    let (schema, msgs) = publish_all(&mut src, 3);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for (k, msg) in msgs.iter().enumerate() {
        if k == 3 || k == 4 || k == 7 {
            continue;
        }
        feed(&mut m, &schema, msg);
    }
    let s = m.stats();
    assert_eq!((s.lost, s.skipped, s.written), (3, 0, 7));
    // The record after a gap carries every written field, marked modified.
    let after_gap = &m.sink().records[3];
    assert_eq!(*after_gap, expected(&recs[5], recs[4].commit, true));
    // ... and the one after it is incremental again.
    assert_eq!(
        m.sink().records[4],
        expected(&recs[6], recs[5].commit, false)
    );
}

#[test]
fn single_slot_skips_are_not_loss() {
    let recs = history(20);
    let picked: Vec<Committed> = [0usize, 4, 5, 12, 19]
        .iter()
        .map(|&i| recs[i].clone())
        .collect();
    let mut src = ModelSource::new(Mode::Single, picked.clone());
    let (schema, msgs) = publish_all(&mut src, 4);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in &msgs {
        feed(&mut m, &schema, msg);
    }
    let s = m.stats();
    assert_eq!((s.lost, s.skipped, s.written), (0, 3 + 6 + 6, 5));
    // `modified` covers every write since the previous published record.
    for k in 1..picked.len() {
        assert_eq!(
            m.sink().records[k],
            expected(&picked[k], picked[k - 1].commit, false)
        );
    }
}

#[test]
fn publisher_restart_on_the_same_segment_skips_replays_and_counts_the_gap() {
    let recs = history(30);
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs[..10].to_vec());
    let (s1, m1) = publish_all(&mut src, 10);
    // The restarted publisher starts at the oldest record in its ring (commit 6) and
    // the mirror missed commits 11 and 12 while it was down.
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs[5..10].to_vec());
    src.queue.extend(recs[12..20].iter().cloned());
    let (s2, m2) = publish_all(&mut src, 11);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in &m1 {
        feed(&mut m, &s1, msg);
    }
    for msg in &m2 {
        feed(&mut m, &s2, msg);
    }
    let s = m.stats();
    assert_eq!(s.sessions, 2);
    assert_eq!(s.replayed, 5);
    assert_eq!(s.lost, 0);
    assert_eq!(
        s.skipped, 2,
        "commits 11 and 12, seen as a gap within the new session"
    );
    assert_eq!(s.written, 18);
    // Commit 13: resync after the dropped replays.
    assert_eq!(m.sink().records[10], expected(&recs[12], 0, true));
    // Late messages of the old session are stale.
    assert_eq!(m.handle(&m1[9]).unwrap(), Outcome::Dropped);
    assert_eq!(m.stats().stale, 1);
}

#[test]
fn publisher_restart_after_a_gap_counts_lost_restart() {
    let recs = history(30);
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs[..10].to_vec());
    let (s1, m1) = publish_all(&mut src, 20);
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs[14..20].to_vec());
    let (s2, m2) = publish_all(&mut src, 21);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in m1.iter().chain(&m2) {
        let s = if msg[8..16] == 20u64.to_le_bytes() {
            &s1
        } else {
            &s2
        };
        feed(&mut m, s, msg);
    }
    assert_eq!(m.stats().lost_restart, 4);
    assert_eq!(m.stats().written, 16);
}

#[test]
fn a_new_segment_starts_over_without_replay_drops() {
    let recs = history(10);
    let mut src = ModelSource::new(Mode::Single, recs.clone());
    let (s1, m1) = publish_all(&mut src, 30);
    let mut src = ModelSource::new(Mode::Single, recs[..3].to_vec());
    src.source_id = 78; // recreated: commit numbers start over
    let (s2, m2) = publish_all(&mut src, 31);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in &m1 {
        feed(&mut m, &s1, msg);
    }
    for msg in &m2 {
        feed(&mut m, &s2, msg);
    }
    let s = m.stats();
    assert_eq!(
        (s.sessions, s.replayed, s.written, s.lost_restart),
        (2, 0, 13, 0)
    );
}

#[test]
fn duplicates_garbage_and_unknown_schema_write_nothing() {
    let recs = history(3);
    let mut src = ModelSource::new(Mode::Single, recs);
    let (schema, msgs) = publish_all(&mut src, 40);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    // Garbage before anything: rejected, the sink is never prepared.
    for junk in [&b""[..], b"hello", b"FXZB\x01\x02\x00\x00", &[0xff; 100]] {
        assert_eq!(m.handle(junk).unwrap(), Outcome::Dropped);
    }
    assert!(m.sink().prepared.is_empty());
    // A record with a corrupted body, schema known: rejected.
    m.learn_schema(&schema.encode()).unwrap();
    let mut bad = msgs[0].clone();
    let last = bad.len() - 1;
    bad.truncate(last);
    assert_eq!(m.handle(&bad).unwrap(), Outcome::Dropped);
    assert!(m.sink().records.is_empty());
    feed(&mut m, &schema, &msgs[0]);
    assert_eq!(m.handle(&msgs[0]).unwrap(), Outcome::Dropped);
    let s = m.stats();
    assert_eq!((s.invalid, s.duplicates, s.written), (5, 1, 1));
    // A record of an unknown session asks for its schema; without it, nothing is written.
    let mut other = msgs[1].clone();
    other[8..16].copy_from_slice(&99u64.to_le_bytes());
    assert_eq!(
        m.handle(&other).unwrap(),
        Outcome::NeedSchema { session: 99 }
    );
    m.no_schema(99, 1);
    assert_eq!(m.stats().no_schema, 1);
    assert_eq!(m.sink().records.len(), 1);
    // A schema message on the data key is learnt.
    assert_eq!(m.handle(&schema.encode()).unwrap(), Outcome::SchemaLearnt);
}

#[test]
fn a_different_schema_is_dropped_and_a_mismatched_segment_is_an_error() {
    let mut src = ModelSource::new(Mode::Single, history(2));
    let (schema, msgs) = publish_all(&mut src, 50);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    feed(&mut m, &schema, &msgs[0]);
    // Another session with another schema.
    let other = SchemaMsg::new(
        51,
        0,
        Mode::Single,
        vec![FieldDef::new("x", Kind::Scalar(Dtype::F64))],
    )
    .unwrap();
    let mut out = Vec::new();
    let hdr = crate::wire::RecordHeader {
        session: 51,
        seq: 1,
        commit: 1,
        schema_hash: other.hash,
    };
    crate::wire::encode_record(&hdr, &other.fields, &[WireField::UNWRITTEN], &mut out).unwrap();
    assert_eq!(feed(&mut m, &other, &out), Outcome::Dropped);
    assert_eq!(m.stats().schema_mismatch, 1);
    assert_eq!(m.sink().prepared.len(), 1);

    let sink = ModelSink {
        refuse: Some("field 'x': type".into()),
        ..Default::default()
    };
    let mut m = Mirror::new(sink, MirrorOptions::default());
    m.learn_schema(&schema.encode()).unwrap();
    let err = m.handle(&msgs[0]).unwrap_err();
    assert!(err.to_string().contains("another layout"), "{err}");
}

#[test]
fn mode_override_and_unwritten_conflicts() {
    let mut w = WriterModel::new(4);
    let recs = vec![w.commit(&[(0, value(0, 1), false)])];
    let mut src = ModelSource::new(Mode::Single, recs);
    let (schema, msgs) = publish_all(&mut src, 60);
    let sink = ModelSink {
        existing_written: 0b0010,
        ..Default::default()
    };
    let mut m = Mirror::new(
        sink,
        MirrorOptions {
            mode: Some(Mode::Fifo { slots: 16 }),
        },
    );
    feed(&mut m, &schema, &msgs[0]);
    assert_eq!(m.sink().prepared[0].1, Mode::Fifo { slots: 16 });
    assert_eq!(m.stats().unwritten_conflicts, 1);
}

#[test]
fn commit_numbers_unwrap_across_the_modulus() {
    let mode = Mode::Fifo { slots: 10 };
    let m = commit_modulus(mode);
    assert_eq!(m, 4294967292);
    assert_eq!(commit_modulus(Mode::Single), 4294967294);
    let mut u = CommitUnwrapper::new(mode);
    assert_eq!(u.unwrap(m - 2), (m - 2) as u64);
    assert_eq!(u.unwrap(m - 1), (m - 1) as u64);
    assert_eq!(u.unwrap(0), m as u64);
    assert_eq!(u.unwrap(5), m as u64 + 5);
    // A publisher whose segment wrapped: the mirror sees consecutive commits.
    let mut w = WriterModel::new(4);
    w.state.commit = m - 3;
    let mut recs: Vec<Committed> = (0..5).map(|k| w.commit(&writes(k + 1))).collect();
    for r in &mut recs {
        r.commit %= m;
    }
    let mut src = ModelSource::new(mode, recs);
    let (schema, msgs) = publish_all(&mut src, 70);
    let mut mm = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in &msgs {
        feed(&mut mm, &schema, msg);
    }
    let s = mm.stats();
    assert_eq!((s.written, s.lost, s.skipped, s.invalid), (5, 0, 0, 0));
}

/// Encodes each of `records` through one publisher session in batch messages of the
/// sizes given (cycled).
fn publish_batched(
    src: &mut ModelSource,
    session: u64,
    sizes: &[usize],
) -> (SchemaMsg, Vec<Vec<u8>>) {
    let mut p = Publisher::with_session(src, session).unwrap();
    let schema = p.schema().clone();
    let mut msgs = Vec::new();
    for &size in sizes.iter().cycle() {
        let mut out = Vec::new();
        let mut batch = p.begin_batch(&mut out);
        for _ in 0..size {
            match src.next_record(Duration::ZERO).unwrap() {
                Some(rec) => {
                    p.push(&mut batch, &rec, &mut out).unwrap();
                }
                None => break,
            }
            consume(src);
        }
        if batch.is_empty() {
            break;
        }
        batch.finish(&mut out);
        msgs.push(out);
    }
    (schema, msgs)
}

#[test]
fn batches_write_exactly_what_single_records_write() {
    let recs = history(60);
    let mode = Mode::Fifo { slots: 8 };
    let (s1, singles) = publish_all(&mut ModelSource::new(mode, recs.clone()), 1);
    let (s2, batches) = publish_batched(&mut ModelSource::new(mode, recs), 2, &[1, 5, 2, 17, 3]);
    assert!(batches.len() < 20);
    let mut a = Mirror::new(ModelSink::default(), MirrorOptions::default());
    let mut b = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for msg in &singles {
        feed(&mut a, &s1, msg);
    }
    let mut last = 0;
    for msg in &batches {
        match feed(&mut b, &s2, msg) {
            Outcome::Written { local_commit } => last = local_commit,
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(
        last, 60,
        "a batch reports the local commit of its last record"
    );
    assert_eq!(a.sink().records, b.sink().records);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sb.written, sb.lost, sb.skipped, sb.invalid), (60, 0, 0, 0));
    assert_eq!(sa.written, sb.written);
    assert_eq!(sb.received, batches.len() as u64);
}

#[test]
fn a_lost_batch_is_counted_record_by_record_and_resyncs() {
    let recs = history(16);
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs.clone());
    let (schema, msgs) = publish_batched(&mut src, 3, &[4]);
    assert_eq!(msgs.len(), 4);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    for (i, msg) in msgs.iter().enumerate() {
        if i != 1 {
            feed(&mut m, &schema, msg);
        }
    }
    let s = m.stats();
    assert_eq!((s.lost, s.skipped, s.written), (4, 0, 12));
    // Record 9 (the first after the gap) is a resync; record 10 is incremental.
    assert_eq!(
        m.sink().records[4],
        expected(&recs[8], recs[7].commit, true)
    );
    assert_eq!(
        m.sink().records[5],
        expected(&recs[9], recs[8].commit, false)
    );
    // The lost batch arriving late: every record a duplicate.
    assert_eq!(m.handle(&msgs[1]).unwrap(), Outcome::Dropped);
    assert_eq!(m.stats().duplicates, 4);
    assert_eq!(m.stats().written, 12);
}

#[test]
fn a_batch_that_fails_validation_writes_none_of_its_records() {
    let recs = history(8);
    let mut src = ModelSource::new(Mode::Fifo { slots: 8 }, recs);
    let (schema, msgs) = publish_batched(&mut src, 4, &[4]);
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    m.learn_schema(&schema.encode()).unwrap();
    // Damage the last byte of the batch (inside its last record).
    let mut bad = msgs[0].clone();
    let last = bad.len() - 1;
    bad[last] = 0xff;
    bad.push(0);
    assert_eq!(m.handle(&bad).unwrap(), Outcome::Dropped);
    assert!(m.sink().prepared.is_empty() && m.sink().records.is_empty());
    feed(&mut m, &schema, &msgs[0]);
    assert_eq!(m.sink().records.len(), 4);
    // A batch of the same session whose first new record does not advance the commit
    // number: rejected as a whole, although its later records would.
    let mut again = Vec::new();
    let mut b = crate::wire::BatchEncoder::begin(&mut again, &schema, 5);
    let vals = vec![WireField::UNWRITTEN; 4];
    b.push(&mut again, 4, &schema.fields, &vals).unwrap();
    b.push(&mut again, 9, &schema.fields, &vals).unwrap();
    b.finish(&mut again);
    assert_eq!(m.handle(&again).unwrap(), Outcome::Dropped);
    let s = m.stats();
    assert_eq!((s.invalid, s.written), (2, 4));
    assert_eq!(m.sink().records.len(), 4);
    // Batches of a replaced session are stale, counted per record.
    let (s2, other) = publish_batched(
        &mut ModelSource::new(Mode::Fifo { slots: 8 }, history(3)),
        5,
        &[3],
    );
    assert_eq!(s2.hash, schema.hash);
    feed(&mut m, &s2, &other[0]);
    assert_eq!(m.handle(&msgs[1]).unwrap(), Outcome::Dropped);
    assert_eq!(m.stats().stale, 4);
}

// ---- the loops --------------------------------------------------------------------------

#[derive(Default)]
struct VecOutlet {
    schemas: Vec<SchemaMsg>,
    messages: Vec<Vec<u8>>,
    records: usize,
    in_band: usize,
    stop_after: usize,
    stop: Option<std::sync::Arc<AtomicBool>>,
}

/// The sequence numbers of the records a data message carries.
fn record_seqs(msg: &[u8]) -> Vec<u64> {
    match crate::wire::peek(msg).unwrap() {
        crate::wire::Peek::Record(h) => vec![h.seq],
        crate::wire::Peek::Batch(b) => (0..b.count as u64).map(|i| b.first_seq + i).collect(),
        crate::wire::Peek::Schema { .. } => vec![],
    }
}

impl Outlet for VecOutlet {
    fn set_schema(&mut self, schema: &SchemaMsg, bytes: Vec<u8>) -> Result<(), BridgeError> {
        assert_eq!(SchemaMsg::decode(&bytes).unwrap(), *schema);
        self.schemas.push(schema.clone());
        Ok(())
    }
    fn put(&mut self, message: Vec<u8>) -> Result<(), BridgeError> {
        match crate::wire::peek(&message).unwrap() {
            crate::wire::Peek::Schema { session } => {
                // In-band, right after set_schema.
                assert_eq!(session, self.schemas.last().unwrap().session);
                self.in_band += 1;
                return Ok(());
            }
            _ => {
                self.records += record_seqs(&message).len();
                self.messages.push(message);
            }
        }
        if self.records >= self.stop_after {
            if let Some(s) = &self.stop {
                s.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// A source for the loop: like `ModelSource` but drops each record after returning it.
struct LoopSource(ModelSource, bool);

impl SegmentSource for LoopSource {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn fields(&self) -> &[FieldDef] {
        self.0.fields()
    }
    fn mode(&self) -> Mode {
        self.0.mode()
    }
    fn source_id(&self) -> u64 {
        self.0.source_id
    }
    fn next_record(&mut self, t: Duration) -> Result<Option<SourceRecord<'_>>, BridgeError> {
        if self.1 {
            consume(&mut self.0);
        }
        self.1 = !self.0.queue.is_empty();
        self.0.next_record(t)
    }
    fn is_replaced(&self) -> bool {
        self.0.is_replaced()
    }
}

#[test]
fn publisher_loop_reopens_a_replaced_segment_under_a_new_session() {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut outlet = VecOutlet {
        stop_after: 8,
        stop: Some(stop.clone()),
        ..Default::default()
    };
    let mut opens = 0;
    let open = || {
        opens += 1;
        let recs = if opens == 1 { history(5) } else { history(3) };
        let mut s = ModelSource::new(Mode::Fifo { slots: 4 }, recs);
        s.replaced_after_empty = true;
        Ok(LoopSource(s, false))
    };
    let opts = PublishOptions {
        poll: Duration::from_millis(1),
        ..Default::default()
    };
    let stats = run_publisher(open, &mut outlet, &opts, &stop).unwrap();
    assert_eq!(stats.published, 8);
    assert_eq!(stats.sessions, 2);
    assert_eq!(outlet.schemas.len(), 2);
    assert_eq!(outlet.in_band, 2);
    assert_ne!(outlet.schemas[0].session, outlet.schemas[1].session);
    // Each session numbers its messages from 1.
    let seqs: Vec<u64> = outlet
        .messages
        .iter()
        .flat_map(|m| record_seqs(m))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 1, 2, 3]);
    // The records were ready together: one batch per session.
    assert_eq!(outlet.messages.len(), 2);
}

#[test]
fn publisher_loop_rate_limits_single_slot() {
    // A source that always has a newer record.
    struct Busy(WriterModel, Committed);
    impl SegmentSource for Busy {
        fn name(&self) -> &str {
            "busy"
        }
        fn fields(&self) -> &[FieldDef] {
            static F: std::sync::OnceLock<Vec<FieldDef>> = std::sync::OnceLock::new();
            F.get_or_init(fields)
        }
        fn mode(&self) -> Mode {
            Mode::Single
        }
        fn next_record(&mut self, _: Duration) -> Result<Option<SourceRecord<'_>>, BridgeError> {
            for _ in 0..10 {
                let k = self.0.state.commit + 1;
                self.1 = self.0.commit(&writes(k));
            }
            Ok(Some(SourceRecord {
                commit: self.1.commit,
                lost: 0,
                fields: source_fields(&self.1, 0),
                more: false,
            }))
        }
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut outlet = VecOutlet {
        stop_after: usize::MAX,
        ..Default::default()
    };
    let opts = PublishOptions {
        max_rate: Some(20.0),
        poll: Duration::from_millis(5),
        ..Default::default()
    };
    let open = || {
        let mut w = WriterModel::new(4);
        let c = w.commit(&writes(1));
        Ok(Busy(w, c))
    };
    let stats = run_publisher(open, &mut outlet, &opts, &stop).unwrap();
    stopper.join().unwrap();
    // 300 ms at 20 Hz: about 6 (the first one at once).
    assert!((4..=8).contains(&stats.published), "{stats:?}");
    assert_eq!(stats.skipped, (stats.published - 1) * 9);
}

struct Msg(String, Vec<u8>);

impl InMessage for Msg {
    fn key(&self) -> &str {
        &self.0
    }
    fn payload(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.1)
    }
}

struct VecInlet {
    queue: VecDeque<Vec<u8>>,
    schema: Option<Vec<u8>>,
    /// The answer to a request comes after this many more `recv` calls.
    answer_after: usize,
    answer_in: Option<usize>,
    requests: usize,
    stop: std::sync::Arc<AtomicBool>,
    idle: usize,
}

impl Inlet for VecInlet {
    type Msg = Msg;
    fn recv(&mut self, _: Duration) -> Result<Option<Msg>, BridgeError> {
        if let Some(n) = self.answer_in.as_mut() {
            *n = n.saturating_sub(1);
        }
        match self.queue.pop_front() {
            Some(m) => Ok(Some(Msg("flexshm/x".into(), m))),
            None => {
                // Give pending answers and expiries a few rounds, then stop.
                self.idle += 1;
                if self.idle > 50 {
                    self.stop.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
                Ok(None)
            }
        }
    }
    fn request_schema(&mut self, key: &str, _: Duration) -> Result<(), BridgeError> {
        assert_eq!(key, "flexshm/x");
        self.requests += 1;
        self.answer_in = Some(self.answer_after);
        Ok(())
    }
    fn schema_replies(&mut self) -> Vec<Vec<u8>> {
        match (self.answer_in, &self.schema) {
            (Some(0), Some(s)) => {
                self.answer_in = None;
                vec![b"junk".to_vec(), s.clone()]
            }
            _ => vec![],
        }
    }
}

fn run_inlet(
    schema: Option<Vec<u8>>,
    answer_after: usize,
    msgs: Vec<Vec<u8>>,
    opts: MirrorLoopOptions,
) -> (MirrorStats, usize, Vec<LocalRecord>) {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut inlet = VecInlet {
        queue: msgs.into(),
        schema,
        answer_after,
        answer_in: None,
        requests: 0,
        stop: stop.clone(),
        idle: 0,
    };
    let mut m = Mirror::new(ModelSink::default(), MirrorOptions::default());
    let stats = run_mirror(&mut m, &mut inlet, &opts, &stop).unwrap();
    (stats, inlet.requests, m.sink().records.clone())
}

#[test]
fn mirror_loop_keeps_records_until_their_schema_arrives() {
    let recs = history(20);
    let mut src = ModelSource::new(Mode::Fifo { slots: 4 }, recs.clone());
    let (schema, msgs) = publish_all(&mut src, 80);
    // The answer comes after 5 more messages: the first 6 records wait, in order.
    let (stats, requests, local) =
        run_inlet(Some(schema.encode()), 5, msgs, MirrorLoopOptions::default());
    assert_eq!((stats.received, stats.written, stats.lost), (20, 20, 0));
    assert_eq!(requests, 1);
    for (k, c) in recs.iter().enumerate() {
        let since = if k == 0 { 0 } else { recs[k - 1].commit };
        assert_eq!(local[k], expected(c, since, k == 0), "record {k}");
    }
}

#[test]
fn mirror_loop_keeps_batches_until_their_schema_arrives_and_counts_records() {
    let recs = history(20);
    let (schema, msgs) = publish_batched(
        &mut ModelSource::new(Mode::Fifo { slots: 4 }, recs.clone()),
        84,
        &[3, 1, 6],
    );
    let n = msgs.len() as u64;
    let (stats, requests, local) = run_inlet(
        Some(schema.encode()),
        2,
        msgs.clone(),
        MirrorLoopOptions::default(),
    );
    assert_eq!((stats.received, stats.written, requests), (n, 20, 1));
    for (k, c) in recs.iter().enumerate() {
        let since = if k == 0 { 0 } else { recs[k - 1].commit };
        assert_eq!(local[k], expected(c, since, k == 0), "record {k}");
    }
    // Without an answer, every record of every batch is counted as dropped.
    let opts = MirrorLoopOptions {
        schema_timeout: Duration::from_millis(10),
        ..Default::default()
    };
    let (stats, _, local) = run_inlet(None, 0, msgs, opts);
    assert_eq!((stats.received, stats.no_schema), (n, 20));
    assert!(local.is_empty());
}

#[test]
fn mirror_loop_learns_an_in_band_schema_without_asking() {
    let mut src = ModelSource::new(Mode::Fifo { slots: 4 }, history(5));
    let (schema, mut msgs) = publish_all(&mut src, 81);
    msgs.insert(0, schema.encode());
    let (stats, requests, local) = run_inlet(None, 0, msgs, MirrorLoopOptions::default());
    assert_eq!((stats.received, stats.written, requests), (6, 5, 0));
    assert_eq!(local.len(), 5);
}

#[test]
fn mirror_loop_without_a_schema_drops_after_the_timeout() {
    let mut src = ModelSource::new(Mode::Fifo { slots: 4 }, history(20));
    let (_, msgs) = publish_all(&mut src, 82);
    let opts = MirrorLoopOptions {
        schema_timeout: Duration::from_millis(10),
        max_pending: 8,
        ..Default::default()
    };
    let (stats, requests, local) = run_inlet(None, 0, msgs, opts);
    assert_eq!((stats.received, stats.no_schema), (20, 20));
    assert!(local.is_empty());
    assert!(requests >= 1);
}

#[test]
fn mirror_loop_bounds_the_bytes_it_keeps() {
    let mut src = ModelSource::new(Mode::Fifo { slots: 4 }, history(20));
    let (schema, msgs) = publish_all(&mut src, 83);
    let one = msgs[1].len();
    let opts = MirrorLoopOptions {
        max_pending_bytes: 3 * one,
        ..Default::default()
    };
    // The schema arrives after all 20 records: only the newest fit in the buffer.
    let (stats, _, local) = run_inlet(Some(schema.encode()), 20, msgs, opts);
    assert_eq!(stats.received, 20);
    assert!(stats.no_schema >= 16, "{stats:?}");
    assert_eq!(stats.written as usize, local.len());
    assert_eq!(stats.written + stats.no_schema, 20);
}

#[test]
fn wire_errors_display() {
    let e = WireError::Field {
        index: 3,
        what: "string is not UTF-8",
    };
    assert_eq!(e.to_string(), "field 3: string is not UTF-8");
}
