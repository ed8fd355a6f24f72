//! A writer handle inherited across `fork` belongs to the parent: the child can neither
//! write nor finalize through it, and dropping it there does not release the parent's
//! role. Reader handles keep working in the child. (Own test binary, one test function:
//! fork is safest with no other test threads running.)

mod common;

use common::SegGuard;
use flexshm_std::{
    CreateOptions, Dtype, Dynamic, Error, FieldDef, FieldValue, Kind, ReadOptions, Reader, Value,
    Writer,
};

extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
}

const FIELDS: &[FieldDef] = &[FieldDef::new("x", Kind::Scalar(Dtype::U8))];

/// Runs `child` in a forked process and returns its exit code.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: plain fork(2); the child runs `child` and leaves with _exit, never
    // returning into the test harness (whose other threads do not exist in the child).
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child at once, without running the parent's exit handlers.
        unsafe { _exit(code) }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid out-pointer.
    let waited = unsafe { waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert_eq!(status & 0x7f, 0, "child killed by signal {}", status & 0x7f);
    (status >> 8) & 0xff
}

#[test]
fn a_forked_child_cannot_use_the_parents_writer() {
    for opts in [CreateOptions::default(), CreateOptions::fifo(4)] {
        let g = SegGuard::new("fork");
        let mut w = Writer::<Dynamic>::create_with_fields(&g.name, FIELDS, &opts).unwrap();
        w.write_fields(&[(0, Value::UInt(7))]).unwrap();
        w.finalize().unwrap();
        let mut r = Reader::<Dynamic>::open(&g.name).unwrap();
        let parent = std::process::id();
        let head = w.head();

        // Exit codes: 0 all as expected; 1..=4 which check failed.
        let code = in_child(|| {
            let w = &mut w;
            match w.write_fields(&[(0, Value::UInt(99))]) {
                Err(Error::ForkedWriter { owner_pid, .. }) if owner_pid == parent => {}
                _ => return 1,
            }
            match w.finalize() {
                Err(e @ Error::ForkedWriter { .. })
                    if e.to_string().contains(&parent.to_string()) => {}
                _ => return 2,
            }
            // The reader inherited from the parent works in the child.
            match r.read(ReadOptions::default(), std::time::Duration::from_secs(1)) {
                Ok(snap) if snap.get(0).ok() == Some(FieldValue::UInt(7)) => {}
                _ => return 3,
            }
            // Dropping the inherited writer must not release the parent's claim.
            // SAFETY: in the child, `w` is this process's own copy of the parent's
            // handle; it is dropped once here and the process exits right after, never
            // touching `w` again.
            drop(unsafe { std::ptr::read(w) });
            0
        });
        assert_eq!(code, 0, "check {code} failed in the child ({opts:?})");
        assert_eq!(w.head(), head);
        assert_eq!(Reader::<Dynamic>::open(&g.name).unwrap().head(), head);
        match Writer::<Dynamic>::create_with_fields(&g.name, FIELDS, &opts) {
            Err(Error::WriterAlive { pid }) => assert_eq!(pid, parent),
            other => panic!("a second writer got in while the first is alive: {other:?}"),
        }
        // The parent still writes.
        w.write_fields(&[(0, Value::UInt(8))]).unwrap();
        w.finalize().unwrap();
    }
}
