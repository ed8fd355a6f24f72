//! Writes the seed inputs of every fuzz target into `fuzz/seeds/<target>/`: valid
//! segments of every mode and field kind (the golden vectors of tests/vectors, and
//! segments of the harness's schemas after a few writes), each in the target's input
//! format. `make fuzz-seeds` runs it; the seeds are checked in.

use std::fs;
use std::path::{Path, PathBuf};

use flexshm_core::internal::DESCRIPTOR_OFFSET;
use flexshm_core::{Layout, Mode};
use flexshm_fuzz::exercise::{build, H_HEAD};
use flexshm_fuzz::input::Input;
use flexshm_fuzz::mem::Mem;
use flexshm_fuzz::schemas::SCHEMAS;

/// Deterministic filler bytes (xorshift), for the values written into seed segments.
fn filler(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// The mode byte the targets decode (`exercise::mode` with 8 slots at most).
fn mode_byte(mode: Mode) -> u8 {
    match mode {
        Mode::Single => 0,
        Mode::Fifo { slots } => slots as u8,
    }
}

/// Index of a schema in `SCHEMAS`.
fn schema_index(fields: &[flexshm_core::FieldDef]) -> u8 {
    SCHEMAS.iter().position(|s| s.fields == fields).unwrap() as u8
}

/// Every read option, plain and blocking (with a short timeout), in the targets' op
/// encoding, each followed by the two timeout/poll bytes a read takes.
const READS: &[u8] = &[0, 9, 3, 1, 5, 2, 2, 1, 3, 4, 0, 6, 4, 4, 6, 4, 8, 7, 2, 3];

fn main() {
    flexshm_fuzz::self_check();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let _ = fs::remove_dir_all(&root);
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");

    // Segments: the golden vectors and the harness's schemas, single-slot and FIFO.
    let mut segments: Vec<(String, &'static [flexshm_core::FieldDef], Mode, Vec<u8>)> = Vec::new();
    for case in flexshm_vectors::CASES {
        let bytes = fs::read(vectors.join(format!("{}.bin", case.name))).unwrap();
        // The file is what the case leaves; run it to be sure the seeds match the code.
        let mem = Mem::new(case.region_len);
        (case.run)(mem.region());
        assert_eq!(
            mem.bytes(),
            bytes,
            "tests/vectors/{}.bin is stale",
            case.name
        );
        segments.push((case.name.to_string(), case.fields, case.mode, bytes));
    }
    for (k, s) in SCHEMAS.iter().enumerate() {
        for mode in [Mode::Single, Mode::Fifo { slots: 3 }] {
            let writes = filler(k as u64 * 31 + mode.slots() as u64, 4096);
            let mem = build(s.fields, mode, 5, &mut Input::new(&writes));
            let name = format!(
                "{}_{}",
                s.name,
                if mode.is_fifo() { "fifo3" } else { "single" }
            );
            segments.push((name, s.fields, mode, mem.bytes()));
        }
    }

    // descriptor_entry: the descriptors' entries, up to three at a time, once per schema.
    let mut seen: Vec<&[flexshm_core::FieldDef]> = Vec::new();
    for (name, fields, _, bytes) in &segments {
        if seen.contains(fields) {
            continue;
        }
        seen.push(fields);
        let entries = &bytes[DESCRIPTOR_OFFSET + 4..DESCRIPTOR_OFFSET + 4 + 64 * fields.len()];
        for (i, chunk) in entries.chunks(3 * 64).enumerate() {
            put(
                &root.join("descriptor_entry"),
                &format!("{name}_{i}"),
                chunk,
            );
        }
    }

    // open_segment: `[ctl] [schema] [n] [decisions] [region]`.
    for (name, fields, _, bytes) in &segments {
        let mut input = vec![0, schema_index(fields), READS.len() as u8 + 1];
        input.extend_from_slice(READS);
        input.push(1); // attach a writer and read back
        input.extend_from_slice(bytes);
        put(&root.join("open_segment"), name, &input);
    }

    // read_buffers: `[schema] [mode] [head] [n] [ops] [buffers]`.
    for (name, fields, mode, bytes) in &segments {
        let l = Layout::new(*fields).unwrap();
        let head = u32::from_le_bytes(bytes[H_HEAD..H_HEAD + 4].try_into().unwrap());
        let mut ops = vec![4u8]; // retries
        ops.extend_from_slice(READS);
        // A store to a seq word, two reads, a write, a read.
        ops.extend_from_slice(&[0xA0, 0, 0, 1, 0, 0, 1, 0, 0, 0xE1, 0, 3, 0, 1, 0, 0]);
        let mut input = vec![schema_index(fields), mode_byte(*mode)];
        input.extend_from_slice(&head.to_le_bytes());
        input.push(ops.len() as u8);
        input.extend_from_slice(&ops);
        input.extend_from_slice(&bytes[l.slots_offset()..]);
        put(&root.join("read_buffers"), name, &input);
    }

    // mutate_segment: `[base] [mode] [records] [flags] [writes] [count] [mutations] [decisions]`.
    for base in 0..flexshm_vectors::CASES.len() as u8 {
        let mut input = vec![base, 0, 0, 0, 0];
        input.extend_from_slice(READS);
        put(
            &root.join("mutate_segment"),
            &format!("vector{base}"),
            &input,
        );
    }
    for (k, s) in SCHEMAS.iter().enumerate() {
        for mode in [0u8, 3] {
            let base = flexshm_vectors::CASES.len() as u8 + k as u8;
            let mut input = vec![base, mode, 4, 0];
            input.extend_from_slice(&filler(k as u64 + 7, 160));
            // Then: two mutations (a meta info word, a payload byte), reads, attach.
            input.extend_from_slice(&[2, 6, 1, 0, 0, 1, 8, 0, 5, 0, 0xFF]);
            input.extend_from_slice(READS);
            input.push(1);
            put(
                &root.join("mutate_segment"),
                &format!("{}_{mode}", s.name),
                &input,
            );
        }
    }
    for t in [
        "descriptor_entry",
        "open_segment",
        "read_buffers",
        "mutate_segment",
    ] {
        let n = fs::read_dir(root.join(t)).unwrap().count();
        println!("seeds/{t}: {n} inputs");
    }
}
