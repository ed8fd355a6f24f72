//! The oracles: which errors an operation may return, what a snapshot a read accepted must
//! look like, and that the typed decode agrees with the run-time-schema decode.

use embedded_hal::delay::DelayNs;
use flexshm_core::internal::{meta_offset, INFO_LEN_MASK, INFO_TRUNCATED, INFO_WRITTEN};
use flexshm_core::{
    Dtype, Dynamic, Error, FieldDef, FieldValue, Fields, Kind, Layout, ReadInfo, Record, Snapshot,
    Value,
};

use crate::schemas::{AllTypes, Scalars, Sensor, Tiny, Typed};

/// Errors opening or attaching to a segment may return: the header or descriptor is not
/// a valid segment, or not the caller's schema. Anything else is a bug.
pub fn open_error(e: &Error) {
    assert!(
        matches!(
            e,
            Error::RegionTooSmall { .. }
                | Error::BadMagic { .. }
                | Error::UnsupportedVersion { .. }
                | Error::CorruptHeader { .. }
                | Error::SchemaMismatch { .. }
                | Error::TooLarge
        ),
        "unexpected error at open: {e:?}"
    );
    assert!(!e.to_string().is_empty());
}

/// Errors a read may return. `NoRecord` only in FIFO mode, `Timeout` only from a blocking
/// read. Anything else is a bug.
pub fn read_error(e: &Error, fifo: bool, blocking: bool) {
    let ok = match e {
        Error::CorruptHeader { .. } | Error::CorruptBuffer { .. } | Error::CorruptRecord { .. } => {
            true
        }
        Error::Contended => !blocking,
        Error::NoRecord => fifo && !blocking,
        Error::Timeout { no_record } => blocking && (fifo || !no_record),
        _ => false,
    };
    assert!(
        ok,
        "unexpected read error {e:?} (fifo: {fifo}, blocking: {blocking})"
    );
    assert!(!e.to_string().is_empty());
}

fn word(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(buf[off..off + 4].try_into().unwrap())
}

/// Checks a snapshot a read returned against its own bytes and decodes every field; each
/// field decodes to a value of its kind or is a `CorruptRecord` naming it. Returns the
/// decoded fields, for the typed comparison.
pub fn snapshot<'b, F: Fields>(
    snap: &Snapshot<'b, '_, Dynamic<F>>,
    fields: &[FieldDef],
) -> Vec<Result<FieldValue<'b>, Error>> {
    let info = snap.info();
    let bytes = snap.bytes();
    let n = fields.len();
    assert_eq!(snap.len(), n);
    let mask = if n == 0 { 0 } else { u64::MAX >> (64 - n) };
    assert_eq!(info.written & !mask, 0, "status bits beyond the last field");
    assert_eq!((info.modified | info.truncated) & !info.written, 0);
    assert!(
        !snap.status(n).written,
        "a field past the last one is written"
    );
    let mut out = Vec::with_capacity(n);
    for (i, f) in fields.iter().enumerate() {
        let st = snap.status(i);
        let winfo = word(bytes, meta_offset(i) + 4);
        assert_eq!(st.written, winfo & INFO_WRITTEN != 0, "field {i}: written");
        assert_eq!(
            st.truncated,
            winfo & INFO_TRUNCATED != 0,
            "field {i}: truncated"
        );
        let len = if st.written { winfo & INFO_LEN_MASK } else { 0 };
        let got = snap.get(i);
        match &got {
            Ok(v) => {
                let raw = snap.raw(i).expect("raw bytes of a field that decodes");
                value_of_kind(v, raw, f, len);
            }
            Err(Error::CorruptRecord { field, .. }) => assert_eq!(field, &f.name),
            Err(e) => panic!("field {i}: unexpected decode error {e:?}"),
        }
        out.push(got);
    }
    out
}

/// A decoded value has the field's kind and the stored length.
fn value_of_kind(v: &FieldValue<'_>, raw: &[u8], f: &FieldDef, len: u32) {
    match (f.kind, v) {
        (Kind::Scalar(Dtype::Bool), FieldValue::Bool(_)) => {}
        (Kind::Scalar(d), FieldValue::Int(_)) if d.is_integer() && is_signed(d) => {}
        (Kind::Scalar(d), FieldValue::UInt(_)) if d.is_integer() && !is_signed(d) => {}
        (Kind::Scalar(d), FieldValue::Float(_)) if d.is_float() => {}
        (Kind::Str { chars }, FieldValue::Str(s)) => {
            assert_eq!(s.len() as u32, len, "string length is the stored length");
            assert!(s.chars().count() <= chars as usize);
            assert_eq!(s.as_bytes(), raw);
        }
        (
            Kind::Array { dtype, dims },
            FieldValue::Array {
                dtype: d,
                rows,
                bytes,
            },
        ) => {
            assert_eq!(dtype, *d);
            assert_eq!(*rows as u32, len, "array rows are the stored length");
            assert!(*rows as u32 <= dims.rows());
            assert_eq!(*bytes, raw);
        }
        _ => panic!("field {:?} decoded as {v:?}", f.name),
    }
}

fn is_signed(d: Dtype) -> bool {
    matches!(d, Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64)
}

/// Decodes the snapshot's bytes with the typed twin of its schema (if it has one) and
/// checks that it agrees with the run-time-schema decode: both succeed with the same
/// values, or both fail with the same error.
pub fn typed_agrees(
    typed: Typed,
    bytes: &[u8],
    info: ReadInfo,
    dynamic: &[Result<FieldValue<'_>, Error>],
) {
    match typed {
        Typed::Sensor => typed_vs_dynamic::<Sensor>(bytes, info, dynamic),
        Typed::AllTypes => typed_vs_dynamic::<AllTypes>(bytes, info, dynamic),
        Typed::Tiny => typed_vs_dynamic::<Tiny>(bytes, info, dynamic),
        Typed::Scalars => typed_vs_dynamic::<Scalars>(bytes, info, dynamic),
        Typed::None => {}
    }
}

fn typed_vs_dynamic<R: Record + Default + core::fmt::Debug>(
    bytes: &[u8],
    info: ReadInfo,
    dynamic: &[Result<FieldValue<'_>, Error>],
) {
    let layout = Layout::new(R::FIELDS).expect("typed schema");
    let snap = Snapshot::<R>::new(bytes, &layout, info);
    let mut out = R::default();
    let typed = snap.decode(&mut out);
    let first_err = dynamic.iter().find_map(|r| r.as_ref().err());
    match (typed, first_err) {
        (Ok(i), None) => {
            assert_eq!(i, info);
            for (k, d) in dynamic.iter().enumerate() {
                let d = d.as_ref().unwrap();
                assert!(
                    same(&out.value(k), d),
                    "field {k}: typed decode {:?}, dynamic decode {d:?}",
                    out.value(k)
                );
            }
        }
        (Err(t), Some(d)) => assert_eq!(&t, d, "typed and dynamic decodes fail differently"),
        (Ok(_), Some(d)) => {
            panic!("the typed decode accepts a record the dynamic decode rejects: {d:?}; typed: {out:?}")
        }
        (Err(t), None) => {
            panic!("the typed decode rejects a record the dynamic decode accepts: {t:?}")
        }
    }
}

/// A typed field value (as it would be written) equals a decoded one.
pub fn same(t: &Value<'_>, d: &FieldValue<'_>) -> bool {
    match (t, d) {
        (Value::Bool(a), FieldValue::Bool(b)) => a == b,
        (Value::Int(a), FieldValue::Int(b)) => a == b,
        (Value::UInt(a), FieldValue::UInt(b)) => a == b,
        (Value::Float(a), FieldValue::Float(b)) => {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        }
        (Value::Str(a), FieldValue::Str(b)) => a == b,
        (Value::Array(a), FieldValue::Array { dtype, bytes, .. }) => {
            // Typed: every element (rows not stored read as zero), native order.
            // Dynamic: the stored rows, little-endian.
            let n = dtype.size() as usize;
            a.dtype == *dtype
                && a.bytes.len() >= bytes.len()
                && a.bytes[bytes.len()..].iter().all(|&b| b == 0)
                && a.bytes
                    .chunks_exact(n)
                    .zip(bytes.chunks_exact(n))
                    .all(|(x, y)| le_equal(x, y))
        }
        _ => false,
    }
}

/// `native` (native byte order) and `le` (little-endian) are the same element.
fn le_equal(native: &[u8], le: &[u8]) -> bool {
    if cfg!(target_endian = "little") {
        native == le
    } else {
        native.iter().eq(le.iter().rev())
    }
}

/// A `DelayNs` that only counts: blocking reads in a fuzz target take no real time, and
/// the count bounds how long they would have waited.
#[derive(Debug, Default)]
pub struct CountingDelay {
    /// Nanoseconds asked for in total.
    pub total_ns: u64,
    /// Calls made.
    pub calls: u64,
}

impl DelayNs for CountingDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.total_ns += ns as u64;
        self.calls += 1;
        assert!(self.calls < 10_000_000, "a blocking read keeps delaying");
    }
}

/// After a blocking read with `timeout_us` and `poll_us`: it never asked for more delay
/// than its timeout, in at most one call per poll interval (plus a shorter last one).
pub fn blocking_bounds(d: &CountingDelay, timeout_us: u32, poll_us: u32) {
    assert!(
        d.total_ns <= timeout_us as u64 * 1000,
        "a blocking read delayed {} ns past its timeout of {timeout_us} us",
        d.total_ns
    );
    let poll = poll_us.max(1) as u64;
    assert!(
        d.calls <= (timeout_us as u64).div_ceil(poll),
        "a blocking read polled {} times with timeout {timeout_us} us, poll {poll_us} us",
        d.calls
    );
}
