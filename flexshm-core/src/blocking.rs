//! Blocking reads with a timeout on bare metal, through `embedded_hal::delay::DelayNs`.
//!
//! The std frontend has its own blocking read that sleeps in the kernel; this one polls,
//! which is what an MCU without an OS does.

use embedded_hal::delay::DelayNs;

use crate::error::Error;
use crate::reader::Reader;
use crate::record::Schema;
use crate::snapshot::Snapshot;
use crate::status::ReadOptions;

/// Default pause between polls of a blocking read, in microseconds.
pub const DEFAULT_POLL_US: u32 = 10;

impl<S: Schema> Reader<'_, S> {
    /// Reads like [`try_read`](Reader::try_read), polling every `poll_us` microseconds
    /// with `delay` while there is no record (FIFO) or the writer overtakes every copy,
    /// for at most `timeout_us` microseconds of delay. Time spent copying is not
    /// counted, so the real wait can be a little longer than `timeout_us`; every failed
    /// attempt is followed by a delay, so the loop always ends.
    ///
    /// On time-out returns [`Error::Timeout`], telling whether no record arrived or the
    /// writer kept the slot busy.
    pub fn read_blocking<'b, D: DelayNs>(
        &mut self,
        buf: &'b mut [u8],
        opts: ReadOptions,
        delay: &mut D,
        timeout_us: u32,
        poll_us: u32,
    ) -> Result<Snapshot<'b, '_, S>, Error> {
        let poll = poll_us.max(1);
        let mut waited: u32 = 0;
        loop {
            let e = match self.try_read(buf, opts) {
                Ok(snap) => {
                    // Re-borrow: the loop's borrow of `buf` and `self` ends here.
                    let info = snap.info();
                    let len = self.snapshot_len();
                    return Ok(Snapshot::new(&buf[..len], self.layout(), info));
                }
                Err(e @ (Error::NoRecord | Error::Contended)) => e,
                Err(e) => return Err(e),
            };
            if waited >= timeout_us {
                return Err(Error::Timeout {
                    no_record: e == Error::NoRecord,
                });
            }
            let step = poll.min(timeout_us - waited);
            delay.delay_us(step);
            waited += step;
        }
    }
}
