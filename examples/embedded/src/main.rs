//! flexshm-core on a Cortex-M under QEMU: golden vectors, writer and reader preempting
//! each other (SysTick interrupt vs. main loop), blocking reads with a timeout.
//!
//! Prints one line per test and a closing `N passed, N failed`, then exits through
//! semihosting with a failure status if anything failed. See `docs/EMBEDDED.md`.
#![no_std]
#![no_main]
// Tests return `Result<Msg, Msg>` with a fixed-capacity message (no allocator here);
// the size of the error variant is the point, not an accident.
#![allow(clippy::result_large_err)]

mod blocking;
mod harness;
mod preempt;
mod probe;
mod shared;
mod stack;
mod vectors;

use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};

use harness::Harness;

#[cfg(machine = "lm3s6965evb")]
const MACHINE: &str = "lm3s6965evb (Cortex-M3, thumbv7m)";
#[cfg(machine = "microbit")]
const MACHINE: &str = "microbit (Cortex-M0, thumbv6m, no compare-and-swap)";

/// Stack that must stay unused by the deepest test.
const STACK_MARGIN: usize = 1024;

#[entry]
fn main() -> ! {
    stack::paint();
    shared::init_region();
    let cp = cortex_m::Peripherals::take().expect("peripherals are taken once, here");
    let mut syst = cp.SYST;
    hprintln!("flexshm firmware on {}", MACHINE);
    let mut h = Harness::default();

    vectors::run_all(&mut h);

    // The main loop's side of the preemption tests: one reader state, one record.
    let mut reader = shared::ReaderState::new();
    let mut rec = probe::Probe::EMPTY;
    h.run("preempt::single_writer_in_isr", || {
        preempt::single_writer_isr(&mut syst, &mut reader)
    });
    h.run("preempt::single_reader_in_isr", || {
        preempt::single_reader_isr(&mut syst, &mut rec)
    });
    h.run("preempt::fifo_writer_in_isr_lapped_reader", || {
        preempt::fifo_writer_isr(&mut syst, &mut reader)
    });
    h.run("preempt::fifo_reader_in_isr", || {
        preempt::fifo_reader_isr(&mut syst, &mut rec)
    });
    h.run("blocking::success", || blocking::success(&mut syst));
    // The SysTick `Delay` takes SYST by value.
    h.run("blocking::timeout", move || blocking::timeout(syst).1);

    // Below the stack lie the statics (the interrupt's state among them): a stack that
    // came near them fails the run rather than corrupting it silently next time.
    let (_, avail) = stack::high_water();
    let deepest = h.max_stack;
    h.run("stack::headroom", || {
        ensure!(
            deepest + STACK_MARGIN <= avail,
            "deepest test used {} of {} bytes of stack: less than {} B left",
            deepest,
            avail,
            STACK_MARGIN
        );
        Ok(msg!(
            "deepest test used {} of {} bytes, interrupts included",
            deepest,
            avail
        ))
    });
    hprintln!("{} passed, {} failed", h.passed, h.failed);
    debug::exit(if h.failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// The closing line when a panic or fault ends the run: the test that was running
/// counts as failed.
fn closing_line_after_abort() {
    use core::sync::atomic::Ordering::Relaxed;
    hprintln!(
        "{} passed, {} failed",
        harness::PASSED.load(Relaxed),
        harness::FAILED.load(Relaxed) + 1
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    closing_line_after_abort();
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    hprintln!("hard fault: {:?}", ef);
    closing_line_after_abort();
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
