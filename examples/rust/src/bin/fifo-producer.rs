//! FIFO producer: commits numbered samples into a 16-slot ring, segment `samples`.
//!
//! Terminal 1: `cargo run -p flexshm-examples --bin fifo-producer -- --count 200`
//! Terminal 2: `cargo run -p flexshm-examples --bin fifo-consumer`

use flexshm_examples::{Args, Sample};
use flexshm_std::{CreateOptions, Writer};

/// Ring capacity: a consumer more than this many records behind loses the oldest.
const SLOTS: u32 = 16;

fn main() -> Result<(), flexshm_std::Error> {
    let args = Args::parse("samples", 0, 10);
    let mut fifo = Writer::<Sample>::create(&args.name, &CreateOptions::fifo(SLOTS))?;
    println!("producer: FIFO '{}' with {SLOTS} slots ready", fifo.name());
    let mut seq = 0u64;
    while args.more(seq) {
        seq += 1;
        // Stage, then commit atomically: a consumer sees the whole record or nothing.
        fifo.write(&Sample {
            seq,
            value: seq as f64 * 0.5,
        })?;
        let commit = fifo.finalize()?;
        println!("producer: committed seq={seq} (commit {commit})");
        if !args.interval.is_zero() {
            std::thread::sleep(args.interval);
        }
    }
    if args.unlink {
        flexshm_std::unlink(&args.name)?;
        println!("producer: unlinked '{}'", args.name);
    }
    Ok(())
}
