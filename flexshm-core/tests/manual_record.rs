//! `Record` written by hand instead of by `record!`: without `DIRECT_SCALARS` the typed
//! writer and reader take the checked path for scalars and agree byte for byte with a
//! `record!` type; a broken `DIRECT_SCALARS` promise is an error that names the field,
//! with nothing written; and whatever non-zero bits a record gives for a bool, the
//! writer stores 1.
#![cfg(not(loom))]

mod common;

use common::*;
use flexshm_core::{
    record, Dtype, Error, FieldDef, FieldValue, Kind, Mode, ReadOptions, Reader, Record, Value,
    Writer,
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
