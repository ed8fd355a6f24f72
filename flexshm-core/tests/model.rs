//! Property tests: random operation sequences (writes of random field subsets with
//! random, sometimes invalid values; finalize; reads by several readers with `latest` and
//! `reset_modified`) run against the real writer and readers and against a simple model,
//! a Vec of every committed record plus a map of staged fields, in both modes.
#![cfg(not(loom))]

mod common;

use std::collections::HashMap;

use common::*;
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, Mode, ReadOptions, Reader, Value,
    Writer,
};
use proptest::prelude::*;

const FIELDS: &[FieldDef] = &[
    FieldDef::new("f", Kind::Scalar(Dtype::F64)),
    FieldDef::new("i", Kind::Scalar(Dtype::I32)),
    FieldDef::new("u", Kind::Scalar(Dtype::U8)),
    FieldDef::new("flag", Kind::Scalar(Dtype::Bool)),
    FieldDef::new("s", Kind::str(3)),
    FieldDef::new("arr", Kind::array(Dtype::I16, &[3, 2])),
];
const N: usize = 6;
const READERS: usize = 3;

/// A generated value for one field.
#[derive(Debug, Clone)]
enum Gen {
    F(f64),
    FromInt(i32),
    I(i64),
    U(u64),
    B(bool),
    S(String),
    A(Vec<[i16; 2]>),
    /// A value of the wrong kind for the field.
    Bad,
}

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(usize, Gen)>),
    Finalize,
    Read {
        reader: usize,
        latest: bool,
        reset: bool,
    },
}

/// What the model expects a field to read as.
#[derive(Debug, Clone, PartialEq)]
enum Mv {
    F(u64),
    I(i64),
    U(u64),
    B(bool),
    S(String),
    A(Vec<[i16; 2]>),
}

#[derive(Debug, Clone, PartialEq)]
struct Slot {
    value: Mv,
    truncated: bool,
}

/// One committed record in the model: the value of every written field and which
/// fields this commit wrote.
#[derive(Debug, Clone)]
struct Rec {
    fields: [Option<Slot>; N],
    wrote: u64,
}

#[derive(Debug, Clone, Default)]
struct ModelReader {
    /// FIFO: the commit expected next.
    next: Option<u32>,
    /// The commit of the previous `reset_modified` read.
    reset_at: Option<u32>,
}

struct Model {
    fifo: bool,
    slots: u32,
    /// Commit k is `recs[k]`; `recs[0]` is the empty record of a fresh segment.
    recs: Vec<Rec>,
    staged: Option<Rec>,
    readers: Vec<ModelReader>,
}

fn gen_for(i: usize) -> BoxedStrategy<Gen> {
    let v = match i {
        0 => prop_oneof![
            3 => proptest::num::f64::ANY.prop_map(Gen::F),
            1 => any::<i32>().prop_map(Gen::FromInt),
        ]
        .boxed(),
        1 => prop_oneof![
            4 => any::<i32>().prop_map(|x| Gen::I(x as i64)),
            1 => (-(1i64 << 34)..(1i64 << 34)).prop_map(Gen::I),
        ]
        .boxed(),
        2 => (0u64..300).prop_map(Gen::U).boxed(),
        3 => any::<bool>().prop_map(Gen::B).boxed(),
        4 => proptest::collection::vec(
            proptest::sample::select(vec!["a", "z", "é", "ß", "世", "界", "🌍", " "]),
            0..6,
        )
        .prop_map(|v| Gen::S(v.concat()))
        .boxed(),
        _ => proptest::collection::vec(any::<[i16; 2]>(), 0..5)
            .prop_map(Gen::A)
            .boxed(),
    };
    prop_oneof![12 => v, 1 => Just(Gen::Bad)].boxed()
}

fn op() -> impl Strategy<Value = Op> {
    let write = (0..N)
        .map(|i| proptest::option::weighted(0.4, gen_for(i)))
        .collect::<Vec<_>>()
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .filter_map(|(i, g)| g.map(|g| (i, g)))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
        .prop_map(Op::Write);
    prop_oneof![
        4 => write,
        2 => Just(Op::Finalize),
        4 => (0..READERS, any::<bool>(), any::<bool>())
            .prop_map(|(reader, latest, reset)| Op::Read { reader, latest, reset }),
    ]
}

impl Model {
    fn new(mode: Mode) -> Model {
        Model {
            fifo: mode.is_fifo(),
            slots: mode.slots(),
            recs: vec![Rec {
                fields: Default::default(),
                wrote: 0,
            }],
            staged: None,
            // The readers are opened on the empty segment: in FIFO mode every record
            // from commit 1 on is theirs (lost if overwritten before they read it).
            readers: vec![
                ModelReader {
                    next: mode.is_fifo().then_some(1),
                    ..Default::default()
                };
                READERS
            ],
        }
    }

    fn head(&self) -> u32 {
        (self.recs.len() - 1) as u32
    }

    /// The model's own conversion rules; `None` for a value the field rejects.
    fn convert(i: usize, g: &Gen) -> Option<Slot> {
        let plain = |value| {
            Some(Slot {
                value,
                truncated: false,
            })
        };
        match (i, g) {
            (0, Gen::F(x)) => plain(Mv::F(x.to_bits())),
            (0, Gen::FromInt(x)) => plain(Mv::F((*x as f64).to_bits())),
            (1, Gen::I(x)) => i32::try_from(*x).ok().and_then(|x| plain(Mv::I(x as i64))),
            (2, Gen::U(x)) => u8::try_from(*x).ok().and_then(|x| plain(Mv::U(x as u64))),
            (3, Gen::B(b)) => plain(Mv::B(*b)),
            (4, Gen::S(s)) => Some(Slot {
                value: Mv::S(s.chars().take(3).collect()),
                truncated: s.chars().count() > 3,
            }),
            (5, Gen::A(rows)) => Some(Slot {
                value: Mv::A(rows.iter().take(3).copied().collect()),
                truncated: rows.len() > 3,
            }),
            _ => None,
        }
    }

    /// Applies a write; false if the model rejects it (then nothing changes).
    fn write(&mut self, vals: &[(usize, Gen)]) -> bool {
        let mut conv = Vec::new();
        for (i, g) in vals {
            match Model::convert(*i, g) {
                Some(s) => conv.push((*i, s)),
                None => return false,
            }
        }
        let last = self.recs.last().unwrap();
        let rec = self.staged.get_or_insert_with(|| Rec {
            fields: last.fields.clone(),
            wrote: 0,
        });
        for (i, s) in conv {
            rec.fields[i] = Some(s);
            rec.wrote |= 1 << i;
        }
        if !self.fifo {
            self.commit();
        }
        true
    }

    /// FIFO: commits the staged record (or a repeat of the last). Single-slot: every
    /// write committed itself; nothing happens.
    fn finalize(&mut self) -> u32 {
        if self.fifo {
            self.commit()
        } else {
            self.head()
        }
    }

    fn commit(&mut self) -> u32 {
        let last = self.recs.last().unwrap();
        let rec = self.staged.take().unwrap_or_else(|| Rec {
            fields: last.fields.clone(),
            wrote: 0,
        });
        self.recs.push(rec);
        self.head()
    }

    /// The record a read returns: (commit, lost), or `None` for NoRecord.
    fn read(&mut self, r: usize, latest: bool) -> Option<(u32, u32)> {
        let head = self.head();
        let rd = &mut self.readers[r];
        if !self.fifo {
            return Some((head, 0));
        }
        if head == 0 {
            return None;
        }
        let oldest = head.saturating_sub(self.slots - 1).max(1);
        if latest {
            if rd.next == Some(head + 1) {
                return None;
            }
            rd.next = Some(head + 1);
            return Some((head, 0));
        }
        let want = rd.next.unwrap_or(oldest);
        if want > head {
            return None;
        }
        let (at, lost) = if want < oldest {
            (oldest, oldest - want)
        } else {
            (want, 0)
        };
        rd.next = Some(at + 1);
        Some((at, lost))
    }

    /// Modified mask of a read of commit `c` by reader `r`.
    fn modified(&mut self, r: usize, c: u32, reset: bool) -> u64 {
        let rec = &self.recs[c as usize];
        if !reset {
            return rec.wrote;
        }
        let written: u64 = (0..N)
            .filter(|&i| rec.fields[i].is_some())
            .map(|i| 1 << i)
            .sum();
        let m = match self.readers[r].reset_at {
            None => written,
            Some(p) => self.recs[p as usize + 1..=c as usize]
                .iter()
                .fold(0, |m, r| m | r.wrote),
        };
        self.readers[r].reset_at = Some(c);
        m
    }
}

fn to_value<'a>(i: usize, g: &'a Gen, arr: &'a [u8], rows: usize) -> Value<'a> {
    match g {
        Gen::F(x) => Value::Float(*x),
        Gen::FromInt(x) => Value::Int(*x as i64),
        Gen::I(x) => Value::Int(*x),
        Gen::U(x) => Value::UInt(*x),
        Gen::B(b) => Value::Bool(*b),
        Gen::S(s) => Value::Str(s),
        Gen::A(_) => Value::Array(ArrayRef::new(Dtype::I16, &[rows, 2], arr).unwrap()),
        // Strings fit no field but `s`, bools only `flag`.
        Gen::Bad => {
            if i == 4 {
                Value::Bool(true)
            } else {
                Value::Str("bad")
            }
        }
    }
}

fn decoded(v: FieldValue<'_>) -> Mv {
    match v {
        FieldValue::Float(x) => Mv::F(x.to_bits()),
        FieldValue::Int(x) => Mv::I(x),
        FieldValue::UInt(x) => Mv::U(x),
        FieldValue::Bool(b) => Mv::B(b),
        FieldValue::Str(s) => Mv::S(s.to_owned()),
        FieldValue::Array { dtype, rows, bytes } => {
            assert_eq!(dtype, Dtype::I16);
            assert_eq!(bytes.len(), rows * 4);
            Mv::A(
                bytes
                    .chunks_exact(4)
                    .map(|c| {
                        [
                            i16::from_le_bytes([c[0], c[1]]),
                            i16::from_le_bytes([c[2], c[3]]),
                        ]
                    })
                    .collect(),
            )
        }
    }
}

/// What an unwritten field reads as.
fn zero(i: usize) -> Mv {
    match i {
        0 => Mv::F(0),
        1 => Mv::I(0),
        2 => Mv::U(0),
        3 => Mv::B(false),
        4 => Mv::S(String::new()),
        _ => Mv::A(vec![]),
    }
}

fn run(mode: Mode, ops: &[Op]) -> Result<(), TestCaseError> {
    let mem = Mem::for_schema(FIELDS, mode);
    let mut sut = Writer::<Dynamic<_>>::create(mem.region(), FIELDS, mode).unwrap();
    let mut readers: Vec<_> = (0..READERS)
        .map(|_| Reader::<Dynamic<_>>::open_with(mem.region(), FIELDS).unwrap())
        .collect();
    let mut model = Model::new(mode);
    let mut buf = vec![0u8; readers[0].snapshot_len()];
    for op in ops {
        match op {
            Op::Write(vals) => {
                let arrs: Vec<(Vec<u8>, usize)> = vals
                    .iter()
                    .map(|(_, g)| match g {
                        Gen::A(rows) => (
                            rows.iter()
                                .flat_map(|r| r.iter().flat_map(|x| x.to_ne_bytes()))
                                .collect(),
                            rows.len(),
                        ),
                        _ => (vec![], 0),
                    })
                    .collect();
                let values: Vec<(usize, Value<'_>)> = vals
                    .iter()
                    .zip(&arrs)
                    .map(|((i, g), (a, rows))| (*i, to_value(*i, g, a, *rows)))
                    .collect();
                let before = mem.bytes();
                let got = sut.write_fields(&values);
                let accepted = model.write(vals);
                prop_assert_eq!(got.is_ok(), accepted, "write {:?}: {:?}", vals, got);
                if let Err(e) = got {
                    prop_assert!(
                        matches!(e, Error::WrongKind { .. } | Error::OutOfRange { .. }),
                        "{:?}",
                        e
                    );
                    prop_assert!(before == mem.bytes(), "a rejected write changed bytes");
                }
            }
            Op::Finalize => {
                prop_assert_eq!(sut.finalize(), model.finalize());
            }
            Op::Read {
                reader,
                latest,
                reset,
            } => {
                let opts = ReadOptions {
                    latest: *latest,
                    reset_modified: *reset,
                };
                let got = readers[*reader].try_read(&mut buf, opts);
                let want = model.read(*reader, *latest);
                match (got, want) {
                    (Err(Error::NoRecord), None) => {}
                    (Ok(snap), Some((c, lost))) => {
                        prop_assert_eq!((snap.commit(), snap.lost()), (c, lost));
                        let modified = model.modified(*reader, c, *reset);
                        prop_assert_eq!(snap.info().modified, modified, "modified at {}", c);
                        let rec = &model.recs[c as usize];
                        for i in 0..N {
                            let st = snap.status(i);
                            let v = decoded(snap.get(i).unwrap());
                            match &rec.fields[i] {
                                None => {
                                    prop_assert!(st.unwritten() && !st.truncated);
                                    prop_assert_eq!(v, zero(i));
                                }
                                Some(slot) => {
                                    prop_assert!(st.written);
                                    prop_assert_eq!(st.truncated, slot.truncated);
                                    prop_assert_eq!(&v, &slot.value, "field {} at {}", i, c);
                                }
                            }
                        }
                    }
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "read: got {:?}, model {want:?}",
                            got.map(|s| s.info())
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 3 } else { 96 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..if cfg!(miri) { 12 } else { 60 })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn single_slot_matches_model(ops in ops()) {
        run(Mode::Single, &ops)?;
    }

    #[test]
    fn fifo_matches_model(slots in 1u32..5, ops in ops()) {
        run(Mode::Fifo { slots }, &ops)?;
    }
}

/// The model itself on a hand-checked sequence, so a model bug cannot hide a core bug.
#[test]
fn model_sanity() {
    let mut m = Model::new(Mode::Fifo { slots: 2 });
    assert!(m.write(&[(1, Gen::I(5))]));
    assert!(!m.write(&[(1, Gen::I(1 << 40))]));
    assert_eq!(m.finalize(), 1);
    assert_eq!(m.finalize(), 2);
    assert_eq!(m.finalize(), 3);
    // The reader was opened on the empty ring: record 1 was overwritten before it read.
    assert_eq!(m.read(0, false), Some((2, 1)));
    assert_eq!(m.modified(0, 2, true), 0b10);
    let _ = HashMap::<u8, u8>::new();
}
