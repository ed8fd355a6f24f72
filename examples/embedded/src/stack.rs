//! Stack high-water mark: paint the free stack at start, see how much was used at the end.

/// The pattern unused stack words hold.
const PAINT: u32 = 0x5AA5_F00D;

extern "C" {
    // From cortex-m-rt's link.x: the end of static data (.bss/.uninit), i.e. the lowest
    // address the stack may grow to, and the initial stack pointer (top of RAM).
    static mut __sheap: u32;
    static _stack_start: u32;
}

fn bounds() -> (*mut u32, usize) {
    let low = &raw mut __sheap;
    let top = &raw const _stack_start as usize;
    (low, top)
}

/// Fills the stack below the current frame with [`PAINT`]. Call with no interrupt
/// enabled (first thing in main, or between tests with the timer stopped).
#[inline(never)]
pub fn paint() {
    let (low, _) = bounds();
    // Stay clear of this function's own frame.
    let stop = cortex_m::register::msp::read() as usize - 64;
    let mut p = low;
    while (p as usize) < stop {
        // SAFETY: [__sheap, msp - 64) is RAM reserved for stack growth (there is no
        // heap), below every live stack frame, and no interrupt is running or enabled,
        // so no Rust object lives there.
        unsafe { p.write_volatile(PAINT) };
        p = p.wrapping_add(1);
    }
}

/// (bytes of stack ever used, bytes available) since [`paint`].
pub fn high_water() -> (usize, usize) {
    let (low, top) = bounds();
    let mut p = low;
    // SAFETY: reads of the same reserved RAM; words the stack has used hold stale frame
    // data, which is only compared with the pattern.
    while (p as usize) < top && unsafe { p.read_volatile() } == PAINT {
        p = p.wrapping_add(1);
    }
    (top - p as usize, top - low as usize)
}
