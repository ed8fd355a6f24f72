//! Test bookkeeping and output over semihosting.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_semihosting::hprintln;

/// Tests passed so far, for the panic and fault handlers' closing line.
pub static PASSED: AtomicU32 = AtomicU32::new(0);
/// Tests failed so far, for the panic and fault handlers' closing line.
pub static FAILED: AtomicU32 = AtomicU32::new(0);

/// A test's one-line result detail.
pub type Msg = heapless::String<256>;

/// Formats a [`Msg`] (cut if too long).
#[macro_export]
macro_rules! msg {
    ($($t:tt)*) => {{
        let mut m = $crate::harness::Msg::new();
        let _ = core::fmt::Write::write_fmt(&mut m, format_args!($($t)*));
        m
    }};
}

/// Returns `Err(msg!(...))` from the enclosing test unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => {
        if !$cond {
            return Err($crate::msg!($($t)*));
        }
    };
}

/// Counts passed and failed tests and prints one line per test.
#[derive(Default)]
pub struct Harness {
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed.
    pub failed: u32,
    /// The most stack any test used, in bytes.
    pub max_stack: usize,
}

impl Harness {
    /// Runs one test and prints `test NAME ... ok (detail)` or `... FAILED: why`.
    /// The line ends with the stack the test used (high-water mark, including any
    /// interrupt that preempted it).
    pub fn run(&mut self, name: &str, test: impl FnOnce() -> Result<Msg, Msg>) {
        crate::stack::paint();
        let res = test();
        let (stack, _) = crate::stack::high_water();
        self.max_stack = self.max_stack.max(stack);
        match res {
            Ok(detail) => {
                self.passed += 1;
                PASSED.store(self.passed, Ordering::Relaxed);
                hprintln!("test {} ... ok ({}) [stack {} B]", name, detail, stack);
            }
            Err(why) => {
                self.failed += 1;
                FAILED.store(self.failed, Ordering::Relaxed);
                hprintln!("test {} ... FAILED: {} [stack {} B]", name, why, stack);
            }
        }
    }
}
