//! Loops of writes or reads of one record type, for `perf record` / callgrind:
//! `profile_write sensor|pose|blob write|read [N]`.
use flexshm_bench::{leaked_region, sample_sensor, segment_size, Blob64, Pose};
use flexshm_core::{Mode, ReadOptions, Reader, Record, Writer};

fn run<R: Record + Default>(rec: R, what: &str, n: u64) {
    let region = leaked_region(segment_size(R::FIELDS, Mode::Single));
    let mut w = Writer::<R>::create(region, Mode::Single).unwrap();
    let mut r = Reader::<R>::open(region).unwrap();
    let mut buf = vec![0u8; R::SNAPSHOT_LEN];
    let mut out = R::default();
    w.write(&rec).unwrap();
    for _ in 0..n {
        if what == "write" {
            w.write(std::hint::black_box(&rec)).unwrap();
        } else {
            r.try_read(&mut buf, ReadOptions::default())
                .unwrap()
                .decode(&mut out)
                .unwrap();
            std::hint::black_box(&out);
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let what = a.get(2).map(|s| s.as_str()).unwrap_or("write");
    let n: u64 = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(5_000_000);
    match a.get(1).map(|s| s.as_str()).unwrap_or("sensor") {
        "pose" => run(
            Pose {
                x: 1.0,
                ..Default::default()
            },
            what,
            n,
        ),
        "blob" => run(Blob64::default(), what, n),
        _ => run(sample_sensor(1), what, n),
    }
}
