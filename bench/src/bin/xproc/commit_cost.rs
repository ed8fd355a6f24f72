//! What the writer's wake-up logic costs per commit, with no reader waiting, and how
//! often it calls FUTEX_WAKE under a fast stream of commits. One process, pinned.
//!
//! A flexshm-std writer cannot know whether a reader sleeps (readers map the segment
//! read-only), so after every commit it makes a SeqCst fence, reads CLOCK_MONOTONIC and
//! calls FUTEX_WAKE if it has not done so for 50 µs (flexshm-std/src/wake.rs). The rows
//! take that apart: the core commit alone, the core commit followed by the same fence and
//! clock read (written here), flexshm-std's own commit, and the core commit followed by a
//! FUTEX_WAKE every time (what a writer without the 50 µs limit would pay). Each block
//! runs every system for the same number of back-to-back commits, in rotating order.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::Instant;

use flexshm_bench::stats::{fmt_ns, fmt_rate, fmt_ratio, Blocks};
use flexshm_bench::table::Table;
use flexshm_bench::{
    mono_ns, pin_to_cpu, sample_sensor, segment_size, Args, SensorData, ShmFile, WakeCounter,
};
use flexshm_core::{Mode, Record, Writer};

use crate::pair::tag_for;
use crate::Res;

/// One way of committing a SensorData record.
trait Commit {
    /// Commits one record (single-slot: a write; FIFO: a write and a finalize).
    fn commit(&mut self, rec: &SensorData);
    /// FUTEX_WAKE calls made so far.
    fn wakes(&self) -> u64;
}

/// What follows each core commit.
#[derive(Clone, Copy, PartialEq)]
enum After {
    Nothing,
    /// A SeqCst fence and a CLOCK_MONOTONIC read, kept from being optimised away.
    FenceClock,
    /// A FUTEX_WAKE on a word of the segment's file, as flexshm-std's writer does.
    Wake,
}

/// flexshm-core's typed writer on a /dev/shm file the benchmark maps.
struct Core {
    _file: ShmFile,
    w: Writer<'static, SensorData>,
    after: After,
    fifo: bool,
    futex: *const AtomicU32,
    clock: u64,
    wakes: u64,
}

impl Core {
    fn new(name: &str, mode: Mode, after: After) -> Res<Core> {
        let file = ShmFile::create(name, segment_size(SensorData::FIELDS, mode))?;
        let w = Writer::<SensorData>::create(file.region(), mode)?;
        // A word of the header's frontend area, which the core leaves alone: where
        // flexshm-std keeps its futex word.
        let futex = file.ptr().wrapping_add(flexshm_bench::STD_WAKE_GEN) as *const AtomicU32;
        Ok(Core {
            _file: file,
            w,
            after,
            fifo: mode.is_fifo(),
            futex,
            clock: 0,
            wakes: 0,
        })
    }
}

impl Commit for Core {
    fn commit(&mut self, rec: &SensorData) {
        self.w.write(rec).expect("flexshm write");
        if self.fifo {
            self.w.finalize();
        }
        match self.after {
            After::Nothing => {}
            After::FenceClock => {
                fence(Ordering::SeqCst);
                self.clock = self.clock.wrapping_add(mono_ns());
            }
            After::Wake => {
                // SAFETY: a 4-aligned word inside the mapping `_file` keeps alive; only
                // the kernel reads it.
                crate::futex::wake_all(unsafe { &*self.futex });
                self.wakes += 1;
            }
        }
    }

    fn wakes(&self) -> u64 {
        self.wakes
    }
}

/// flexshm-std's typed writer, and a mapping of its segment to count its wake-ups.
struct Std {
    w: flexshm_std::Writer<SensorData>,
    file: ShmFile,
    first: u32,
}

impl Std {
    fn new(name: &str, opts: flexshm_std::CreateOptions) -> Res<Std> {
        let w = flexshm_std::Writer::<SensorData>::create(name, &opts)?;
        let file = ShmFile::open_read_only(name)?;
        let first = WakeCounter::new(&file).get();
        Ok(Std { w, file, first })
    }
}

impl Commit for Std {
    fn commit(&mut self, rec: &SensorData) {
        self.w.write(rec).expect("flexshm-std write");
        if self.w.mode().is_fifo() {
            self.w.finalize().expect("flexshm-std finalize");
        }
    }

    fn wakes(&self) -> u64 {
        WakeCounter::new(&self.file).get().wrapping_sub(self.first) as u64
    }
}

impl Drop for Std {
    fn drop(&mut self) {
        let _ = flexshm_std::unlink(self.w.name());
    }
}

/// `xproc commit-cost`.
pub fn run(args: &Args) -> Res {
    let tag = tag_for(args, "cost");
    let blocks: usize = args.get("blocks", 30);
    let commits: u64 = args.get("commits", 20_000);
    let pinned = pin_to_cpu(flexshm_bench::allowed_cpus()[0]);
    let name = |what: &str| format!("flexshm-bench-{tag}-{what}");
    let fifo = Mode::Fifo { slots: 64 };
    // (name, system, index of the row it is compared with)
    let mut systems: Vec<(&str, Box<dyn Commit>, usize)> = vec![
        (
            "core Writer::write (single-slot commit)",
            Box::new(Core::new(&name("core"), Mode::Single, After::Nothing)?),
            0,
        ),
        (
            "core write + SeqCst fence + CLOCK_MONOTONIC read",
            Box::new(Core::new(&name("clock"), Mode::Single, After::FenceClock)?),
            0,
        ),
        (
            "flexshm-std Writer::write, no reader waiting",
            Box::new(Std::new(&name("std"), Default::default())?),
            0,
        ),
        (
            "core write + FUTEX_WAKE after every commit",
            Box::new(Core::new(&name("wake"), Mode::Single, After::Wake)?),
            0,
        ),
        (
            "core FIFO write + finalize",
            Box::new(Core::new(&name("core-fifo"), fifo, After::Nothing)?),
            4,
        ),
        (
            "flexshm-std FIFO write + finalize, no reader waiting",
            Box::new(Std::new(
                &name("std-fifo"),
                flexshm_std::CreateOptions::fifo(64),
            )?),
            4,
        ),
    ];
    let names: Vec<&str> = systems.iter().map(|s| s.0).collect();
    let n = systems.len();
    let mut per_commit = Blocks::new(&names);
    let mut wake_rate = vec![Vec::new(); n];
    let mut wakes_total = vec![0u64; n];
    let rec = sample_sensor(1);
    for b in 0..blocks {
        for k in 0..n {
            let s = (b + k) % n;
            let sys = &mut systems[s].1;
            let w0 = sys.wakes();
            let t0 = Instant::now();
            for _ in 0..commits {
                sys.commit(std::hint::black_box(&rec));
            }
            let dt = t0.elapsed();
            let wakes = sys.wakes() - w0;
            per_commit.push(s, vec![dt.as_nanos() as f64 / commits as f64]);
            wake_rate[s].push(wakes as f64 / dt.as_secs_f64());
            wakes_total[s] += wakes;
        }
    }
    let mut t = Table::new(
        "Blocking wait: the writer's cost per commit of waking readers (no reader waiting)",
        &[
            "system",
            "per commit p50",
            "ratio to core commit",
            "FUTEX_WAKE calls p50",
            "commits per FUTEX_WAKE",
        ],
    );
    let total = (blocks as u64 * commits) as f64;
    for (s, (name, _, base)) in systems.iter().enumerate() {
        let mut rate = wake_rate[s].clone();
        t.row(vec![
            name.to_string(),
            fmt_ns(per_commit.pooled(s, 50.0)),
            per_commit.ratio(s, *base).show(),
            fmt_rate(flexshm_bench::stats::median(&mut rate)),
            if wakes_total[s] == 0 {
                "–".into()
            } else {
                fmt_ratio(total / wakes_total[s] as f64)
            },
        ]);
    }
    t.note(format!(
        "{blocks} blocks × {commits} back-to-back commits of SensorData per system, \
         interleaved, in one process{}; per commit = block time / commits (the p50 over \
         blocks); ratios are the median (25th–75th percentile) of per-block ratios, to the \
         core row of the same mode. flexshm-std's FUTEX_WAKE calls are counted by its \
         futex word (`wake_gen`, which it bumps once per call). The fence + clock row \
         repeats what flexshm-std adds to every commit, without its system call; the last \
         single-slot row makes the call after every commit. FIFO: 64 slots.",
        if pinned { " pinned to one CPU" } else { "" }
    ));
    t.print();
    Ok(())
}
