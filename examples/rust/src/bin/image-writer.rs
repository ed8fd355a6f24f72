//! Image stream writer: publishes 640x480 RGB frames (`uint8[480,640,3]`) to `camera`.
//!
//! Terminal 1: `cargo run --release -p flexshm-examples --bin image-writer`
//! Terminal 2: `cargo run --release -p flexshm-examples --bin image-reader`

use flexshm_examples::{Args, Frame};
use flexshm_std::{CreateOptions, Writer};

fn main() -> Result<(), flexshm_std::Error> {
    let args = Args::parse("camera", 0, 33);
    let mut shm = Writer::<Frame>::create(&args.name, &CreateOptions::default())?;
    println!(
        "image-writer: segment '{}' ready (640x480x3 u8)",
        shm.name()
    );
    let mut frame = Frame::boxed();
    let mut n = 0u64;
    while args.more(n) {
        n += 1;
        frame.fill(n);
        shm.write(&frame)?;
        println!("image-writer: frame {n}");
        std::thread::sleep(args.interval);
    }
    if args.unlink {
        flexshm_std::unlink(&args.name)?;
        println!("image-writer: unlinked '{}'", args.name);
    }
    Ok(())
}
