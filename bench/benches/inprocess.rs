//! In-process figures (criterion): write and read of the seed's SensorData in single-slot
//! and FIFO mode (through flexshm-core, and through flexshm-std's named segments), a read
//! while a writer thread hammers, the 640×480×3 image write + read, against a plain copy
//! of the same bytes and against mmap-sync.
//!
//! After criterion has run, the program prints the section's table (medians and ratios
//! to the baseline) and the allocations per call, counted by a wrapping allocator.
//!
//! `cargo bench --bench inprocess` (full) or `... -- --quick` (short).

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use flexshm_bench::stats::{fmt_ns, fmt_ratio};
use flexshm_bench::table::Table;
use flexshm_bench::{
    leaked_region, pin_to_cpu, sample_sensor, segment_size, Blob64, Pose, SensorData, IMAGE_FIELDS,
    IMG_BYTES, IMG_C, IMG_H, IMG_W, SENSOR_PAYLOAD,
};
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, FieldDef, Mode, ReadOptions, Reader, Record, Value, Writer,
};

/// Counts allocations, to show the hot paths allocate nothing.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: AllocLayout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The record mmap-sync carries: the same four fields as SensorData.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, PartialEq)]
#[archive_attr(derive(bytecheck::CheckBytes))]
struct SensorRkyv {
    temperature: f64,
    pressure: f64,
    timestamp: f64,
    status_msg: String,
}

type MmapSync = mmap_sync::synchronizer::Synchronizer;

fn mmap_sync_pair(tag: &str) -> (MmapSync, MmapSync) {
    let prefix = format!(
        "/dev/shm/flexshm-bench-mmapsync-{}-{tag}",
        std::process::id()
    );
    let w = MmapSync::new(prefix.as_ref());
    let r = MmapSync::new(prefix.as_ref());
    (w, r)
}

fn mmap_sync_cleanup(tag: &str) {
    let prefix = format!(
        "/dev/shm/flexshm-bench-mmapsync-{}-{tag}",
        std::process::id()
    );
    for suffix in ["_state", "_data_0", "_data_1"] {
        let _ = std::fs::remove_file(format!("{prefix}{suffix}"));
    }
}

const GRACE: Duration = Duration::from_secs(1);

fn sensor_writer(mode: Mode) -> (Writer<'static, SensorData>, Reader<'static, SensorData>) {
    let region = leaked_region(segment_size(SensorData::FIELDS, mode));
    let w = Writer::<SensorData>::create(region, mode).unwrap();
    let r = Reader::<SensorData>::open(region).unwrap();
    (w, r)
}

/// A flexshm-std writer and reader of a new single-slot SensorData segment in /dev/shm,
/// named after this process and `tag`; the caller unlinks it (`std_cleanup`).
fn std_pair(
    tag: &str,
) -> (
    flexshm_std::Writer<SensorData>,
    flexshm_std::Reader<SensorData>,
) {
    let name = std_name(tag);
    let w = flexshm_std::Writer::<SensorData>::create(&name, &Default::default()).unwrap();
    let r = flexshm_std::Reader::<SensorData>::open(&name).unwrap();
    (w, r)
}

fn std_name(tag: &str) -> String {
    format!("flexshm-bench-inproc-{}-{tag}", std::process::id())
}

fn std_cleanup(tag: &str) {
    let _ = flexshm_std::unlink(&std_name(tag));
}

/// One read of a single-slot segment through the core reader, decoded into `out`.
#[inline(always)]
fn read_decode<R: Record>(r: &mut Reader<'_, R>, buf: &mut [u8], out: &mut R) -> u32 {
    r.try_read(buf, ReadOptions::default())
        .unwrap()
        .decode(out)
        .unwrap()
        .commit
}

/// Reads the four values out of a decoded record (what a user does after a read).
#[inline(always)]
fn use_sensor(s: &SensorData) -> f64 {
    s.temperature + s.pressure + s.timestamp + s.status_msg.len() as f64
}

fn bench_sensor(c: &mut Criterion) {
    let mut g = c.benchmark_group("sensor");
    let rec = sample_sensor(1);

    // Baseline: a plain copy of the record's bytes.
    let src = vec![7u8; SENSOR_PAYLOAD];
    let mut dst = vec![0u8; SENSOR_PAYLOAD];
    g.bench_function("copy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        })
    });

    let (mut w, mut r) = sensor_writer(Mode::Single);
    let mut buf = vec![0u8; SensorData::SNAPSHOT_LEN];
    let mut out = SensorData::default();
    g.bench_function("single_write", |b| {
        b.iter(|| w.write(black_box(&rec)).unwrap())
    });
    g.bench_function("single_read", |b| {
        b.iter(|| {
            let commit = read_decode(&mut r, &mut buf, &mut out);
            black_box(use_sensor(&out) + commit as f64)
        })
    });
    g.bench_function("single_snapshot", |b| {
        b.iter(|| {
            let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
            black_box(snap.info().modified)
        })
    });

    // The same through flexshm-std: the writer adds its wake-up check to every commit,
    // the reader its own buffer and its check for a replaced segment.
    let (mut sw, mut sr) = std_pair("sensor");
    g.bench_function("std_write", |b| {
        b.iter(|| sw.write(black_box(&rec)).unwrap())
    });
    g.bench_function("std_try_read", |b| {
        b.iter(|| {
            let snap = sr.try_read(ReadOptions::default()).unwrap();
            let info = snap.decode(&mut out).unwrap();
            black_box(use_sensor(&out) + info.commit as f64)
        })
    });
    g.bench_function("std_read", |b| {
        b.iter(|| {
            let snap = sr
                .read(ReadOptions::default(), Duration::from_secs(1))
                .unwrap();
            let info = snap.decode(&mut out).unwrap();
            black_box(use_sensor(&out) + info.commit as f64)
        })
    });
    // A reader that finds a new commit at every read (what a polling receiver sees).
    g.bench_function("std_write_try_read", |b| {
        b.iter(|| {
            sw.write(black_box(&rec)).unwrap();
            let snap = sr.try_read(ReadOptions::default()).unwrap();
            let info = snap.decode(&mut out).unwrap();
            black_box(use_sensor(&out) + info.commit as f64)
        })
    });
    // The same with the writer's own reader (`Writer::reader`): one mapping, where the
    // reader above maps the segment a second time, read-only, in the same process.
    let mut sr_same = sw.reader().unwrap();
    g.bench_function("std_write_try_read_same_map", |b| {
        b.iter(|| {
            sw.write(black_box(&rec)).unwrap();
            let snap = sr_same.try_read(ReadOptions::default()).unwrap();
            let info = snap.decode(&mut out).unwrap();
            black_box(use_sensor(&out) + info.commit as f64)
        })
    });
    g.bench_function("core_write_read", |b| {
        b.iter(|| {
            w.write(black_box(&rec)).unwrap();
            let commit = read_decode(&mut r, &mut buf, &mut out);
            black_box(use_sensor(&out) + commit as f64)
        })
    });
    drop((sw, sr, sr_same));
    std_cleanup("sensor");

    let slots = 4096u32;
    let (mut fw, mut fr) = sensor_writer(Mode::Fifo { slots });
    g.bench_function("fifo_write", |b| {
        b.iter(|| {
            fw.write(black_box(&rec)).unwrap();
            black_box(fw.finalize())
        })
    });
    // Catch up with everything written so far: each batch below then reads exactly the
    // records written just before it.
    fw.write(&rec).unwrap();
    fw.finalize();
    let latest = ReadOptions {
        latest: true,
        ..Default::default()
    };
    fr.try_read(&mut buf, latest).unwrap();
    g.bench_function("fifo_read", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(slots as u64 / 2);
                for _ in 0..n {
                    fw.write(&rec).unwrap();
                    fw.finalize();
                }
                let t0 = Instant::now();
                for _ in 0..n {
                    let info = fr
                        .try_read(&mut buf, ReadOptions::default())
                        .unwrap()
                        .decode(&mut out)
                        .unwrap();
                    black_box(use_sensor(&out) + info.lost as f64);
                }
                total += t0.elapsed();
                left -= n;
            }
            total
        })
    });

    // mmap-sync: the same record, written and read through its Synchronizer.
    let (mut mw, mut mr) = mmap_sync_pair("sensor");
    let mrec = SensorRkyv {
        temperature: rec.temperature,
        pressure: rec.pressure,
        timestamp: rec.timestamp,
        status_msg: rec.status_msg.as_str().to_string(),
    };
    mw.write(&mrec, GRACE).unwrap();
    g.bench_function("mmapsync_write", |b| {
        b.iter(|| mw.write(black_box(&mrec), GRACE).unwrap())
    });
    g.bench_function("mmapsync_read", |b| {
        b.iter(|| {
            // SAFETY: the guard is dropped within this iteration, long before the
            // writer's grace period.
            let g = unsafe { mr.read::<SensorRkyv>(false) }.unwrap();
            black_box(g.temperature + g.pressure + g.timestamp + g.status_msg.len() as f64)
        })
    });
    g.bench_function("mmapsync_read_checked", |b| {
        b.iter(|| {
            // SAFETY: as above.
            let g = unsafe { mr.read::<SensorRkyv>(true) }.unwrap();
            black_box(g.temperature + g.pressure + g.timestamp + g.status_msg.len() as f64)
        })
    });
    drop((mw, mr));
    mmap_sync_cleanup("sensor");

    // A read while another thread (on the other core) writes as fast as it can.
    let (w2, mut r2) = sensor_writer(Mode::Single);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let hammer = {
        let stop = stop.clone();
        let writes = writes.clone();
        let mut w2 = w2;
        std::thread::spawn(move || {
            pin_to_cpu(1);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                w2.write(&sample_sensor(n)).unwrap();
                n += 1;
            }
            writes.store(n, Ordering::Relaxed);
        })
    };
    let contended = AtomicU64::new(0);
    g.bench_function("single_read_contended", |b| {
        b.iter(|| {
            match r2.try_read(&mut buf, ReadOptions::default()) {
                Ok(snap) => {
                    let info = snap.decode(&mut out).unwrap();
                    black_box(use_sensor(&out) + info.commit as f64)
                }
                Err(_) => {
                    contended.fetch_add(1, Ordering::Relaxed);
                    0.0
                }
            };
        })
    });
    stop.store(true, Ordering::Relaxed);
    hammer.join().unwrap();
    g.finish();
    if contended.load(Ordering::Relaxed) > 0 {
        println!(
            "note: {} contended reads gave up after {} retries",
            contended.load(Ordering::Relaxed),
            flexshm_core::DEFAULT_RETRIES
        );
    }
}

/// The two 64-byte records of the cross-process latency table, written and read in one
/// thread: the CPU part of that latency, without cache-line transfers.
fn bench_record64(c: &mut Criterion) {
    let mut g = c.benchmark_group("record64");
    let src = [7u8; 64];
    let mut dst = [0u8; 64];
    g.bench_function("copy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        })
    });
    fn pair<R: Record + Default>(
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        rec: R,
    ) {
        let region = leaked_region(segment_size(R::FIELDS, Mode::Single));
        let mut w = Writer::<R>::create(region, Mode::Single).unwrap();
        let mut r = Reader::<R>::open(region).unwrap();
        let mut buf = vec![0u8; R::SNAPSHOT_LEN];
        let mut out = R::default();
        w.write(&rec).unwrap();
        g.bench_function(format!("{name}_write"), |b| {
            b.iter(|| w.write(black_box(&rec)).unwrap())
        });
        g.bench_function(format!("{name}_read"), |b| {
            b.iter(|| {
                read_decode(&mut r, &mut buf, &mut out);
                black_box(&out);
            })
        });
    }
    pair(
        &mut g,
        "pose",
        Pose {
            x: 1.0,
            seq: 2.0,
            ..Default::default()
        },
    );
    let mut blob = Blob64::default();
    blob.data[0] = 1;
    pair(&mut g, "blob", blob);
    g.finish();
}

fn image_bytes() -> Vec<u8> {
    (0..IMG_BYTES).map(|i| (i * 31 % 251) as u8).collect()
}

fn bench_image(c: &mut Criterion) {
    let mut g = c.benchmark_group("image");
    g.sample_size(30);
    let img = image_bytes();
    let mut shared = vec![0u8; IMG_BYTES];
    let mut out = vec![0u8; IMG_BYTES];
    g.bench_function("two_memcpy", |b| {
        b.iter(|| {
            shared.copy_from_slice(black_box(&img));
            out.copy_from_slice(black_box(&shared));
            black_box(&mut out);
        })
    });

    let region = leaked_region(segment_size(IMAGE_FIELDS, Mode::Single));
    let mut w = Writer::<Dynamic<&[FieldDef]>>::create(region, IMAGE_FIELDS, Mode::Single).unwrap();
    let mut r = Reader::<Dynamic<&[FieldDef]>>::open_with(region, IMAGE_FIELDS).unwrap();
    let mut buf = vec![0u8; r.snapshot_len()];
    let arr = ArrayRef::new(Dtype::U8, &[IMG_H, IMG_W, IMG_C], &img).unwrap();
    g.bench_function("flexshm_write", |b| {
        b.iter(|| {
            w.write_fields(&[(0, Value::Array(black_box(arr)))])
                .unwrap()
        })
    });
    g.bench_function("flexshm_read", |b| {
        b.iter(|| {
            let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
            black_box(snap.raw(0).unwrap().len())
        })
    });
    g.bench_function("flexshm_write_read", |b| {
        b.iter(|| {
            w.write_fields(&[(0, Value::Array(black_box(arr)))])
                .unwrap();
            let snap = r.try_read(&mut buf, ReadOptions::default()).unwrap();
            black_box(snap.raw(0).unwrap().len())
        })
    });
    g.bench_function("one_memcpy", |b| {
        b.iter(|| {
            out.copy_from_slice(black_box(&img));
            black_box(&mut out);
        })
    });
    g.finish();
}

/// Allocations per call of each hot path, over 1000 calls after a warm-up.
fn allocations() -> Vec<(&'static str, f64)> {
    const N: u64 = 1000;
    fn per_call(mut f: impl FnMut()) -> f64 {
        for _ in 0..10 {
            f();
        }
        let a0 = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..N {
            f();
        }
        (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / N as f64
    }
    let rec = sample_sensor(1);
    let mut buf = vec![0u8; SensorData::SNAPSHOT_LEN];
    let mut out = SensorData::default();
    let (mut w, mut r) = sensor_writer(Mode::Single);
    let (mut fw, mut fr) = sensor_writer(Mode::Fifo { slots: 64 });
    let (mut sw, mut sr) = std_pair("allocs");
    let mut v = vec![
        ("flexshm single write", per_call(|| w.write(&rec).unwrap())),
        (
            "flexshm single read",
            per_call(|| {
                read_decode(&mut r, &mut buf, &mut out);
            }),
        ),
        (
            "flexshm FIFO write+finalize+read",
            per_call(|| {
                fw.write(&rec).unwrap();
                fw.finalize();
                read_decode(&mut fr, &mut buf, &mut out);
            }),
        ),
        ("flexshm-std write", per_call(|| sw.write(&rec).unwrap())),
        (
            "flexshm-std read(timeout) + decode",
            per_call(|| {
                let snap = sr
                    .read(ReadOptions::default(), Duration::from_secs(1))
                    .unwrap();
                snap.decode(&mut out).unwrap();
            }),
        ),
    ];
    drop((sw, sr));
    std_cleanup("allocs");
    let (mut mw, mut mr) = mmap_sync_pair("allocs");
    let mrec = SensorRkyv {
        temperature: 1.0,
        pressure: 2.0,
        timestamp: 3.0,
        status_msg: "OK".into(),
    };
    v.push((
        "mmap-sync write",
        per_call(|| {
            mw.write(&mrec, GRACE).unwrap();
        }),
    ));
    v.push((
        "mmap-sync read",
        per_call(|| {
            // SAFETY: the guard is dropped at once.
            let g = unsafe { mr.read::<SensorRkyv>(false) }.unwrap();
            black_box(g.temperature);
        }),
    ));
    drop((mw, mr));
    mmap_sync_cleanup("allocs");
    v
}

/// Median time criterion estimated for `group/name`, in ns.
fn median_ns(group: &str, name: &str) -> f64 {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{name}/new/estimates.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return f64::NAN;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN)
}

fn report(allocs: &[(&str, f64)]) {
    #[rustfmt::skip]
    let rows: &[(&str, &str, &str, &str)] = &[
        ("sensor", "copy", "baseline: plain copy of the 152 record bytes", "copy"),
        ("sensor", "single_write", "flexshm single-slot write (4 fields, commits)", "copy"),
        ("sensor", "single_read", "flexshm single-slot read + decode into SensorData", "copy"),
        ("sensor", "single_snapshot", "flexshm single-slot snapshot only (copy + status)", "copy"),
        ("sensor", "std_write", "flexshm-std Writer<SensorData>::write (commit + wake-up check)", "copy"),
        ("sensor", "std_try_read", "flexshm-std Reader<SensorData>::try_read + decode", "copy"),
        ("sensor", "std_read", "flexshm-std Reader<SensorData>::read(timeout) + decode", "copy"),
        ("sensor", "core_write_read", "flexshm core write + read + decode, new record each read", "copy"),
        ("sensor", "std_write_try_read", "flexshm-std write + try_read + decode, new record each read", "copy"),
        ("sensor", "std_write_try_read_same_map", "… the same, reader from Writer::reader (one mapping)", "copy"),
        ("sensor", "fifo_write", "flexshm FIFO write + finalize", "copy"),
        ("sensor", "fifo_read", "flexshm FIFO read (next record) + decode", "copy"),
        ("sensor", "single_read_contended", "flexshm single-slot read, writer thread hammering", "copy"),
        ("sensor", "mmapsync_write", "peer: mmap-sync write", "copy"),
        ("sensor", "mmapsync_read", "peer: mmap-sync read (unchecked) + 4 fields", "copy"),
        ("sensor", "mmapsync_read_checked", "peer: mmap-sync read (checked) + 4 fields", "copy"),
        ("record64", "copy", "baseline: copy of 64 bytes", "copy"),
        ("record64", "pose_write", "flexshm Pose (8 × f64) write", "copy"),
        ("record64", "pose_read", "flexshm Pose read + decode", "copy"),
        ("record64", "blob_write", "flexshm uint8[64] write", "copy"),
        ("record64", "blob_read", "flexshm uint8[64] read + decode", "copy"),
        ("image", "two_memcpy", "baseline: two memcpys of 640×480×3 bytes", "two_memcpy"),
        ("image", "one_memcpy", "one memcpy of the image", "two_memcpy"),
        ("image", "flexshm_write", "flexshm image write", "two_memcpy"),
        ("image", "flexshm_read", "flexshm image read (snapshot)", "two_memcpy"),
        ("image", "flexshm_write_read", "flexshm image write + read", "two_memcpy"),
    ];
    let mut t = Table::new(
        "Rust, in-process (criterion medians)",
        &["what", "p50", "ratio to baseline"],
    );
    for (group, name, what, base) in rows {
        let m = median_ns(group, name);
        let b = median_ns(group, base);
        t.row(vec![
            what.to_string(),
            fmt_ns(m),
            format!("{}×", fmt_ratio(m / b)),
        ]);
    }
    t.note(
        "Ratios are to the baseline row of the same group (SensorData rows: the 152-byte \
         copy; 64-byte records: a 64-byte copy; image rows: two memcpys). The contended \
         read runs while a thread pinned to the other core writes SensorData in a loop. \
         flexshm-std rows use a named single-slot segment in /dev/shm: its writer adds \
         the wake-up check to every commit, its reader copies into its own buffer; \
         the read rows without a write read the same record again and again, the \
         write + read rows a new record at every read.",
    );
    t.print();
    let mut a = Table::new("Allocations per call", &["call", "allocations per call"]);
    for (what, n) in allocs {
        a.row(vec![what.to_string(), format!("{n:.2}")]);
    }
    a.print();
}

fn main() {
    pin_to_cpu(0);
    let allocs = allocations();
    let mut c = Criterion::default().configure_from_args();
    bench_sensor(&mut c);
    bench_record64(&mut c);
    bench_image(&mut c);
    c.final_summary();
    // `cargo bench -- --list` or a filter that ran nothing leaves nothing to report.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    report(&allocs);
}
