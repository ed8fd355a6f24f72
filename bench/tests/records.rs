//! The benchmark records round-trip through flexshm unchanged (a benchmark that moved
//! the wrong bytes would measure nothing), through the core and through flexshm-std, and
//! the wake-up counter the commit-cost benchmark reads moves with the writer's wake-ups.

use std::time::Duration;

use flexshm_bench::{
    leaked_region, sample_sensor, segment_size, Blob64, Pose, SensorData, ShmFile, WakeCounter,
};
use flexshm_core::{Mode, ReadOptions, Reader, Record, Writer};
use flexshm_std::CreateOptions;

fn round_trip<R: Record + Default + PartialEq + std::fmt::Debug>(rec: &R, mode: Mode) {
    let region = leaked_region(segment_size(R::FIELDS, mode));
    let mut w = Writer::<R>::create(region, mode).unwrap();
    let mut r = Reader::<R>::open(region).unwrap();
    w.write(rec).unwrap();
    w.finalize();
    let mut buf = vec![0u8; R::SNAPSHOT_LEN];
    let mut out = R::default();
    r.try_read(&mut buf, ReadOptions::default())
        .unwrap()
        .decode(&mut out)
        .unwrap();
    assert_eq!(&out, rec);
}

fn std_round_trip<R: Record + Default + PartialEq + std::fmt::Debug>(rec: &R, opts: CreateOptions) {
    let name = format!(
        "flexshm-bench-test-{}-{}",
        std::process::id(),
        R::FIELDS.len()
    );
    let mut w = flexshm_std::Writer::<R>::create(&name, &opts).unwrap();
    let mut r = flexshm_std::Reader::<R>::open(&name).unwrap();
    w.write(rec).unwrap();
    w.finalize().unwrap();
    let mut out = R::default();
    r.read(ReadOptions::default(), Duration::from_secs(1))
        .unwrap()
        .decode(&mut out)
        .unwrap();
    flexshm_std::unlink(&name).unwrap();
    assert_eq!(&out, rec);
}

fn blob() -> Blob64 {
    let mut b = Blob64::default();
    b.data[..8].copy_from_slice(&12345u64.to_le_bytes());
    b.data[63] = 9;
    b
}

fn pose() -> Pose {
    Pose {
        seq: 42.0,
        x: 1.5,
        ..Default::default()
    }
}

#[test]
fn records_round_trip() {
    round_trip(&blob(), Mode::Single);
    round_trip(&pose(), Mode::Single);
    round_trip::<SensorData>(&sample_sensor(7), Mode::Fifo { slots: 4 });
}

#[test]
fn records_round_trip_through_flexshm_std() {
    std_round_trip(&blob(), CreateOptions::default());
    std_round_trip(&pose(), CreateOptions::default());
    std_round_trip::<SensorData>(&sample_sensor(7), CreateOptions::fifo(4));
}

#[test]
fn wake_counter_counts_the_writers_wake_ups() {
    let name = format!("flexshm-bench-test-wake-{}", std::process::id());
    let mut w = flexshm_std::Writer::<Pose>::create(&name, &CreateOptions::default()).unwrap();
    let file = ShmFile::open_read_only(&name).unwrap();
    let wakes = WakeCounter::new(&file);
    let before = wakes.get();
    // Commits further apart than the writer's least gap between wake-ups each wake.
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(1));
        w.write(&Pose {
            seq: i as f64,
            ..Default::default()
        })
        .unwrap();
    }
    let after_slow = wakes.get();
    // A burst of commits within a few microseconds wakes at most once or twice.
    for i in 0..100 {
        w.write(&Pose {
            seq: i as f64,
            ..Default::default()
        })
        .unwrap();
    }
    let after_burst = wakes.get();
    drop(file);
    flexshm_std::unlink(&name).unwrap();
    assert_eq!(after_slow.wrapping_sub(before), 3);
    assert!(after_burst.wrapping_sub(after_slow) < 100);
}
