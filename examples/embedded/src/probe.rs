//! The test record: every field is derived from one counter, so a snapshot that mixes
//! two commits (a torn record) is detected by [`Probe::consistent`].

use core::fmt::Write as _;

use flexshm_core::{record, Error, ReadInfo, Record};

record! {
    /// A record whose fields must agree with each other.
    #[derive(Default, Clone)]
    pub struct Probe {
        pub counter: u32,
        pub half: f64,
        pub neg: i64,
        pub words: [u32; 24],
        pub label: str[16],
        pub check: u32,
    }
}

/// Bit mask with one bit per field of [`Probe`].
pub const ALL_FIELDS: u64 = (1 << Probe::FIELDS.len()) - 1;

fn word(n: u32, k: usize) -> u32 {
    n.wrapping_mul(0x9E37_79B1).rotate_left(k as u32) ^ k as u32
}

impl Probe {
    /// All zero, as a constant (for statics).
    pub const EMPTY: Probe = Probe {
        counter: 0,
        half: 0.0,
        neg: 0,
        words: [0; 24],
        label: heapless::String::new(),
        check: 0,
    };

    /// The record committed as number `n`.
    pub fn make(n: u32) -> Probe {
        let mut p = Probe {
            counter: n,
            half: n as f64 * 0.5,
            neg: -(n as i64) * 3,
            check: !n,
            ..Default::default()
        };
        for (k, w) in p.words.iter_mut().enumerate() {
            *w = word(n, k);
        }
        // "rec 4294967295" is 14 characters: always fits.
        let _ = write!(p.label, "rec {n}");
        p
    }

    /// Fills `self` as [`make`](Self::make) does, without building a temporary.
    pub fn set(&mut self, n: u32) {
        *self = Probe::make(n);
    }

    /// True if every field agrees with `counter`: the record is not torn.
    pub fn consistent(&self) -> bool {
        let n = self.counter;
        let mut label: heapless::String<64> = heapless::String::new();
        let _ = write!(label, "rec {n}");
        self.half == n as f64 * 0.5
            && self.neg == -(n as i64) * 3
            && self.check == !n
            && self.words.iter().enumerate().all(|(k, w)| *w == word(n, k))
            && self.label == label
    }
}

/// What one side of a preemption test observed.
#[derive(Default)]
pub struct Stats {
    /// Successful reads.
    pub reads: u32,
    /// Reads whose counter differed from the previous read's.
    pub distinct: u32,
    /// Accepted records whose fields disagree, or whose status bits are wrong.
    pub torn: u32,
    /// Single-slot: reads that went back to an older record.
    pub backwards: u32,
    /// FIFO: records whose counter is not previous + 1 + reported loss.
    pub gap_mismatch: u32,
    /// FIFO: records reported lost to a lapping writer.
    pub lost: u32,
    /// Reads where the writer overtook every copy attempt.
    pub contended: u32,
    /// Any other error.
    pub errors: u32,
    /// The first unexpected error.
    pub first_error: Option<Error>,
    /// FIFO: the first gap mismatch as (previous counter, counter read, reported loss).
    pub first_mismatch: Option<(u32, u32, u32)>,
    /// Counter of the last record read.
    pub last: u32,
}

impl Stats {
    /// Nothing observed yet.
    pub const fn new() -> Self {
        Stats {
            reads: 0,
            distinct: 0,
            torn: 0,
            backwards: 0,
            gap_mismatch: 0,
            lost: 0,
            contended: 0,
            errors: 0,
            first_error: None,
            first_mismatch: None,
            last: 0,
        }
    }

    fn error(&mut self, e: Error) {
        match e {
            Error::Contended => self.contended += 1,
            e => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e);
                }
            }
        }
    }

    /// Accounts a single-slot read whose record was decoded into `out`.
    pub fn single(&mut self, res: Result<ReadInfo, Error>, out: &Probe) {
        match res {
            Ok(info) if info.commit == 0 && info.written == 0 => {} // nothing written yet
            Ok(info) => {
                self.reads += 1;
                if !out.consistent() || info.written != ALL_FIELDS || info.truncated != 0 {
                    self.torn += 1;
                }
                if out.counter != self.last {
                    self.distinct += 1;
                    if out.counter < self.last {
                        self.backwards += 1;
                    }
                    self.last = out.counter;
                }
            }
            Err(e) => self.error(e),
        }
    }

    /// Accounts a FIFO read; returns false when there was no record to read.
    pub fn fifo(&mut self, res: Result<ReadInfo, Error>, out: &Probe) -> bool {
        match res {
            Ok(info) => {
                self.reads += 1;
                self.distinct += 1;
                if !out.consistent() || info.written != ALL_FIELDS || info.modified != ALL_FIELDS {
                    self.torn += 1;
                }
                // Records are numbered 1, 2, ...: the next one read must be the one after
                // the last, plus what the reader was told it lost.
                let expected = self.last.wrapping_add(1).wrapping_add(info.lost);
                if out.counter != expected {
                    self.gap_mismatch += 1;
                    if self.first_mismatch.is_none() {
                        self.first_mismatch = Some((self.last, out.counter, info.lost));
                    }
                }
                self.lost += info.lost;
                self.last = out.counter;
                true
            }
            Err(Error::NoRecord) => false,
            Err(e) => {
                self.error(e);
                false
            }
        }
    }

    /// The problems seen, if any, as a message.
    pub fn problems(&self) -> Option<crate::harness::Msg> {
        if self.torn + self.backwards + self.gap_mismatch + self.errors == 0 {
            return None;
        }
        Some(crate::msg!(
            "torn={} backwards={} gap_mismatch={} (first: {:?}) errors={} first_error={:?}",
            self.torn,
            self.backwards,
            self.gap_mismatch,
            self.first_mismatch,
            self.errors,
            self.first_error
        ))
    }
}
