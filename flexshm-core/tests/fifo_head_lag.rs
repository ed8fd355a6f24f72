//! A FIFO reader can see a record through its buffer's seqlock before it sees the
//! writer's later store of `head` (the writer closes `seq` first, then publishes `head`).
//! A read in that window must never go back in time or invent a loss.
#![cfg(not(loom))]

mod common;

use common::{Mem, HEAD, SENSOR};
use flexshm_core::{Dynamic, Error, FieldValue, Mode, ReadOptions, Reader, Value, Writer};

fn temperature(
    r: &mut Reader<'_, Dynamic<&'static [flexshm_core::FieldDef]>>,
    latest: bool,
) -> Result<(f64, u32), Error> {
    let mut buf = vec![0u8; r.snapshot_len()];
    let opts = ReadOptions {
        latest,
        ..Default::default()
    };
    let snap = r.try_read(&mut buf, opts)?;
    match snap.get(0)? {
        FieldValue::Float(t) => Ok((t, snap.lost())),
        other => panic!("unexpected value {other:?}"),
    }
}

/// Writer commits 1..=4, the reader reads them; the writer commits 5, but the reader
/// still sees head = 4 (the head store not yet visible to it). The reader may return 5
/// (its buffer's seq says it is complete), and afterwards must report "no record", not
/// jump back one lap to the oldest record.
#[test]
fn fifo_read_ahead_of_a_lagging_head_does_not_go_back() {
    let mode = Mode::Fifo { slots: 4 };
    let mem = Mem::for_schema(SENSOR, mode);
    let mut w = Writer::<Dynamic<_>>::create(mem.region(), SENSOR, mode).unwrap();
    let mut r = Reader::<Dynamic<_>>::open_with(mem.region(), SENSOR).unwrap();
    let commit = |w: &mut Writer<'_, Dynamic<&'static [flexshm_core::FieldDef]>>, t: f64| {
        w.write_fields(&[(0, Value::Float(t))]).unwrap();
        w.finalize()
    };
    for t in 1..=4 {
        commit(&mut w, t as f64);
    }
    for t in 1..=4 {
        assert_eq!(temperature(&mut r, false).unwrap(), (t as f64, 0));
    }
    assert_eq!(commit(&mut w, 5.0), 5);
    // Simulate the reader not seeing the Release store of head yet.
    mem.set_u32(HEAD, 4);
    match temperature(&mut r, false) {
        Ok(got) => assert_eq!(got, (5.0, 0), "the record after 4 is 5, nothing lost"),
        Err(e) => assert_eq!(e, Error::NoRecord),
    }
    for latest in [false, true] {
        match temperature(&mut r, latest) {
            Err(Error::NoRecord) => {}
            other => panic!("read after a lagging head (latest={latest}): {other:?}"),
        }
    }
    assert!(
        !r.has_new(),
        "nothing new while head lags behind what was read"
    );
    // Once head becomes visible the stream simply continues.
    mem.set_u32(HEAD, 5);
    assert_eq!(commit(&mut w, 6.0), 6);
    assert_eq!(temperature(&mut r, false).unwrap(), (6.0, 0));
}
