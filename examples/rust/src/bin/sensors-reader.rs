//! The seed's Quick Start reader: prints each new SensorData record from `sensors`.
//!
//! Terminal 1: `cargo run -p flexshm-examples --bin sensors-writer`
//! Terminal 2: `cargo run -p flexshm-examples --bin sensors-reader`

use flexshm_examples::{open_when_ready, Args, SensorData};
use flexshm_std::{ReadOptions, SharedMemory};

fn main() -> Result<(), flexshm_std::Error> {
    let args = Args::parse("sensors", 0, 0);
    // Connect to the existing shared memory (waiting for its writer to create it).
    let mut shm = open_when_ready(&args.name, args.timeout, SharedMemory::<SensorData>::open)?;
    let mut data = SensorData::default();
    let mut last = 0;
    let mut shown = 0u64;
    while args.more(shown) {
        // Sleep in the kernel until the writer commits something new.
        if !shm.reader().wait_commit(last, args.timeout) {
            println!("reader: no new record for {:?}, stopping", args.timeout);
            break;
        }
        // Read data with status.
        let info = shm.read(&mut data, ReadOptions::default(), args.timeout)?;
        last = info.commit;
        shown += 1;
        let temp = info.field(SensorData::temperature);
        if temp.valid() && temp.modified {
            println!(
                "reader: #{} Temperature: {:.2}°C  pressure={:.2}  status_msg={}",
                info.commit, data.temperature, data.pressure, data.status_msg
            );
        } else if temp.unwritten() {
            println!("reader: no temperature yet");
        } else if temp.truncated {
            println!("reader: temperature truncated");
        }
    }
    Ok(())
}
