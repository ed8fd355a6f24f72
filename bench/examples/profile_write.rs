//! A loop of SensorData writes and reads, for `perf record` / callgrind.
use flexshm_bench::{leaked_region, sample_sensor, segment_size, SensorData};
use flexshm_core::{Mode, ReadOptions, Record, TypedReader, TypedWriter};

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "write".into());
    let n: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_000);
    let region = leaked_region(segment_size(SensorData::FIELDS, Mode::Single));
    let mut w = TypedWriter::<SensorData>::create(region, Mode::Single).unwrap();
    let mut r = TypedReader::<SensorData>::open(region).unwrap();
    let rec = sample_sensor(1);
    let mut buf = vec![0u8; SensorData::SNAPSHOT_LEN];
    let mut out = SensorData::default();
    w.write(&rec).unwrap();
    let mut acc = 0.0;
    for _ in 0..n {
        if what == "write" {
            w.write(std::hint::black_box(&rec)).unwrap();
        } else {
            r.try_read(&mut buf, ReadOptions::default(), &mut out)
                .unwrap();
            acc += out.temperature;
        }
    }
    println!("{acc}");
}
