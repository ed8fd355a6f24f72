//! A child forked from a writer drops its copy of the writer handle: the parent must
//! keep the writer role. (Own test binary: fork is safest with no other test threads.)

mod common;

use common::SegGuard;
use flexshm_std::{Dtype, DynWriter, Error, FieldDef, Kind};

extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
}

#[test]
fn forked_child_dropping_the_writer_keeps_the_parents_claim() {
    let g = SegGuard::new("rv-fork");
    let fields = vec![FieldDef::new("x", Kind::Scalar(Dtype::U8))];
    let w = DynWriter::create(&g.name, fields.clone(), &Default::default()).unwrap();
    // SAFETY: plain fork(2); the child only drops the handle and leaves with _exit, never
    // returning into the test harness (whose other threads do not exist in the child).
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(w);
        // SAFETY: ends the child at once, without running the parent's exit handlers.
        unsafe { _exit(0) }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid out-pointer.
    let waited = unsafe { waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert_eq!(status, 0, "child failed");
    match DynWriter::create(&g.name, fields, &Default::default()) {
        Err(Error::WriterAlive { pid }) => assert_eq!(pid, std::process::id()),
        other => panic!("a second writer got in while the first is alive: {other:?}"),
    }
    drop(w);
}
