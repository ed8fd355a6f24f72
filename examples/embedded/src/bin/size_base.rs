//! Size baseline: the same firmware as `size-flexshm` (a SensorData record written and
//! read back, one line printed) with a plain static instead of flexshm. The `.text`
//! difference between the two is what flexshm-core costs. See docs/EMBEDDED.md.
#![no_std]
#![no_main]

use core::ptr::{addr_of, addr_of_mut};

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

/// The seed's SensorData, as a plain struct.
#[derive(Default, Clone)]
struct SensorData {
    temperature: f64,
    pressure: f64,
    timestamp: f64,
    status_msg: heapless::String<128>,
}

static mut SHARED: Option<SensorData> = None;

#[entry]
fn main() -> ! {
    let mut rec = SensorData {
        temperature: 23.5,
        pressure: 1013.25,
        timestamp: cortex_m::peripheral::SYST::get_current() as f64,
        ..Default::default()
    };
    let _ = rec.status_msg.push_str("OK");
    // SAFETY: single-threaded, no interrupt touches SHARED; volatile so the write and
    // read are not optimised away, as flexshm's are not.
    unsafe { core::ptr::write_volatile(addr_of_mut!(SHARED), Some(rec)) };
    // SAFETY: as above.
    let out = unsafe { core::ptr::read_volatile(addr_of!(SHARED)) }.unwrap_or_default();
    let sum = out.temperature + out.pressure + out.timestamp;
    hprintln!("sum {} status {}", sum as u32, out.status_msg.as_str());
    debug::exit(debug::EXIT_SUCCESS);
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
