//! Keeps docs/PROTOCOL.md and the code in step.
//!
//! The document marks its checked tables and hex dumps with `<!-- check: NAME -->`. Each
//! test parses one of them and compares every number with what the code computes
//! (`Layout`, the header constants, the descriptor encoder) or with the bytes a real
//! `Writer` leaves in a region. A change on either side — a number edited in the
//! document, or a layout change in the code — fails a test here.
#![cfg(not(loom))]

use flexshm_core::internal::{
    decode_field_entry, descriptor_len, encode_entry, meta_offset, DESCRIPTOR_OFFSET,
    DESCRIPTOR_PREAMBLE, FIELD_ENTRY_LEN, FIELD_META_LEN, FRONTEND_AREA, FRONTEND_AREA_LEN, MAGIC,
    SLOT_ALIGN, SLOT_HEADER_LEN, STR_CODE, VERSION,
};
use flexshm_core::{
    AlignedBuf, Dtype, Dynamic, FieldDef, Kind, Layout, Mode, Region, Value, Writer,
};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

/// The seed's SensorData, as §16 of the document declares it.
const SENSOR: &[FieldDef] = &[
    FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
    FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
    FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
    FieldDef::new("status_msg", Kind::str(32)),
];

const FIFO_SLOTS: u32 = 10;

// ---------------------------------------------------------------------------------------
// Parsing the document

/// The lines that follow the marker `<!-- check: name -->`, which must occur exactly once.
fn after_marker(name: &str) -> std::str::Lines<'static> {
    let marker = format!("<!-- check: {name} -->");
    let mut parts = DOC.split(&marker);
    parts.next();
    let rest = parts
        .next()
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no marker {marker}"));
    assert!(
        parts.next().is_none(),
        "marker {marker} occurs more than once"
    );
    rest.lines()
}

/// The data rows of the markdown table after the marker: cells trimmed, backticks removed.
fn table(name: &str) -> Vec<Vec<String>> {
    let rows: Vec<Vec<String>> = after_marker(name)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| {
            let l = l.trim();
            l[1..l.len() - 1]
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect();
    assert!(rows.len() > 2, "table {name} has no data rows");
    assert!(
        rows[1].iter().all(|c| c.chars().all(|ch| ch == '-')),
        "table {name}: second line is not a separator"
    );
    rows[2..].to_vec()
}

/// The hex dump in the ```text block after the marker: (address if the line has one,
/// bytes).
fn hex_block(name: &str) -> Vec<(Option<usize>, Vec<u8>)> {
    let mut lines = after_marker(name).skip_while(|l| l.trim().is_empty());
    assert_eq!(
        lines.next().map(str::trim),
        Some("```text"),
        "hex block {name}"
    );
    let mut out = Vec::new();
    for l in lines {
        if l.trim() == "```" {
            return out;
        }
        let tokens: Vec<&str> = l.split_whitespace().collect();
        let (addr, bytes) = match tokens.first() {
            Some(t) if t.len() == 4 => (Some(usize::from_str_radix(t, 16).unwrap()), &tokens[1..]),
            _ => (None, &tokens[..]),
        };
        let bytes = bytes
            .iter()
            .map(|b| {
                assert_eq!(b.len(), 2, "hex block {name}: bad byte {b:?}");
                u8::from_str_radix(b, 16).unwrap()
            })
            .collect();
        out.push((addr, bytes));
    }
    panic!("hex block {name} is not closed");
}

/// A number as the document writes it: decimal, or hex with `0x`, `_` allowed.
fn num(s: &str) -> u64 {
    let s = s.replace('_', "");
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// The first number in a cell ("11, 22, …" → 11).
fn first_num(s: &str) -> u64 {
    num(s
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap())
}

/// A byte range as the document writes it: "4..20" or "3".
fn range(s: &str) -> std::ops::Range<usize> {
    match s.split_once("..") {
        Some((a, b)) => num(a) as usize..num(b) as usize,
        None => num(s) as usize..num(s) as usize + 1,
    }
}

// ---------------------------------------------------------------------------------------
// Segments built by the real writer

fn layout() -> Layout<&'static [FieldDef]> {
    Layout::new(SENSOR).unwrap()
}

/// A single-slot SensorData segment after the write §16.4 shows.
fn single_segment() -> Box<AlignedBuf<4096>> {
    let mut mem = Box::new(AlignedBuf::<4096>::new());
    let region = Region::new(&mut mem.0).unwrap();
    let mut w = Writer::<Dynamic<_>>::create(region, SENSOR, Mode::Single).unwrap();
    w.write_named(&[
        ("temperature", Value::Float(23.5)),
        ("pressure", Value::Float(1013.25)),
        ("timestamp", Value::Float(1_700_000_000.5)),
        ("status_msg", Value::Str("OK")),
    ])
    .unwrap();
    mem
}

/// A FIFO slots=10 SensorData segment after `commits` records; record c has
/// temperature = c.
fn fifo_segment(commits: u32) -> Box<AlignedBuf<4096>> {
    let mut mem = Box::new(AlignedBuf::<4096>::new());
    let region = Region::new(&mut mem.0).unwrap();
    let mut w =
        Writer::<Dynamic<_>>::create(region, SENSOR, Mode::Fifo { slots: FIFO_SLOTS }).unwrap();
    for c in 1..=commits {
        w.write_named(&[("temperature", Value::Float(c as f64))])
            .unwrap();
        assert_eq!(w.finalize(), c);
    }
    mem
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap())
}

fn f64_at(bytes: &[u8], off: usize) -> f64 {
    f64::from_le_bytes(bytes[off..off + 8].try_into().unwrap())
}

/// FNV-1a 64 as §6 defines it, written independently of the crate's.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// The checks

#[test]
fn header_table_matches_the_bytes_a_writer_leaves() {
    let l = layout();
    let single = single_segment();
    let fifo = fifo_segment(1);
    let rows = table("header-words");
    let mut next = 0usize;
    let mut seen = Vec::new();
    for r in &rows {
        let (off, name) = (num(&r[0]) as usize, r[2].as_str());
        let size = if name == "descriptor" {
            assert_eq!(r[1], "D", "descriptor size is given as D");
            descriptor_len(SENSOR.len())
        } else {
            num(&r[1]) as usize
        };
        assert_eq!(
            off, next,
            "header row {name}: rows must be contiguous from 0"
        );
        next = off + size;
        seen.push(name.to_string());
        for (mem, fifo_mode) in [(&single.0, false), (&fifo.0, true)] {
            let slots = if fifo_mode { FIFO_SLOTS } else { 1 };
            let expect = match name {
                "magic" => Some(MAGIC),
                "version" => Some(VERSION),
                "flags" => Some(fifo_mode as u32),
                "slots" => Some(slots),
                "hash_lo" => Some(l.hash() as u32),
                "hash_hi" => Some((l.hash() >> 32) as u32),
                "descriptor_len" => Some(descriptor_len(SENSOR.len()) as u32),
                "slots_offset" => Some(l.slots_offset() as u32),
                "slot_size" => Some(l.slot_size() as u32),
                "slot_stride" => Some(l.slot_stride() as u32),
                "total_size" => Some(l.segment_size(slots).unwrap() as u32),
                "head" => Some(1),
                "reserved" | "frontend area" => {
                    assert!(
                        mem[off..off + size].iter().all(|&b| b == 0),
                        "{name} at {off} is not zero"
                    );
                    None
                }
                "descriptor" => {
                    assert_eq!(off, DESCRIPTOR_OFFSET);
                    let d = &mem[off..off + size];
                    assert_eq!(u32_at(d, 0) as usize, SENSOR.len());
                    // §6: the hash is FNV-1a over exactly these bytes.
                    assert_eq!(fnv1a(d), l.hash());
                    None
                }
                other => panic!("header table names an unknown word {other:?}"),
            };
            if let Some(v) = expect {
                assert_eq!(size, 4, "{name} is a word");
                assert_eq!(u32_at(mem, off), v, "header word {name} at offset {off}");
            }
        }
        if name == "frontend area" {
            assert_eq!((off, size), (FRONTEND_AREA, FRONTEND_AREA_LEN));
        }
    }
    for name in [
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
        "head",
        "frontend area",
        "descriptor",
    ] {
        assert!(seen.iter().any(|s| s == name), "header table lacks {name}");
    }
    assert_eq!(MAGIC.to_le_bytes(), *b"FXSM");
}

#[test]
fn type_codes_match_dtype() {
    let rows = table("type-codes");
    assert_eq!(
        rows.len(),
        Dtype::ALL.len() + 1,
        "one row per dtype plus str"
    );
    for r in &rows {
        let code = num(&r[0]) as u8;
        if r[1] == "str[N]" {
            assert_eq!(code, STR_CODE);
            assert_eq!(r[2], "size 4N, alignment 1");
            let k = Kind::str(7);
            assert_eq!((k.data_size(), k.align()), (Some(28), 1));
            continue;
        }
        let d = Dtype::from_code(code).unwrap_or_else(|| panic!("code {code} is not a dtype"));
        assert_eq!(d.name(), r[1], "code {code}");
        assert_eq!(d.size() as u64, num(&r[2]), "size of {}", r[1]);
        assert_eq!(Kind::Scalar(d).align(), d.size(), "alignment of {}", r[1]);
    }
    // The document says codes 0 and 13..255 are invalid.
    let mut e = [0u8; FIELD_ENTRY_LEN];
    encode_entry(&FieldDef::new("x", Kind::Scalar(Dtype::I32)), &mut e);
    assert!(decode_field_entry(&e).is_ok());
    for bad in [0u8, 13, 255] {
        e[0] = bad;
        assert!(decode_field_entry(&e).is_err(), "code {bad} accepted");
    }
}

#[test]
fn field_entry_table_matches_encoder() {
    let probe = FieldDef::new("ab", Kind::array(Dtype::U16, &[3, 5]));
    let mut e = [0u8; FIELD_ENTRY_LEN];
    encode_entry(&probe, &mut e);
    let mut dims = Vec::new();
    for d in [3u32, 5, 0, 0] {
        dims.extend_from_slice(&d.to_le_bytes());
    }
    let mut name = b"ab".to_vec();
    name.resize(44, 0);
    let mut next = 0;
    for r in table("field-entry") {
        let span = range(&r[0]);
        assert_eq!(span.start, next, "field entry rows must be contiguous");
        next = span.end;
        let expect: Vec<u8> = match r[1].as_str() {
            "code" => vec![Dtype::U16.code()],
            "ndim" => vec![2],
            "name_len" => vec![2],
            "zero" => vec![0],
            "dims" => dims.clone(),
            "name" => name.clone(),
            other => panic!("unknown field entry part {other:?}"),
        };
        assert_eq!(
            &e[span.clone()],
            &expect[..],
            "entry bytes {span:?} ({})",
            r[1]
        );
    }
    assert_eq!(next, FIELD_ENTRY_LEN);
}

#[test]
fn entry_hex_matches_encoder_and_segment() {
    let doc: Vec<u8> = hex_block("entry-hex")
        .into_iter()
        .flat_map(|(addr, b)| {
            assert!(addr.is_none());
            b
        })
        .collect();
    let mut e = [0u8; FIELD_ENTRY_LEN];
    encode_entry(&SENSOR[3], &mut e);
    assert_eq!(doc, e);
    let seg = single_segment();
    let at = DESCRIPTOR_OFFSET + DESCRIPTOR_PREAMBLE + 3 * FIELD_ENTRY_LEN;
    assert_eq!(&seg.0[at..at + FIELD_ENTRY_LEN], &doc[..]);
}

#[test]
fn sensordata_quantities() {
    let l = layout();
    for r in table("sensordata-quantities") {
        let v = num(&r[1]);
        let expect = match r[0].as_str() {
            "field count n" => SENSOR.len() as u64,
            "descriptor_len" => descriptor_len(SENSOR.len()) as u64,
            "slots_offset" => l.slots_offset() as u64,
            "slot_size" => l.slot_size() as u64,
            "slot_stride" => l.slot_stride() as u64,
            "layout hash" => l.hash(),
            "hash_lo" => l.hash() & 0xffff_ffff,
            "hash_hi" => l.hash() >> 32,
            "total_size, single-slot" => l.segment_size(1).unwrap() as u64,
            "total_size, FIFO slots=10" => l.segment_size(FIFO_SLOTS).unwrap() as u64,
            other => panic!("unknown quantity {other:?}"),
        };
        assert_eq!(v, expect, "{}", r[0]);
    }
    assert_eq!(l.slot_stride() % SLOT_ALIGN, 0);
}

#[test]
fn sensordata_segment_map() {
    let l = layout();
    let entry = |i: usize| DESCRIPTOR_OFFSET + DESCRIPTOR_PREAMBLE + i * FIELD_ENTRY_LEN;
    let desc_end = DESCRIPTOR_OFFSET + descriptor_len(SENSOR.len());
    let stride = l.slot_stride();
    let buffer = |k: usize| l.slots_offset() + k * stride;
    let mut expected: Vec<(String, usize, Option<usize>)> = vec![
        ("header words".into(), 0, Some(FRONTEND_AREA)),
        (
            "frontend area".into(),
            FRONTEND_AREA,
            Some(FRONTEND_AREA_LEN),
        ),
        (
            "descriptor count".into(),
            DESCRIPTOR_OFFSET,
            Some(DESCRIPTOR_PREAMBLE),
        ),
    ];
    for (i, f) in SENSOR.iter().enumerate() {
        expected.push((
            format!("entry {i} {}", f.name),
            entry(i),
            Some(FIELD_ENTRY_LEN),
        ));
    }
    expected.push((
        "padding".into(),
        desc_end,
        Some(l.slots_offset() - desc_end),
    ));
    expected.push(("buffer 0".into(), buffer(0), Some(stride)));
    expected.push(("buffer 1".into(), buffer(1), Some(stride)));
    expected.push(("end, single-slot".into(), l.segment_size(1).unwrap(), None));
    let rows = table("sensordata-segment");
    let found: Vec<(String, usize, Option<usize>)> = rows
        .iter()
        .map(|r| {
            let size = (!r[2].is_empty()).then(|| num(&r[2]) as usize);
            (r[0].clone(), num(&r[1]) as usize, size)
        })
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn sensordata_fifo10_buffers() {
    let l = layout();
    let nbuf = FIFO_SLOTS as usize + 1;
    // One more commit than slots: buffer 0 then holds commit 11.
    let seg = fifo_segment(FIFO_SLOTS + 1);
    let rows = table("sensordata-fifo10");
    assert_eq!(rows.len(), nbuf + 1, "one row per buffer plus the end");
    for (k, r) in rows[..nbuf].iter().enumerate() {
        assert_eq!(num(&r[0]) as usize, k);
        let start = num(&r[1]) as usize;
        assert_eq!(
            start,
            l.slots_offset() + k * l.slot_stride(),
            "buffer {k} start"
        );
        let commit = first_num(&r[2]) as usize;
        assert_eq!(commit % nbuf, k, "buffer {k} holds commit {commit}");
        let (t, s) = r[3].split_once('/').unwrap();
        assert_eq!(num(t.trim()) as usize, start + l.offset(0));
        assert_eq!(num(s.trim()) as usize, start + l.offset(3));
        // The real writer put that commit there, with temperature = commit number.
        assert_eq!(
            u32_at(&seg.0, start + 4),
            commit as u32,
            "buffer {k} commit word"
        );
        assert_eq!(f64_at(&seg.0, num(t.trim()) as usize), commit as f64);
    }
    let end = &rows[nbuf];
    assert_eq!(end[0], "end");
    assert_eq!(num(&end[1]) as usize, l.segment_size(FIFO_SLOTS).unwrap());
}

#[test]
fn sensordata_slot_layout() {
    let l = layout();
    let mut expected: Vec<(String, usize, usize)> = vec![
        ("seq".into(), 0, 4),
        ("commit".into(), 4, 4),
        ("flags".into(), 8, 4),
        ("reserved".into(), 12, SLOT_HEADER_LEN - 12),
    ];
    for (i, f) in SENSOR.iter().enumerate() {
        expected.push((
            format!("meta {i} {}", f.name),
            meta_offset(i),
            FIELD_META_LEN,
        ));
    }
    for (i, f) in SENSOR.iter().enumerate() {
        expected.push((f.name.to_string(), l.offset(i), l.size(i)));
    }
    expected.push((
        "padding".into(),
        l.slot_size(),
        l.slot_stride() - l.slot_size(),
    ));
    let found: Vec<(String, usize, usize)> = table("sensordata-slot")
        .iter()
        .map(|r| (r[0].clone(), num(&r[1]) as usize, num(&r[2]) as usize))
        .collect();
    assert_eq!(found, expected);

    // The buffer header words sit where the table says: buffer 1 after one write.
    let seg = single_segment();
    let b1 = l.slots_offset() + l.slot_stride();
    let at = |name: &str| b1 + found.iter().find(|r| r.0 == name).unwrap().1;
    assert_eq!(u32_at(&seg.0, at("seq")), 2);
    assert_eq!(u32_at(&seg.0, at("commit")), 1);
    assert_eq!(u32_at(&seg.0, at("flags")), 1);
    assert_eq!(f64_at(&seg.0, at("temperature")), 23.5);
}

#[test]
fn sensordata_hex_dumps_match_a_real_segment() {
    let seg = single_segment();
    for block in ["sensordata-header-hex", "sensordata-buffer1-hex"] {
        let lines = hex_block(block);
        assert!(!lines.is_empty());
        for (addr, bytes) in lines {
            let addr = addr.unwrap_or_else(|| panic!("{block}: line without address"));
            assert_eq!(
                &seg.0[addr..addr + bytes.len()],
                &bytes[..],
                "{block}: bytes at {addr:#06x}"
            );
        }
    }
}

#[test]
fn padding_example_matches_layout() {
    const FIELDS: &[FieldDef] = &[
        FieldDef::new("flag", Kind::Scalar(Dtype::Bool)),
        FieldDef::new("label", Kind::str(3)),
        FieldDef::new("count", Kind::Scalar(Dtype::I16)),
        FieldDef::new("value", Kind::Scalar(Dtype::F64)),
        FieldDef::new("raw", Kind::array(Dtype::U8, &[2, 3])),
    ];
    let l = Layout::new(FIELDS).unwrap();
    let mut expected: Vec<(String, usize, Option<usize>)> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.to_string(), l.offset(i), Some(l.size(i))))
        .collect();
    expected.push(("slot_size".into(), l.slot_size(), None));
    expected.push(("slot_stride".into(), l.slot_stride(), None));
    let found: Vec<(String, usize, Option<usize>)> = table("padding-example")
        .iter()
        .map(|r| {
            let size = (!r[2].is_empty()).then(|| num(&r[2]) as usize);
            (r[0].clone(), num(&r[1]) as usize, size)
        })
        .collect();
    assert_eq!(found, expected);
}

/// §13.2's example: a reader opens a 4-slot FIFO at head 2, the writer commits 10 more
/// records, and the reader's reads return what the table says.
#[test]
fn fifo_new_reader_example() {
    use flexshm_core::{Error, ReadOptions, Reader};
    let mode = Mode::Fifo { slots: 4 };
    let l = layout();
    let mut mem = Box::new(AlignedBuf::<4096>::new());
    let len = l.segment_size(4).unwrap();
    let region = Region::new(&mut mem.0[..len]).unwrap();
    let mut w = Writer::<Dynamic<_>>::create(region, SENSOR, mode).unwrap();
    let commit = |w: &mut Writer<'_, Dynamic<&'static [FieldDef]>>| {
        let c = w.head() + 1;
        w.write_named(&[("temperature", Value::Float(c as f64))])
            .unwrap();
        assert_eq!(w.finalize(), c);
    };
    commit(&mut w);
    commit(&mut w);
    assert_eq!(w.head(), 2);
    let mut r = Reader::<Dynamic<_>>::open_with(region, SENSOR).unwrap();
    for _ in 0..10 {
        commit(&mut w);
    }
    assert_eq!(w.head(), 12);
    let mut buf = vec![0u8; r.snapshot_len()];
    let rows = table("fifo-new-reader");
    assert!(!rows.is_empty());
    let mut lost = 0u64;
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(num(&row[0]) as usize, k + 1, "reads are numbered from 1");
        let got = r.try_read(&mut buf, ReadOptions::default());
        match row[1].strip_prefix("commit ") {
            Some(c) => {
                let snap = got.unwrap_or_else(|e| panic!("read {}: {e}", k + 1));
                assert_eq!(snap.commit() as u64, num(c), "read {}", k + 1);
                assert_eq!(snap.lost() as u64, num(&row[2]), "read {} loss", k + 1);
                assert_eq!(
                    snap.get(0).unwrap(),
                    flexshm_core::FieldValue::Float(num(c) as f64)
                );
                lost += num(&row[2]);
            }
            None => {
                assert_eq!(row[1], "no record");
                assert_eq!(got.err(), Some(Error::NoRecord), "read {}", k + 1);
            }
        }
    }
    assert_eq!(r.lost_total(), lost);
    assert_eq!(lost, 8, "the text after the table says the total is 8");
}
