//! FIFO throughput: a producer process (the parent) and a consumer process (the child),
//! in blocks of fixed duration. The consumer drains whatever is there, busy-polling, and
//! reports per block how many records it received and how many it was told it lost.

mod flexshm;
mod raw_ring;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flexshm_bench::stats::{fmt_rate, Blocks};
use flexshm_bench::table::Table;
use flexshm_bench::{spin_until, Args, IMG_BYTES, SENSOR_PAYLOAD};

use crate::pair::{
    cpus, one_cpu_note, pin_child, pin_parent, tag_for, Ctl, Pair, C_BLOCK_DONE, C_BLOCK_START,
    C_LOST, C_MISORDERED, C_PRODUCED, C_RECEIVED, C_RESULT, SETUP_LIMIT,
};
use crate::payload::Payload;
use crate::Res;

/// One FIFO system. The producer never waits for flexshm (records the consumer could
/// not keep up with are lost and counted); the raw ring is lossless and makes the
/// producer wait when full.
pub trait Fifo {
    /// Produces one record.
    fn produce(&mut self, i: u64);
    /// Consumes every record available now; returns (received, lost).
    fn consume(&mut self) -> (u64, u64);
    /// Reads so far whose record did not follow the previous one by exactly the reported
    /// loss, for systems that check the order of what they receive.
    fn misordered(&self) -> Option<u64> {
        None
    }
}

struct Plan {
    blocks: usize,
    block: Duration,
    slots: u32,
    record: usize,
}

impl Plan {
    fn from(args: &Args, payload: Payload) -> Plan {
        let (slots, record) = match payload {
            Payload::Small => (1024, SENSOR_PAYLOAD),
            Payload::Image => (16, IMG_BYTES),
        };
        Plan {
            blocks: args.get("blocks", 20),
            block: Duration::from_millis(args.get("block-ms", 100)),
            slots: args.get("slots", slots),
            record,
        }
    }
}

fn systems(
    payload: Payload,
    plan: &Plan,
    tag: &str,
    producer: bool,
) -> Res<Vec<(&'static str, Box<dyn Fifo>)>> {
    let mut v: Vec<(&'static str, Box<dyn Fifo>)> = vec![(
        "raw SPSC ring (lossless)",
        Box::new(raw_ring::RawRing::new(
            tag,
            plan.record,
            plan.slots as u64,
            producer,
        )?),
    )];
    match payload {
        Payload::Small => v.push((
            "flexshm FIFO, SensorData",
            Box::new(flexshm::SensorFifo::new(tag, plan.slots, producer)?),
        )),
        Payload::Image => v.push((
            "flexshm FIFO, image",
            Box::new(flexshm::ImageFifo::new(tag, plan.slots, producer)?),
        )),
    }
    Ok(v)
}

/// `xproc fifo`: the producer, which prints the table.
pub fn parent(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "fifo");
    let two = cpus().2;
    let ctl = Ctl::create(&tag)?;
    let plan = Plan::from(args, payload);
    let mut systems = systems(payload, &plan, &tag, true)?;
    let mut pair = Pair::start("fifo-child", args, &tag, ctl)?;
    pair.wait_ready()?;
    pin_parent();
    let n = systems.len();
    let names: Vec<&str> = systems.iter().map(|s| s.0).collect();
    let mut delivered = Blocks::new(&names);
    let mut produced_rate = Blocks::new(&names);
    let mut lost = vec![0u64; n];
    let mut produced_total = vec![0u64; n];
    let mut misordered = vec![0u64; n];
    let mut accounted = true;
    let checks: Vec<bool> = systems.iter().map(|s| s.1.misordered().is_some()).collect();
    let mut i = 1u64;
    let mut block_id = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let s = (b + k) % n;
            let ctl = &pair.ctl;
            // Start the block: the consumer is polling.
            ctl.word(C_BLOCK_START).store(block_id, Ordering::Release);
            let t0 = Instant::now();
            let mut produced = 0u64;
            let sys = &mut systems[s].1;
            loop {
                for _ in 0..64 {
                    sys.produce(i);
                    i += 1;
                }
                produced += 64;
                if t0.elapsed() >= plan.block {
                    break;
                }
            }
            let tp = t0.elapsed();
            ctl.word(C_PRODUCED).store(produced, Ordering::Relaxed);
            // Pairs with the consumer's Acquire load: it sees `produced`.
            ctl.word(C_BLOCK_DONE).store(block_id, Ordering::Release);
            if !spin_until(SETUP_LIMIT, || {
                ctl.word(C_RESULT).load(Ordering::Acquire) == block_id
            }) {
                return Err("consumer did not finish a block".into());
            }
            let tc = t0.elapsed();
            let got = ctl.word(C_RECEIVED).load(Ordering::Relaxed);
            let l = ctl.word(C_LOST).load(Ordering::Relaxed);
            misordered[s] += ctl.word(C_MISORDERED).load(Ordering::Relaxed);
            if got + l != produced {
                accounted = false;
                if std::env::var_os("XPROC_DEBUG").is_some() {
                    eprintln!(
                        "block {b} {}: produced {produced} received {got} lost {l}",
                        names[s]
                    );
                }
            }
            lost[s] += l;
            produced_total[s] += produced;
            delivered.push(s, vec![got as f64 / tc.as_secs_f64()]);
            produced_rate.push(s, vec![produced as f64 / tp.as_secs_f64()]);
            block_id += 1;
        }
    }
    pair.finish()?;
    let what = match payload {
        Payload::Small => "SensorData records (152 B of values)",
        Payload::Image => "640×480×3 images",
    };
    let mut t = Table::new(
        &format!("Rust, FIFO throughput, {what}"),
        &[
            "system",
            "delivered p50",
            "ratio to raw ring",
            "produced p50",
            "lost",
            "out of sequence",
        ],
    );
    for s in 0..n {
        t.row(vec![
            names[s].to_string(),
            fmt_rate(delivered.pooled(s, 50.0)),
            delivered.ratio(s, 0).show(),
            fmt_rate(produced_rate.pooled(s, 50.0)),
            format!(
                "{} of {} ({:.1} %)",
                lost[s],
                produced_total[s],
                100.0 * lost[s] as f64 / produced_total[s].max(1) as f64
            ),
            if checks[s] {
                misordered[s].to_string()
            } else {
                "–".to_string()
            },
        ]);
    }
    t.note(format!(
        "{} blocks of {} ms per system, interleaved; producer process on one core, consumer \
         on the other, busy-polling. FIFO of {} slots. Delivered = records the consumer \
         read per second (p50 over blocks); produced = records the producer committed per \
         second. flexshm's producer never waits, so a slower consumer loses records (and is \
         told how many); the raw ring makes the producer wait instead. Out of sequence = \
         reads whose record (numbered by the producer) did not follow the previous one by \
         exactly the reported loss. Every block: received + lost = produced: {}.{}",
        plan.blocks,
        plan.block.as_millis(),
        plan.slots,
        if accounted { "yes" } else { "NO" },
        one_cpu_note(two)
    ));
    t.print();
    Ok(())
}

/// `xproc fifo-child`: the consumer.
pub fn child(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "fifo");
    pin_child(args);
    let ctl = Ctl::open(&tag)?;
    let plan = Plan::from(args, payload);
    let mut systems = ctl.report_setup(systems(payload, &plan, &tag, false))?;
    let n = systems.len();
    let mut block_id = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let sys = &mut systems[(b + k) % n].1;
            if !spin_until(SETUP_LIMIT, || {
                ctl.word(C_BLOCK_START).load(Ordering::Acquire) == block_id
            }) {
                return Err("producer did not start a block".into());
            }
            let (mut got, mut lost) = (0, 0);
            let mis0 = sys.misordered().unwrap_or(0);
            let mut done_at: Option<Instant> = None;
            loop {
                // Read `done` before draining: after it, one more drain gets the rest.
                let done = ctl.word(C_BLOCK_DONE).load(Ordering::Acquire) == block_id;
                let (g, l) = sys.consume();
                got += g;
                lost += l;
                if done {
                    let produced = ctl.word(C_PRODUCED).load(Ordering::Relaxed);
                    let since = *done_at.get_or_insert_with(Instant::now);
                    // A count that never adds up is reported by the parent, not hung on.
                    if got + lost >= produced || since.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                }
            }
            ctl.word(C_RECEIVED).store(got, Ordering::Relaxed);
            ctl.word(C_LOST).store(lost, Ordering::Relaxed);
            let mis = sys.misordered().unwrap_or(0) - mis0;
            ctl.word(C_MISORDERED).store(mis, Ordering::Relaxed);
            // Pairs with the producer's Acquire load of RESULT.
            ctl.word(C_RESULT).store(block_id, Ordering::Release);
            block_id += 1;
        }
    }
    Ok(())
}
