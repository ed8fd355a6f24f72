//! Rebuilds every golden vector and compares it byte for byte with
//! `tests/vectors/<name>.bin`. `BLESS=1` (or `make vectors`) rewrites the `.bin` files
//! instead: do that only for a deliberate protocol change, and say so in the commit.
//!
//! Checks each vector against its `tests/vectors/<name>.json` too: the JSON's write
//! sequence must reproduce the `.bin`, and reading the `.bin` must give exactly the
//! records and statuses the JSON lists. The JSON files are written by hand, never
//! blessed (tests/vectors/README.md).

use std::path::PathBuf;

use flexshm_core::internal::{meta_offset, DESCRIPTOR_PREAMBLE, FIELD_ENTRY_LEN};
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, FieldDef, FieldValue, Kind, Layout, Mode, ReadOptions, Reader,
    Region, Snapshot, Value, Writer,
};
use flexshm_vectors::{Case, CASES};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

/// Zeroed, 64-aligned memory of `len` bytes.
struct Zeroed(Vec<u64>, usize);

impl Zeroed {
    fn new(len: usize) -> Zeroed {
        // u64 backing gives 8-byte alignment, which is REGION_ALIGN.
        Zeroed(vec![0u64; len.div_ceil(8)], len)
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the Vec owns at least `len` initialised bytes; u8 has no alignment or
        // validity requirements; the exclusive borrow of self covers the result.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.1) }
    }
}

fn build(case: &Case) -> Vec<u8> {
    let mut mem = Zeroed::new(case.region_len);
    (case.run)(Region::new(mem.bytes_mut()).unwrap());
    mem.bytes_mut().to_vec()
}

/// What lives at byte `off` of a segment of `case`.
fn describe(case: &Case, off: usize) -> String {
    let l = Layout::new(case.fields).unwrap();
    const HEADER: [&str; 16] = [
        "magic",
        "version",
        "flags",
        "slots",
        "hash_lo",
        "hash_hi",
        "descriptor_len",
        "slots_offset",
        "slot_size",
        "slot_stride",
        "total_size",
        "reserved",
        "head",
        "reserved",
        "reserved",
        "reserved",
    ];
    if off < 64 {
        return format!("header word '{}' (+{})", HEADER[off / 4], off % 4);
    }
    if off < 128 {
        return "frontend area".into();
    }
    let d = off - 128;
    if d < DESCRIPTOR_PREAMBLE {
        return "descriptor field count".into();
    }
    let e = d - DESCRIPTOR_PREAMBLE;
    if e < case.fields.len() * FIELD_ENTRY_LEN {
        return format!(
            "descriptor entry of field '{}' (byte {})",
            case.fields[e / FIELD_ENTRY_LEN].name,
            e % FIELD_ENTRY_LEN
        );
    }
    if off < l.slots_offset() {
        return "padding before the slots".into();
    }
    let b = (off - l.slots_offset()) / l.slot_stride();
    let s = (off - l.slots_offset()) % l.slot_stride();
    let what = match s {
        0..=3 => "seq".to_string(),
        4..=7 => "commit".to_string(),
        8..=11 => "flags".to_string(),
        12..=15 => "reserved".to_string(),
        _ if s < 16 + 8 * case.fields.len() => {
            let i = (s - 16) / 8;
            let word = if (s - 16) % 8 < 4 {
                "last-write commit"
            } else {
                "info"
            };
            format!("meta of '{}' ({word})", case.fields[i].name)
        }
        _ => {
            match (0..case.fields.len()).find(|&i| s >= l.offset(i) && s < l.offset(i) + l.size(i))
            {
                Some(i) => format!(
                    "payload of '{}' (+{})",
                    case.fields[i].name,
                    s - l.offset(i)
                ),
                None => "padding".to_string(),
            }
        }
    };
    format!("buffer {b}, {what}")
}

#[test]
fn vectors_match() {
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in CASES {
        let got = build(case);
        let path = dir().join(format!("{}.bin", case.name));
        if bless {
            std::fs::write(&path, &got).unwrap();
            println!("blessed {} ({} bytes)", path.display(), got.len());
            continue;
        }
        let want = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `make vectors` to create it deliberately",
                path.display()
            )
        });
        if got.len() != want.len() {
            failures.push(format!(
                "{}: {} bytes built, {} stored",
                case.name,
                got.len(),
                want.len()
            ));
        }
        if let Some(off) = got.iter().zip(&want).position(|(a, b)| a != b) {
            let diffs = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            failures.push(format!(
                "{}: first difference at byte {off} ({}): built {:#04x}, stored {:#04x}; {diffs} bytes differ",
                case.name,
                describe(case, off),
                got[off],
                want[off]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden vectors differ:\n{}",
        failures.join("\n")
    );
}

#[test]
fn region_len_is_the_segment_size() {
    for case in CASES {
        let l = Layout::new(case.fields).unwrap();
        assert_eq!(
            case.region_len,
            l.segment_size(case.mode.slots()).unwrap(),
            "{}",
            case.name
        );
    }
}

#[test]
fn cases_are_deterministic_and_named_uniquely() {
    for (k, case) in CASES.iter().enumerate() {
        assert_eq!(build(case), build(case), "{}", case.name);
        assert!(CASES[..k].iter().all(|c| c.name != case.name));
    }
    let names: Vec<_> = CASES.iter().map(|c| c.name).collect();
    for n in ["sensor_single", "all_types", "sensor_fifo"] {
        assert!(names.contains(&n), "{n}");
    }
}

/// The vectors are readable segments: a schema-less reader opens each and decodes the
/// newest record, which holds what the sequence wrote last.
#[test]
fn vectors_read_back() {
    for case in CASES {
        let mut mem = Zeroed::new(case.region_len);
        (case.run)(Region::new(mem.bytes_mut()).unwrap());
        let region = Region::new(mem.bytes_mut()).unwrap();
        let mut r = Reader::<Dynamic>::open(region).unwrap();
        assert_eq!(r.mode(), case.mode);
        let mut buf = vec![0u8; r.snapshot_len()];
        let latest = ReadOptions {
            latest: true,
            reset_modified: false,
        };
        let snap = r.try_read(&mut buf, latest).unwrap();
        match case.name {
            "sensor_single" => {
                assert_eq!(snap.commit(), 5);
                assert_eq!(snap.get(0).unwrap(), FieldValue::Float(-40.0625));
                assert_eq!(snap.get(1).unwrap(), FieldValue::Float(998.5));
                assert_eq!(snap.get(2).unwrap(), FieldValue::Float(1_700_000_001.0));
                assert_eq!(
                    snap.get(3).unwrap(),
                    FieldValue::Str("Grüße 世界 Привет مرحبا 🌍 ok")
                );
                assert!(snap.status(3).valid() && !snap.status(3).modified);
                assert!(snap.status(1).modified);
            }
            "all_types" => {
                assert_eq!(snap.commit(), 3);
                assert_eq!(snap.get_named("name").unwrap(), FieldValue::Str("ñandú"));
                assert!(snap.status(11).truncated);
                assert!(snap.status(15).truncated, "pair_u64 was given 3 rows");
                assert_eq!(snap.get_named("f32").unwrap(), FieldValue::Float(-7.0));
                assert_eq!(snap.get_named("i64").unwrap(), FieldValue::Int(i64::MAX));
                match snap.get_named("mat_i16").unwrap() {
                    FieldValue::Array { rows, .. } => assert_eq!(rows, 1),
                    other => panic!("{other:?}"),
                }
                match snap.get_named("bits").unwrap() {
                    FieldValue::Array { rows, .. } => assert_eq!(rows, 0),
                    other => panic!("{other:?}"),
                }
            }
            "sensor_fifo" => {
                assert_eq!(snap.commit(), 7);
                assert_eq!(snap.get(0).unwrap(), FieldValue::Float(23.0));
                assert_eq!(snap.get(1).unwrap(), FieldValue::Float(1013.25));
                assert_eq!(snap.get(3).unwrap(), FieldValue::Str("vent ✓"));
                // A fresh in-order reader starts at the oldest record in the ring.
                let mut r2 = Reader::<Dynamic>::open(region).unwrap();
                let snap = r2.try_read(&mut buf, ReadOptions::default()).unwrap();
                assert_eq!((snap.commit(), snap.lost()), (4, 0));
            }
            other => panic!("no read-back check for case {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The expected-value files: tests/vectors/<name>.json (format: tests/vectors/README.md)

type Json = serde_json::Value;

fn expected(case: &Case) -> Json {
    let path = dir().join(format!("{}.json", case.name));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; every vector has a JSON file", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn field_def(case: &Case, name: &str) -> (usize, FieldDef) {
    let i = case
        .fields
        .iter()
        .position(|f| f.name.as_str() == name)
        .unwrap_or_else(|| panic!("{}: no field {name:?}", case.name));
    (i, case.fields[i])
}

/// The elements of a nested JSON list, flattened, and its shape; `trailing` gives the
/// dimensions after the first when the list is empty.
fn flatten<'j>(v: &'j Json, ndim: usize, trailing: &[u32]) -> (Vec<&'j Json>, Vec<usize>) {
    let list = v.as_array().expect("an array value is a JSON list");
    let mut shape = vec![list.len()];
    if ndim == 1 {
        return (list.iter().collect(), shape);
    }
    if list.is_empty() {
        shape.extend(trailing.iter().map(|&d| d as usize));
        return (Vec::new(), shape);
    }
    let mut out = Vec::new();
    let mut inner_shape = None;
    for row in list {
        let (elems, s) = flatten(row, ndim - 1, &trailing[1..]);
        assert!(
            inner_shape.is_none() || inner_shape.as_ref() == Some(&s),
            "ragged list"
        );
        inner_shape = Some(s);
        out.extend(elems);
    }
    shape.extend(inner_shape.unwrap());
    (out, shape)
}

/// Native-order bytes of one array element given in JSON.
fn element_bytes(d: Dtype, e: &Json) -> Vec<u8> {
    let i = || e.as_i64().expect("an integer element");
    let u = || e.as_u64().expect("a non-negative integer element");
    let f = || e.as_f64().expect("a number element");
    match d {
        Dtype::Bool => vec![e.as_bool().expect("a bool element") as u8],
        Dtype::I8 => (i() as i8).to_ne_bytes().to_vec(),
        Dtype::I16 => (i() as i16).to_ne_bytes().to_vec(),
        Dtype::I32 => (i() as i32).to_ne_bytes().to_vec(),
        Dtype::I64 => i().to_ne_bytes().to_vec(),
        Dtype::U8 => (u() as u8).to_ne_bytes().to_vec(),
        Dtype::U16 => (u() as u16).to_ne_bytes().to_vec(),
        Dtype::U32 => (u() as u32).to_ne_bytes().to_vec(),
        Dtype::U64 => u().to_ne_bytes().to_vec(),
        Dtype::F32 => (f() as f32).to_ne_bytes().to_vec(),
        Dtype::F64 => f().to_ne_bytes().to_vec(),
    }
}

/// Owned storage for the values of one write, so that `Value`s can borrow it.
enum Owned {
    Scalar(Value<'static>),
    Str(String),
    Array(Dtype, Vec<usize>, Vec<u8>),
}

fn owned_value(f: &FieldDef, v: &Json) -> Owned {
    match f.kind {
        Kind::Str { .. } => Owned::Str(v.as_str().expect("a string value").to_string()),
        Kind::Scalar(_) => Owned::Scalar(match v {
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) if n.is_i64() => Value::Int(n.as_i64().unwrap()),
            Json::Number(n) if n.is_u64() => Value::UInt(n.as_u64().unwrap()),
            Json::Number(n) => Value::Float(n.as_f64().unwrap()),
            other => panic!("field {}: not a scalar: {other}", f.name),
        }),
        Kind::Array { dtype, dims } => {
            let d = dims.as_slice();
            let (elems, shape) = flatten(v, d.len(), &d[1..]);
            let bytes = elems.iter().flat_map(|e| element_bytes(dtype, e)).collect();
            Owned::Array(dtype, shape, bytes)
        }
    }
}

fn as_value(o: &Owned) -> Value<'_> {
    match o {
        Owned::Scalar(v) => *v,
        Owned::Str(s) => Value::Str(s),
        Owned::Array(d, shape, bytes) => Value::Array(ArrayRef::new(*d, shape, bytes).unwrap()),
    }
}

/// Performs the JSON's write sequence on a zeroed region and returns its bytes.
fn replay(case: &Case, j: &Json) -> Vec<u8> {
    let mut mem = Zeroed::new(case.region_len);
    let region = Region::new(mem.bytes_mut()).unwrap();
    let mut w = Writer::<Dynamic<_>>::create(region, case.fields, case.mode).unwrap();
    for (k, op) in j["writes"].as_array().expect("writes").iter().enumerate() {
        let what = format!("{} write op {k}", case.name);
        match op["op"].as_str() {
            Some("write") => {
                let values: Vec<(usize, Owned)> = op["values"]
                    .as_object()
                    .expect("values")
                    .iter()
                    .map(|(name, v)| {
                        let (i, f) = field_def(case, name);
                        (i, owned_value(&f, v))
                    })
                    .collect();
                let vals: Vec<(usize, Value<'_>)> =
                    values.iter().map(|(i, o)| (*i, as_value(o))).collect();
                w.write_fields(&vals)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            Some("finalize") => {
                w.finalize();
            }
            other => panic!("{what}: unknown op {other:?}"),
        }
        match op.get("commits") {
            Some(c) => assert_eq!(Some(w.head() as u64), c.as_u64(), "{what}: head"),
            None => assert!(w.is_staging(), "{what}: an op without 'commits' stages"),
        }
    }
    mem.bytes_mut().to_vec()
}

/// The little-endian elements of a decoded array as JSON values, for comparison.
fn decoded_elements(d: Dtype, bytes: &[u8]) -> Vec<Json> {
    bytes
        .chunks_exact(d.size() as usize)
        .map(|b| {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            let u = u64::from_le_bytes(w);
            match d {
                Dtype::Bool => Json::from(b[0] != 0),
                Dtype::I8 => Json::from(b[0] as i8),
                Dtype::I16 => Json::from(u as u16 as i16),
                Dtype::I32 => Json::from(u as u32 as i32),
                Dtype::I64 => Json::from(u as i64),
                Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => Json::from(u),
                Dtype::F32 => Json::from(f32::from_bits(u as u32) as f64),
                Dtype::F64 => Json::from(f64::from_bits(u)),
            }
        })
        .collect()
}

/// Two JSON numbers are equal as the values they denote (20 and 20.0 alike).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(p), Some(q), _, _) => p == q,
                (_, _, Some(p), Some(q)) => p == q,
                _ => x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits),
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

/// Checks one read against its expected record.
fn check_read(case: &Case, what: &str, snap: &Snapshot<'_, '_, Dynamic>, want: &Json) {
    assert_eq!(
        Some(snap.commit() as u64),
        want["commit"].as_u64(),
        "{what}: commit"
    );
    assert_eq!(
        Some(snap.lost() as u64),
        want["lost"].as_u64(),
        "{what}: lost"
    );
    let fields = want["fields"].as_array().expect("fields");
    assert_eq!(
        fields.len(),
        case.fields.len(),
        "{what}: every field, in order"
    );
    for (i, (f, w)) in case.fields.iter().zip(fields).enumerate() {
        let what = format!("{what}, field {}", f.name);
        assert_eq!(w["name"].as_str(), Some(f.name.as_str()), "{what}: order");
        let st = snap.status(i);
        assert_eq!(Some(st.written), w["written"].as_bool(), "{what}: written");
        assert_eq!(
            Some(st.truncated),
            w["truncated"].as_bool(),
            "{what}: truncated"
        );
        assert_eq!(
            Some(st.modified),
            w["modified"].as_bool(),
            "{what}: modified"
        );
        let m = meta_offset(i);
        let lw = u32::from_le_bytes(snap.bytes()[m..m + 4].try_into().unwrap());
        assert_eq!(
            Some(lw as u64),
            w["last_write"].as_u64(),
            "{what}: last_write"
        );
        let got = match snap.get(i).unwrap() {
            FieldValue::Bool(b) => Json::from(b),
            FieldValue::Int(v) => Json::from(v),
            FieldValue::UInt(v) => Json::from(v),
            FieldValue::Float(v) => Json::from(v),
            FieldValue::Str(s) => Json::from(s),
            FieldValue::Array { dtype, rows, bytes } => {
                let Kind::Array { dims, .. } = f.kind else {
                    panic!("{what}: an array value of a non-array field")
                };
                let d = dims.as_slice();
                let (elems, shape) = flatten(&w["value"], d.len(), &d[1..]);
                assert_eq!(shape[0], rows, "{what}: rows");
                assert_eq!(
                    &shape[1..],
                    &d[1..].iter().map(|&x| x as usize).collect::<Vec<_>>()[..]
                );
                let got = decoded_elements(dtype, bytes);
                let want: Vec<Json> = elems.into_iter().cloned().collect();
                assert!(
                    same(&Json::from(got.clone()), &Json::from(want.clone())),
                    "{what}: {got:?} != {want:?}"
                );
                continue;
            }
        };
        assert!(same(&got, &w["value"]), "{what}: {got} != {}", w["value"]);
    }
}

/// Each vector's JSON file describes it: the same schema and mode; its write sequence,
/// performed by a writer, leaves exactly the bytes of the `.bin`; and a reader of the
/// `.bin` gets exactly the records the file lists (a new FIFO reader: every record in
/// the ring in order, then none).
#[test]
fn expected_values_match() {
    for e in std::fs::read_dir(dir()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            assert!(
                CASES.iter().any(|c| c.name == stem),
                "{}: no case in flexshm_vectors::CASES",
                path.display()
            );
        }
    }
    for case in CASES {
        let j = expected(case);
        let name = case.name;
        assert_eq!(j["name"].as_str(), Some(name));
        assert_eq!(j["bin"].as_str(), Some(format!("{name}.bin").as_str()));
        assert_eq!(
            j["size"].as_u64(),
            Some(case.region_len as u64),
            "{name}: size"
        );
        let (mode, slots) = match case.mode {
            Mode::Single => ("single", 1),
            Mode::Fifo { slots } => ("fifo", slots),
        };
        assert_eq!(j["mode"].as_str(), Some(mode), "{name}: mode");
        assert_eq!(j["slots"].as_u64(), Some(slots as u64), "{name}: slots");
        let l = Layout::new(case.fields).unwrap();
        assert_eq!(
            j["layout_hash"].as_str(),
            Some(format!("{:#018x}", l.hash()).as_str()),
            "{name}: layout hash"
        );
        let fields = j["fields"].as_array().expect("fields");
        assert_eq!(fields.len(), case.fields.len(), "{name}: field count");
        for (f, jf) in case.fields.iter().zip(fields) {
            assert_eq!(jf["name"].as_str(), Some(f.name.as_str()), "{name}: field");
            assert_eq!(
                jf["type"].as_str(),
                Some(f.kind.to_string().as_str()),
                "{name}: type of {}",
                f.name
            );
        }

        let stored = std::fs::read(dir().join(format!("{name}.bin"))).unwrap();
        assert!(
            replay(case, &j) == stored,
            "{name}: the JSON's write sequence does not reproduce {name}.bin"
        );

        let mut mem = Zeroed::new(stored.len());
        mem.bytes_mut().copy_from_slice(&stored);
        let region = Region::new(mem.bytes_mut()).unwrap();
        let mut r = Reader::<Dynamic>::open(region).unwrap();
        assert_eq!(Some(r.head() as u64), j["head"].as_u64(), "{name}: head");
        let mut buf = vec![0u8; r.snapshot_len()];
        let reads = j["reads"].as_array().expect("reads");
        assert!(!reads.is_empty());
        for (k, want) in reads.iter().enumerate() {
            let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
            check_read(case, &format!("{name} read {k}"), &snap, want);
        }
        match j.get("then").and_then(Json::as_str) {
            Some("no record") => assert_eq!(
                r.try_read(&mut buf, ReadOptions::default()).err(),
                Some(flexshm_core::Error::NoRecord),
                "{name}: after the listed reads"
            ),
            None => assert!(
                case.mode == Mode::Single,
                "{name}: a FIFO says what follows"
            ),
            Some(other) => panic!("{name}: unknown 'then' {other:?}"),
        }
        if let Some(want) = j.get("latest") {
            let mut r = Reader::<Dynamic>::open(region).unwrap();
            let latest = ReadOptions {
                latest: true,
                reset_modified: false,
            };
            let snap = r.try_read(&mut buf, latest).unwrap();
            check_read(case, &format!("{name} latest read"), &snap, want);
        }
    }
}
