//! Schema descriptor entries (docs/PROTOCOL.md §5) from arbitrary bytes: the input is cut
//! into up to three 64-byte entries (the last one zero-padded). Each entry either decodes
//! to a field whose encoding is exactly the same 64 bytes (entries are canonical) or is a
//! `CorruptHeader`; decoded fields form a schema whose layout hash is the FNV-1a hash of
//! the descriptor, unless two share a name or the record is too large.
#![no_main]

use flexshm_core::internal::{decode_field_entry, encode_entry, fnv1a64, FIELD_ENTRY_LEN};
use flexshm_core::{Error, Kind, Layout, MAX_NAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = Vec::new();
    let mut descriptor = Vec::new();
    for chunk in data.chunks(FIELD_ENTRY_LEN).take(3) {
        let mut e = [0u8; FIELD_ENTRY_LEN];
        e[..chunk.len()].copy_from_slice(chunk);
        match decode_field_entry(&e) {
            Ok(f) => {
                let mut again = [0xA5u8; FIELD_ENTRY_LEN];
                encode_entry(&f, &mut again);
                assert_eq!(again, e, "entry is not canonical: {f:?}");
                let name = f.name.as_str();
                assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN && !name.contains('\0'));
                assert!(f.kind.data_size().is_some());
                if let Kind::Array { dims, .. } = f.kind {
                    assert!((1..=4).contains(&dims.ndim()));
                }
                assert!(!f.kind.to_string().is_empty());
                descriptor.extend_from_slice(&e);
                fields.push(f);
            }
            Err(Error::CorruptHeader { what }) => {
                assert!(!what.is_empty());
                return;
            }
            Err(e) => panic!("unexpected error decoding an entry: {e:?}"),
        }
    }
    let mut d = (fields.len() as u32).to_le_bytes().to_vec();
    d.extend_from_slice(&descriptor);
    match Layout::new(fields.as_slice()) {
        Ok(l) => {
            assert_eq!(l.hash(), fnv1a64(&d));
            assert!(l.slot_size() % 4 == 0 && l.slot_size() < 1 << 31);
            for i in 0..fields.len() {
                let end = l.offset(i) + l.size(i);
                assert!(end <= l.slot_size());
                assert_eq!(l.offset(i) % fields[i].kind.align() as usize, 0);
                if i + 1 < fields.len() {
                    assert!(end <= l.offset(i + 1), "fields {i} and {} overlap", i + 1);
                }
            }
        }
        Err(Error::InvalidField { .. }) => {}
        Err(e) => panic!("unexpected layout error: {e:?}"),
    }
});
