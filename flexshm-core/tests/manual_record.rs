//! `Record` written by hand instead of by `record!`: without `DIRECT_SCALARS` the typed
//! writer and reader take the checked path for scalars and agree byte for byte with a
//! `record!` type; a broken `DIRECT_SCALARS` promise is an error that names the field,
//! with nothing written; and whatever non-zero bits a record gives for a bool, the
//! writer stores 1.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    record, Dtype, Dynamic, Error, FieldDef, FieldValue, FieldVisitor, FieldVisitorMut, Kind, Mode,
    ReadOptions, Reader, Record, Value, Writer,
};

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Made {
        level: f32,
        count: i16,
        label: str[8],
    }
}

const FIELDS: &[FieldDef] = &[
    FieldDef::new("level", Kind::Scalar(Dtype::F32)),
    FieldDef::new("count", Kind::Scalar(Dtype::I16)),
    FieldDef::new("label", Kind::Str { chars: 8 }),
];

/// The same record, implemented by hand. With `DIRECT` it makes the promise of
/// `Record::DIRECT_SCALARS` and breaks it: it never gives scalar bits.
#[derive(Debug, Default, Clone, PartialEq)]
struct Hand<const DIRECT: bool> {
    level: f32,
    count: i16,
    label: String,
}

impl<const DIRECT: bool> Record for Hand<DIRECT> {
    const FIELDS: &'static [FieldDef] = FIELDS;
    const DIRECT_SCALARS: bool = DIRECT;

    fn value(&self, i: usize) -> Value<'_> {
        match i {
            0 => Value::Float(self.level as f64),
            1 => Value::Int(self.count as i64),
            _ => Value::Str(&self.label),
        }
    }

    fn set_field(&mut self, i: usize, v: FieldValue<'_>) -> Result<(), &'static str> {
        match (i, v) {
            (0, FieldValue::Float(x)) => self.level = x as f32,
            (1, FieldValue::Int(x)) => self.count = x as i16,
            (2, FieldValue::Str(s)) => self.label = s.to_owned(),
            _ => return Err("unexpected value"),
        }
        Ok(())
    }
}

fn made() -> Made {
    let mut m = Made {
        level: -2.75,
        count: -300,
        ..Default::default()
    };
    m.label.push_str("naïve ok").unwrap();
    m
}

fn hand<const D: bool>() -> Hand<D> {
    Hand {
        level: -2.75,
        count: -300,
        label: "naïve ok".into(),
    }
}

#[test]
fn a_hand_written_record_agrees_with_record_macro_byte_for_byte() {
    assert_eq!(Made::FIELDS, FIELDS);
    for mode in [Mode::Single, Mode::Fifo { slots: 3 }] {
        let by_macro = Mem::for_schema(FIELDS, mode);
        let by_hand = Mem::for_schema(FIELDS, mode);
        let mut wm = Writer::<Made>::create(by_macro.region(), mode).unwrap();
        let mut wh = Writer::<Hand<false>>::create(by_hand.region(), mode).unwrap();
        for _ in 0..4 {
            wm.write(&made()).unwrap();
            wm.finalize();
            wh.write(&hand()).unwrap();
            wh.finalize();
        }
        assert_eq!(first_diff(&by_macro.bytes(), &by_hand.bytes()), None);

        // Each reads what the other wrote.
        let mut buf = [0u8; Made::SNAPSHOT_LEN];
        let mut rh = Reader::<Hand<false>>::open(by_macro.region()).unwrap();
        let opts = ReadOptions {
            latest: true,
            ..Default::default()
        };
        let mut out = Hand::<false>::default();
        rh.try_read(&mut buf, opts)
            .unwrap()
            .decode(&mut out)
            .unwrap();
        assert_eq!(out, hand());
        let mut rm = Reader::<Made>::open(by_hand.region()).unwrap();
        let mut out = Made::default();
        rm.try_read(&mut buf, opts)
            .unwrap()
            .decode(&mut out)
            .unwrap();
        assert_eq!(out, made());
    }
}

#[test]
fn a_broken_direct_scalars_promise_is_an_error_and_writes_nothing() {
    let mem = Mem::for_schema(FIELDS, Mode::Single);
    let mut w = Writer::<Hand<true>>::create(mem.region(), Mode::Single).unwrap();
    let before = mem.bytes();
    let err = w.write(&hand()).unwrap_err();
    assert_eq!(
        err,
        Error::WrongKind {
            field: FIELDS[0].name,
            expected: FIELDS[0].kind,
        }
    );
    assert_eq!(first_diff(&before, &mem.bytes()), None, "nothing written");

    // Reading: the promise says every f32 is accepted by `set_scalar_bits`, which a
    // hand-written record without it refuses.
    let mut wm = Writer::<Made>::attach(mem.region()).unwrap();
    wm.write(&made()).unwrap();
    let mut r = Reader::<Hand<true>>::open(mem.region()).unwrap();
    let mut buf = [0u8; Made::SNAPSHOT_LEN];
    let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
    let mut out = Hand::<true>::default();
    assert!(
        matches!(
            snap.decode(&mut out),
            Err(Error::CorruptRecord { field, .. }) if field == FIELDS[0].name
        ),
        "{:?}",
        snap.decode(&mut out)
    );
}

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Flag {
        on: bool,
    }
}

/// A hand-written record whose `scalar_bits` gives a bool's bits as "any non-zero byte"
/// (say, straight from a flags register) rather than 0 or 1.
#[derive(Debug, Default)]
struct LooseBool;

impl Record for LooseBool {
    const FIELDS: &'static [FieldDef] = Flag::FIELDS;
    const DIRECT_SCALARS: bool = true;

    fn value(&self, _i: usize) -> Value<'_> {
        Value::Bool(true)
    }

    fn set_field(&mut self, _i: usize, _v: FieldValue<'_>) -> Result<(), &'static str> {
        Ok(())
    }

    fn scalar_bits(&self, _i: usize) -> Option<u64> {
        Some(0x40)
    }
}

#[test]
fn a_bool_is_stored_as_0_or_1_whatever_bits_a_record_gives() {
    let mem = Mem::for_schema(Flag::FIELDS, Mode::Single);
    let mut w = Writer::<LooseBool>::create(mem.region(), Mode::Single).unwrap();
    w.write(&LooseBool).unwrap();
    let mut r = Reader::<Flag>::open(mem.region()).unwrap();
    let mut buf = [0u8; Flag::SNAPSHOT_LEN];
    let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
    assert_eq!(snap.raw(Flag::on).unwrap(), &[1]);
    let mut out = Flag::default();
    snap.decode(&mut out).unwrap();
    assert!(out.on);
}

/// A hand-written record that claims `VISITS_FIELDS` and breaks it in the ways a
/// hand-written `visit` can: `SKIP` visits only its first field, otherwise it gives its
/// `i16` field as an `i64` (a kind `FIELDS` does not declare).
#[derive(Debug, Default, Clone, PartialEq)]
struct BadVisit<const SKIP: bool> {
    level: f32,
    count: i16,
}

const TWO: &[FieldDef] = &[FIELDS[0], FIELDS[1]];

impl<const SKIP: bool> Record for BadVisit<SKIP> {
    const FIELDS: &'static [FieldDef] = TWO;
    const DIRECT_SCALARS: bool = true;
    const VISITS_FIELDS: bool = true;

    fn value(&self, i: usize) -> Value<'_> {
        match i {
            0 => Value::Float(self.level as f64),
            _ => Value::Int(self.count as i64),
        }
    }

    fn set_field(&mut self, _i: usize, _v: FieldValue<'_>) -> Result<(), &'static str> {
        Err("unexpected value")
    }

    fn visit<V: FieldVisitor>(&self, v: &mut V) -> Result<(), Error> {
        v.field(0, &self.level)?;
        if !SKIP {
            v.field(1, &(self.count as i64))?;
        }
        Ok(())
    }

    fn visit_mut<V: FieldVisitorMut>(&mut self, v: &mut V) -> Result<(), Error> {
        v.field(0, &mut self.level)?;
        if !SKIP {
            let mut wide = self.count as i64;
            v.field(1, &mut wide)?;
        }
        Ok(())
    }
}

fn broken_visit_is_refused<const SKIP: bool>() {
    for mode in [Mode::Single, Mode::Fifo { slots: 2 }] {
        let mem = Mem::for_schema(TWO, mode);
        let mut w = Writer::<BadVisit<SKIP>>::create(mem.region(), mode).unwrap();
        let before = mem.bytes();
        let rec = BadVisit::<SKIP> {
            level: 1.5,
            count: 9,
        };
        assert!(
            matches!(w.write(&rec), Err(Error::InvalidField { .. })),
            "SKIP={SKIP}: {:?}",
            w.write(&rec)
        );
        assert_eq!(first_diff(&before, &mem.bytes()), None, "nothing written");
        assert!(!w.is_staging());

        // Reading a record a well-behaved writer wrote: the decode refuses too.
        let mut d = Writer::<Dynamic<&[FieldDef]>>::attach(mem.region(), TWO).unwrap();
        d.write_fields(&[(0, Value::Float(2.5)), (1, Value::Int(7))])
            .unwrap();
        d.finalize();
        let mut r = Reader::<BadVisit<SKIP>>::open(mem.region()).unwrap();
        let mut buf = [0u8; Made::SNAPSHOT_LEN];
        let opts = ReadOptions {
            latest: true,
            ..Default::default()
        };
        let snap = r.try_read(&mut buf, opts).unwrap();
        let mut out = BadVisit::<SKIP>::default();
        assert!(
            matches!(snap.decode(&mut out), Err(Error::InvalidField { .. })),
            "SKIP={SKIP}: {:?}",
            snap.decode(&mut out)
        );
    }
}

#[test]
fn a_visit_that_skips_a_field_is_an_error_and_writes_nothing() {
    broken_visit_is_refused::<true>();
}

#[test]
fn a_visit_that_gives_another_kind_is_an_error_and_writes_nothing() {
    broken_visit_is_refused::<false>();
}

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    struct XFlag {
        x: u8,
        flag: bool,
    }
}

/// `Reader::open_layout` takes any layout the segment matches: a typed decode of a
/// record with more fields than that layout reports an error naming the record's own
/// field, as the loop over field indices did, instead of indexing past the layout.
#[test]
fn a_typed_decode_under_a_shorter_layout_is_an_error_naming_the_records_field() {
    const ONE: &[FieldDef] = &[FieldDef::new("x", Kind::Scalar(Dtype::U8))];
    let mem = Mem::for_schema(ONE, Mode::Single);
    let mut w = Writer::<Dynamic<&[FieldDef]>>::create(mem.region(), ONE, Mode::Single).unwrap();
    w.write_fields(&[(0, Value::UInt(5))]).unwrap();
    let layout = flexshm_core::Layout::new(ONE).unwrap();
    let mut r = Reader::<XFlag>::open_layout(mem.region(), layout).unwrap();
    let mut buf = [0u8; XFlag::SNAPSHOT_LEN];
    let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
    let mut out = XFlag::default();
    match snap.decode(&mut out) {
        Err(Error::CorruptRecord { field, .. }) | Err(Error::InvalidField { field, .. }) => {
            assert_eq!(field.as_str(), "flag")
        }
        other => panic!("expected an error naming 'flag', got {other:?}"),
    }
}
