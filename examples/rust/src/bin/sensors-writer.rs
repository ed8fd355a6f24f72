//! The seed's Quick Start writer: publishes SensorData to the segment `sensors`.
//!
//! Terminal 1: `cargo run -p flexshm-examples --bin sensors-writer`
//! Terminal 2: `cargo run -p flexshm-examples --bin sensors-reader`

use std::time::{SystemTime, UNIX_EPOCH};

use flexshm_examples::{Args, SensorData};
use flexshm_std::{CreateOptions, Writer};

fn main() -> Result<(), flexshm_std::Error> {
    let args = Args::parse("sensors", 0, 100);
    // Create shared memory (or take it over from a writer that is no longer running).
    let mut shm = Writer::<SensorData>::create(&args.name, &CreateOptions::default())?;
    println!("writer: segment '{}' ready", shm.name());
    let mut n = 0u64;
    while args.more(n) {
        n += 1;
        let mut rec = SensorData {
            temperature: 20.0 + (n as f64 * 0.3).sin() * 5.0,
            pressure: 1013.25 + (n % 10) as f64 * 0.1,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            ..Default::default()
        };
        // Longer than 32 characters would be cut and flagged truncated.
        let _ = rec.status_msg.push_str(&format!("OK #{n}"));
        shm.write(&rec)?;
        println!(
            "writer: #{n} temperature={:.2} pressure={:.2} status_msg={}",
            rec.temperature, rec.pressure, rec.status_msg
        );
        std::thread::sleep(args.interval);
    }
    if args.unlink {
        flexshm_std::unlink(&args.name)?;
        println!("writer: unlinked '{}'", args.name);
    }
    Ok(())
}
