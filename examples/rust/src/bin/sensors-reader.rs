//! The seed's Quick Start reader: prints each new SensorData record from `sensors`.
//!
//! Terminal 1: `cargo run -p flexshm-examples --bin sensors-writer`
//! Terminal 2: `cargo run -p flexshm-examples --bin sensors-reader`

use flexshm_examples::{Args, SensorData};
use flexshm_std::{OpenOptions, ReadOptions, Reader};

fn main() -> Result<(), flexshm_std::Error> {
    let args = Args::parse("sensors", 0, 0);
    // Connect to the shared memory, waiting for its writer to create it: the start
    // order of writer and reader does not matter.
    let opts = OpenOptions {
        timeout: args.timeout,
    };
    let mut shm = Reader::<SensorData>::open_with(&args.name, &opts)?;
    let mut data = SensorData::default();
    let mut shown = 0u64;
    while args.more(shown) {
        // Sleep in the kernel until the writer commits a record this reader has not read.
        if !shm.wait(args.timeout)? {
            println!("reader: no new record for {:?}, stopping", args.timeout);
            break;
        }
        // Read data with status.
        let snap = shm.read(ReadOptions::default(), args.timeout)?;
        snap.decode(&mut data)?;
        let info = snap.info();
        shown += 1;
        let temp = info.status(SensorData::temperature);
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
