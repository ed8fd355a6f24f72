//! Logging flexshm types with defmt (the `defmt` feature): what docs/EMBEDDED.md shows,
//! compiled by `make build-embedded`. It logs over RTT, so it is meant for a real board
//! with a debug probe (`probe-rs run`), not for QEMU.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _; // the global logger
use flexshm_core::{record, AlignedBuf, Mode, ReadOptions, Reader, Record, Region, Writer};

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

#[entry]
fn main() -> ! {
    // SAFETY: MEM is a static, valid and 64-aligned for 'static, and only ever accessed
    // through Region handles (atomics only).
    let region = unsafe { Region::from_raw_parts(&raw mut MEM.0 as *mut u8, 1024) }.unwrap();
    let mut writer = Writer::<SensorData>::create(region, Mode::Single).unwrap();
    let mut reader = Reader::<SensorData>::open(region).unwrap();
    let mut buf = [0u8; SensorData::SNAPSHOT_LEN];
    let mut out = SensorData::default();
    let mut rec = SensorData {
        temperature: 23.5,
        ..Default::default()
    };
    for n in 0..3u32 {
        rec.timestamp = n as f64;
        match writer.write(&rec) {
            Ok(()) => defmt::info!("wrote record {=u32}", n),
            Err(e) => defmt::error!("write failed: {}", e),
        }
        match reader
            .try_read(&mut buf, ReadOptions::default())
            .and_then(|s| s.decode(&mut out))
        {
            Ok(info) => defmt::info!("read commit {=u32}: {}", info.commit, info),
            Err(e) => defmt::warn!("read failed: {}", e),
        }
    }
    defmt::info!("temperature field: {}", SensorData::FIELDS[0]);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic");
    loop {
        cortex_m::asm::wfi();
    }
}
