//! The benchmark records round-trip through flexshm unchanged (a benchmark that moved
//! the wrong bytes would measure nothing).

use flexshm_bench::{leaked_region, sample_sensor, segment_size, Blob64, Pose, SensorData};
use flexshm_core::{Mode, ReadOptions, Record, TypedReader, TypedWriter};

fn round_trip<R: Record + Default + PartialEq + std::fmt::Debug>(rec: &R, mode: Mode) {
    let region = leaked_region(segment_size(R::FIELDS, mode));
    let mut w = TypedWriter::<R>::create(region, mode).unwrap();
    let mut r = TypedReader::<R>::open(region).unwrap();
    w.write(rec).unwrap();
    w.finalize();
    let mut buf = vec![0u8; R::SNAPSHOT_LEN];
    let mut out = R::default();
    r.try_read(&mut buf, ReadOptions::default(), &mut out)
        .unwrap();
    assert_eq!(&out, rec);
}

#[test]
fn records_round_trip() {
    let mut b = Blob64::default();
    b.data[..8].copy_from_slice(&12345u64.to_le_bytes());
    b.data[63] = 9;
    round_trip(&b, Mode::Single);
    round_trip(
        &Pose {
            seq: 42.0,
            x: 1.5,
            ..Default::default()
        },
        Mode::Single,
    );
    round_trip::<SensorData>(&sample_sensor(7), Mode::Fifo { slots: 4 });
}
