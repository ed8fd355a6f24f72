//! A reader's CPU time while it waits for a record that never comes: flexshm-std's read
//! and wait with a 1 s timeout, next to a raw FUTEX_WAIT with the same timeout.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flexshm_bench::stats::{fmt_ns, median};
use flexshm_bench::table::Table;
use flexshm_bench::{thread_cpu_time, SensorData};
use flexshm_std::{ReadOptions, Reader};

use super::Results;
use crate::futex::{self, RawFutex};
use crate::Res;

/// The idle systems, in order.
pub const IDLE: [&str; 3] = [
    "raw FUTEX_WAIT (1 s timeout)",
    "flexshm-std FIFO read(timeout = 1 s), nothing written",
    "flexshm-std single-slot wait(1 s), nothing written",
];

/// Most runs per idle system (room in the results file).
pub const MAX_IDLE_RUNS: usize = 10;

/// Child: `runs` idle waits per system, CPU and wall time into `res`.
pub fn measure(
    res: &Results,
    runs: usize,
    raw: &RawFutex,
    idle_fifo: &mut Reader<SensorData>,
    idle_single: &mut Reader<SensorData>,
) -> Res {
    for s in 0..IDLE.len() {
        for run in 0..runs {
            let c0 = thread_cpu_time();
            let t0 = Instant::now();
            let got = match s {
                0 => {
                    let v = raw.word().load(Ordering::Acquire);
                    futex::wait(raw.word(), v, Some(Duration::from_secs(1)));
                    false
                }
                1 => idle_fifo
                    .read(ReadOptions::default(), Duration::from_secs(1))
                    .is_ok(),
                _ => idle_single.wait(Duration::from_secs(1))?,
            };
            let wall = t0.elapsed();
            let cpu = thread_cpu_time() - c0;
            if got {
                return Err("a record appeared on an idle segment".into());
            }
            let (c, w) = res.idle(s, run);
            c.store(cpu.as_nanos() as u64, Ordering::Relaxed);
            w.store(wall.as_nanos() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Parent: the table of what the child measured.
pub fn table(res: &Results, runs: usize) {
    let mut t = Table::new(
        "Blocking wait: reader CPU time while idle",
        &[
            "system",
            "wall time",
            "CPU time (user + sys)",
            "CPU share of one core",
        ],
    );
    for (s, name) in IDLE.iter().enumerate() {
        let (mut cpu, mut wall): (Vec<f64>, Vec<f64>) = (0..runs)
            .map(|r| {
                let (c, w) = res.idle(s, r);
                (
                    c.load(Ordering::Relaxed) as f64,
                    w.load(Ordering::Relaxed) as f64,
                )
            })
            .unzip();
        let c = median(&mut cpu);
        let w = median(&mut wall);
        t.row(vec![
            name.to_string(),
            fmt_ns(w),
            fmt_ns(c),
            format!("{:.3} %", 100.0 * c / w),
        ]);
    }
    t.note(format!(
        "Median of {} runs; CPU time from getrusage(RUSAGE_THREAD) around the call \
         (its resolution is the kernel's accounting tick).",
        runs
    ));
    t.print();
}
