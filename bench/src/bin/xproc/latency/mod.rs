//! One-way latency: a ping-pong between the two processes, one-way = round trip / 2.
//!
//! Every system is a pair of one-way channels. Side A (the parent) sends message `i` and
//! waits for the reply; side B (the child) waits for message `i` and replies. Each
//! side's payload is written by its sender and copied out by its receiver.

mod flexshm;
mod floor;
mod hybrid;
#[cfg(feature = "iceoryx2")]
mod iceoryx;
mod raw;

use std::time::Instant;

use flexshm_bench::stats::{fmt_ns, Blocks};
use flexshm_bench::table::Table;
use flexshm_bench::{Args, Blob64, Pose, IMG_BYTES};

use crate::pair::{cpus, one_cpu_note, pin_child, pin_parent, tag_for, Ctl, Pair};
use crate::payload::Payload;
use crate::Res;

/// One system in the ping-pong: a channel each way, written by its sender and copied out
/// by its receiver.
pub trait PingPong {
    /// Sends message `i` on this side's channel.
    fn send(&mut self, i: u64);
    /// Waits for message `i` on the other side's channel and copies it out.
    fn recv(&mut self, i: u64);
    /// Side A: send `i`, wait for the reply `i`.
    fn ping(&mut self, i: u64) {
        self.send(i);
        self.recv(i);
    }
    /// Side B: wait for `i`, reply `i`.
    fn pong(&mut self, i: u64) {
        self.recv(i);
        self.send(i);
    }
}

/// Named ping-pong systems.
type Systems = Vec<(&'static str, Box<dyn PingPong>)>;

const CORE_POSE: &str = "flexshm core, Pose (8 × f64)";
const ICEORYX2: &str = "iceoryx2";
const HYBRID_WRITER: &str = "Pose: flexshm core writer, floor receiver";
const HYBRID_READER: &str = "Pose: floor sender, flexshm core reader";

/// False for a system that `XPROC_ONLY` (a part of its name; a tool for profiling one
/// system) leaves out of the run. The raw baseline always runs.
fn wanted(name: &str) -> bool {
    match std::env::var_os("XPROC_ONLY") {
        Some(only) => name.contains(&*only.to_string_lossy()) || name == "raw 64 B",
        None => true,
    }
}

/// The systems of a latency run, in a fixed order both processes agree on, plus the
/// reason for every system that could not be set up.
fn systems(payload: Payload, tag: &str, create: bool, side_a: bool) -> Res<(Systems, Vec<String>)> {
    let mut v: Systems = Vec::new();
    let mut skipped = Vec::new();
    match payload {
        Payload::Small => {
            v.push((
                "raw 64 B",
                Box::new(raw::Raw::new(tag, 64, create, side_a)?),
            ));
            v.push((
                "raw cache line",
                Box::new(raw::Raw::new(tag, 0, create, side_a)?),
            ));
            v.push((
                "seqlock floor, 72-byte buffer",
                Box::new(floor::Floor::new(tag, 8, create, side_a)?),
            ));
            v.push((
                "seqlock floor, Pose's 144-byte buffer",
                Box::new(floor::Floor::new(tag, 80, create, side_a)?),
            ));
            v.push((
                CORE_POSE,
                Box::new(flexshm::CoreTyped::<Pose>::new(
                    tag, "pose", create, side_a,
                )?),
            ));
            v.push((
                "flexshm core, uint8[64]",
                Box::new(flexshm::CoreTyped::<Blob64>::new(
                    tag, "blob", create, side_a,
                )?),
            ));
            for (name, kind, flexshm_writes) in [
                (HYBRID_WRITER, "hybrid-w", true),
                (HYBRID_READER, "hybrid-r", false),
            ] {
                v.push((
                    name,
                    Box::new(hybrid::Hybrid::new(
                        tag,
                        kind,
                        flexshm_writes,
                        create,
                        side_a,
                    )?),
                ));
            }
            v.push((
                "flexshm-std, Pose (8 × f64)",
                Box::new(flexshm::StdTyped::<Pose>::new(tag, "std", side_a)?),
            ));
        }
        Payload::Image => {
            v.push((
                "raw memcpy",
                Box::new(raw::Raw::new(tag, IMG_BYTES, create, side_a)?),
            ));
            v.push((
                "flexshm core, image",
                Box::new(flexshm::CoreImage::new(tag, create, side_a)?),
            ));
        }
    }
    #[cfg(feature = "iceoryx2")]
    match iceoryx::Ice::new(tag, payload.bytes(), side_a) {
        Ok(s) => v.push((ICEORYX2, Box::new(s))),
        Err(e) => skipped.push(format!("iceoryx2: could not be set up here: {e}")),
    }
    #[cfg(not(feature = "iceoryx2"))]
    skipped.push(
        "iceoryx2: not built; the iceoryx2 crate needs libclang at build time (Debian: \
         libclang-dev and clang), which this machine lacks"
            .to_string(),
    );
    Ok((v, skipped))
}

struct Plan {
    blocks: usize,
    iters: usize,
    warmup: usize,
}

impl Plan {
    fn from(args: &Args, payload: Payload) -> Plan {
        let (b, i) = match payload {
            Payload::Small => (100, 1000),
            Payload::Image => (40, 20),
        };
        let iters = args.get("iters", i);
        Plan {
            blocks: args.get("blocks", b),
            iters,
            warmup: (iters / 10).max(2),
        }
    }
}

/// `xproc latency`: side A, which times the round trips and prints the table.
pub fn parent(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "lat");
    let two = cpus().2;
    let ctl = Ctl::create(&tag)?;
    let (mut systems, skipped) = systems(payload, &tag, true, true)?;
    let mut pair = Pair::start("latency-child", args, &tag, ctl)?;
    pair.wait_ready()?;
    pin_parent();
    let plan = Plan::from(args, payload);
    let names: Vec<&str> = systems.iter().map(|s| s.0).collect();
    let mut res = Blocks::new(&names);
    let n = systems.len();
    let mut i = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let s = (b + k) % n;
            if !wanted(systems[s].0) {
                continue;
            }
            let sys = &mut systems[s].1;
            for _ in 0..plan.warmup {
                sys.ping(i);
                i += 1;
            }
            let mut v = Vec::with_capacity(plan.iters);
            let mut t = Instant::now();
            for _ in 0..plan.iters {
                sys.ping(i);
                i += 1;
                let now = Instant::now();
                v.push((now - t).as_nanos() as f64 / 2.0);
                t = now;
            }
            res.push(s, v);
        }
    }
    pair.finish()?;
    let (title, mut columns) = match payload {
        Payload::Small => (
            "Rust, cross-process one-way latency, 64-byte record",
            vec![
                ("ratio to raw 64 B", "raw 64 B"),
                ("ratio to core Pose", CORE_POSE),
            ],
        ),
        Payload::Image => (
            "Rust, cross-process one-way latency, 640×480×3 uint8 image",
            vec![("ratio to raw memcpy", "raw memcpy")],
        ),
    };
    columns.push(("ratio to iceoryx2", ICEORYX2));
    let mut header = vec!["system", "p50", "p99"];
    header.extend(columns.iter().map(|c| c.0));
    let mut t = Table::new(title, &header);
    for (s, name) in names.iter().enumerate() {
        let mut row = vec![
            name.to_string(),
            fmt_ns(res.pooled(s, 50.0)),
            fmt_ns(res.pooled(s, 99.0)),
        ];
        for (_, base) in &columns {
            row.push(match names.iter().position(|n| n == base) {
                Some(k) => res.ratio(s, k).show(),
                None => "–".into(),
            });
        }
        t.row(row);
    }
    t.note(format!(
        "{} blocks × {} round trips per system, interleaved; one-way = round trip / 2. \
         p50/p99 pool all blocks; ratios are the median (25th–75th percentile) of per-block \
         ratios of medians. flexshm core: `Writer<R>`/`Reader<R>` on /dev/shm files the \
         benchmark maps; flexshm-std: its `Writer<R>`/`Reader<R>` on named segments (the \
         writer adds its wake-up check to every commit, the reader copies into its own \
         buffer). Receivers busy-poll `head()`, then read and decode.{}",
        plan.blocks,
        plan.iters,
        one_cpu_note(two)
    ));
    if let Payload::Small = payload {
        t.note(
            "Seqlock floor: flexshm's single-slot steps alone (the writer stores seq, \
             payload, commit, seq and head; the receiver polls head, copies the buffer head \
             names and checks seq around the copy), with the 64-byte payload where a 72-byte \
             buffer or Pose's 144-byte buffer (after the field metadata) puts it: what the \
             protocol's shape costs without flexshm's per-record work. The two Pose \
             hybrids put flexshm's side against the floor's on flexshm's own segment \
             (the floor's sender stores what flexshm's writer stores, in its way; its \
             receiver checks seq and the commit word only): each one's distance to the \
             floor is the cost of that side of flexshm's hop.",
        );
    }
    for s in skipped {
        t.note(format!("Not measured: {s}"));
    }
    t.print();
    Ok(())
}

/// `xproc latency-child`: side B, which answers every message.
pub fn child(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "lat");
    pin_child(args);
    let ctl = Ctl::open(&tag)?;
    let (mut systems, _) = ctl.report_setup(systems(payload, &tag, false, false))?;
    let plan = Plan::from(args, payload);
    let n = systems.len();
    let mut i = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            if !wanted(systems[(b + k) % n].0) {
                continue;
            }
            let sys = &mut systems[(b + k) % n].1;
            for _ in 0..plan.warmup + plan.iters {
                sys.pong(i);
                i += 1;
            }
        }
    }
    Ok(())
}
