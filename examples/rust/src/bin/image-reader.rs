//! Image stream reader: takes the newest frame from `camera` each time one arrives and
//! checks that every pixel belongs to that frame (no mix of two frames).
//!
//! Terminal 1: `cargo run --release -p flexshm-examples --bin image-writer`
//! Terminal 2: `cargo run --release -p flexshm-examples --bin image-reader`

use flexshm_examples::{Args, Frame};
use flexshm_std::{OpenOptions, ReadOptions, Reader};

fn main() -> Result<(), flexshm_std::Error> {
    let args = Args::parse("camera", 0, 0);
    let opts = OpenOptions {
        timeout: args.timeout,
    };
    let mut shm = Reader::<Frame>::open_with(&args.name, &opts)?;
    let mut frame = Frame::boxed();
    let mut shown = 0u64;
    while args.more(shown) {
        if !shm.wait(args.timeout)? {
            println!(
                "image-reader: no new frame for {:?}, stopping",
                args.timeout
            );
            break;
        }
        let snap = shm.read(ReadOptions::default(), args.timeout)?;
        snap.decode(&mut frame)?;
        if !snap.status(Frame::pixels).valid() {
            continue; // nothing written yet
        }
        shown += 1;
        let ok = frame.is_consistent();
        let mean = frame
            .pixels
            .iter()
            .flatten()
            .flatten()
            .map(|&v| v as u64)
            .sum::<u64>()
            / (640 * 480 * 3);
        println!(
            "image-reader: frame {} mean={mean} {}",
            frame.frame,
            if ok { "consistent" } else { "TORN" }
        );
        if !ok {
            std::process::exit(1);
        }
    }
    Ok(())
}
