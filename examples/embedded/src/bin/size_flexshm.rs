//! Size probe: a SensorData writer and reader over a static region (single-slot), one
//! line printed. Compare its `.text` with `size-base`. See docs/EMBEDDED.md.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use flexshm_core::{record, AlignedBuf, Region};

record! {
    /// The seed's SensorData.
    #[derive(Default, Clone)]
    struct SensorData {
        temperature: f64,
        pressure: f64,
        timestamp: f64,
        status_msg: str[32],
    }
}

static mut MEM: AlignedBuf<1024> = AlignedBuf::new();

fn region() -> Option<Region<'static>> {
    // SAFETY: MEM is a static, valid and 64-aligned for 'static, and only ever accessed
    // through the Region handles made here (atomics only).
    unsafe { Region::from_raw_parts(&raw mut MEM.0 as *mut u8, 1024) }.ok()
}

#[cfg(not(feature = "size-reader-only"))]
fn sample() -> Option<SensorData> {
    let mut rec = SensorData {
        temperature: 23.5,
        pressure: 1013.25,
        timestamp: cortex_m::peripheral::SYST::get_current() as f64,
        ..Default::default()
    };
    rec.status_msg.push_str("OK").ok()?;
    Some(rec)
}

/// Writer and reader (the measured configuration).
#[cfg(not(any(feature = "size-writer-only", feature = "size-reader-only")))]
fn run() -> Option<SensorData> {
    use flexshm_core::{Mode, ReadOptions, Reader, Record, Writer};
    let region = region()?;
    let mut w = Writer::<SensorData>::create(region, Mode::Single).ok()?;
    let mut r = Reader::<SensorData>::open(region).ok()?;
    w.write(&sample()?).ok()?;
    let mut buf = [0u8; SensorData::SNAPSHOT_LEN];
    let mut out = SensorData::default();
    let info = r
        .try_read(&mut buf, ReadOptions::default())
        .and_then(|s| s.decode(&mut out))
        .ok()?;
    info.status(SensorData::pressure).valid().then_some(out)
}

/// Only the writer side (what a producer core links).
#[cfg(feature = "size-writer-only")]
fn run() -> Option<SensorData> {
    use flexshm_core::{Mode, Writer};
    let mut w = Writer::<SensorData>::create(region()?, Mode::Single).ok()?;
    let rec = sample()?;
    w.write(&rec).ok()?;
    Some(rec)
}

/// Only the reader side (what a consumer core links); the segment comes from elsewhere.
#[cfg(feature = "size-reader-only")]
fn run() -> Option<SensorData> {
    use flexshm_core::{ReadOptions, Reader, Record};
    let mut r = Reader::<SensorData>::open(region()?).ok()?;
    let mut buf = [0u8; SensorData::SNAPSHOT_LEN];
    let mut out = SensorData::default();
    let info = r
        .try_read(&mut buf, ReadOptions::default())
        .and_then(|s| s.decode(&mut out))
        .ok()?;
    info.status(SensorData::pressure).valid().then_some(out)
}

#[entry]
fn main() -> ! {
    match run() {
        Some(out) => {
            let sum = out.temperature + out.pressure + out.timestamp;
            hprintln!("sum {} status {}", sum as u32, out.status_msg.as_str());
            debug::exit(debug::EXIT_SUCCESS);
        }
        None => debug::exit(debug::EXIT_FAILURE),
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
