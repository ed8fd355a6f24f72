//! FIFO consumer: reads every sample in order (or the newest with `--latest`) and
//! reports records lost when the producer laps it.
//!
//! Terminal 1: `cargo run -p flexshm-examples --bin fifo-producer -- --count 200`
//! Terminal 2: `cargo run -p flexshm-examples --bin fifo-consumer`

use flexshm_examples::{Args, Sample};
use flexshm_std::{Error, OpenOptions, ReadOptions, Reader};

fn main() -> Result<(), Error> {
    let args = Args::parse("samples", 0, 0);
    let open = OpenOptions {
        timeout: args.timeout,
    };
    let mut fifo = Reader::<Sample>::open_with(&args.name, &open)?;
    let opts = ReadOptions {
        latest: args.latest,
        ..Default::default()
    };
    let mut s = Sample::default();
    let mut got = 0u64;
    while args.more(got) {
        match fifo.read(opts, args.timeout).and_then(|snap| {
            snap.decode(&mut s)?;
            Ok(snap.info())
        }) {
            Ok(info) => {
                got += 1;
                if s.value != s.seq as f64 * 0.5 {
                    eprintln!("consumer: torn record seq={} value={}", s.seq, s.value);
                    std::process::exit(1);
                }
                if info.lost > 0 {
                    println!(
                        "consumer: lost {} records (lapped by the producer)",
                        info.lost
                    );
                }
                println!("consumer: seq={} value={}", s.seq, s.value);
            }
            Err(e @ Error::Timeout { .. }) => {
                println!("consumer: {e}; stopping");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    println!(
        "consumer: {got} records, {} lost in total",
        fifo.lost_total()
    );
    Ok(())
}
