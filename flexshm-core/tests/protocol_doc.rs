use flexshm_core::layout::*;
use flexshm_core::schema::*;
use flexshm_core::*;

const FIELDS: &[FieldDef] = &[
    FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
    FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
    FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
    FieldDef::new("status_msg", Kind::str(32)),
];

#[test]
fn print() {
    let l = Layout::new(FIELDS).unwrap();
    println!(
        "slot_size {} stride {} slots_offset {} hash {:#018x}",
        l.slot_size(),
        l.slot_stride(),
        l.slots_offset(),
        l.hash()
    );
    for i in 0..4 {
        println!(
            "field {i} meta {} off {} size {}",
            meta_offset(i),
            l.offset(i),
            l.size(i)
        );
    }
    println!(
        "seg single {} fifo10 {}",
        l.segment_size(1).unwrap(),
        l.segment_size(10).unwrap()
    );
    println!("desc len {}", descriptor_len(4));
    for f in FIELDS {
        let mut e = [0u8; 64];
        encode_entry(f, &mut e);
        println!("{:02x?}", e);
    }
    let mut mem = AlignedBuf::<4096>::new();
    {
        let r = Region::new(&mut mem.0).unwrap();
        let mut w = Writer::create(r, FIELDS, Mode::Single).unwrap();
        w.write_named(&[
            ("temperature", Value::Float(23.5)),
            ("pressure", Value::Float(1013.25)),
            ("timestamp", Value::Float(1700000000.5)),
            ("status_msg", Value::Str("OK")),
        ])
        .unwrap();
    }
    for row in mem.0[..l.segment_size(1).unwrap()].chunks(16).enumerate() {
        println!("{:04x}: {:02x?}", row.0 * 16, row.1);
    }
}
