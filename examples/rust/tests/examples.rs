//! Runs each writer / reader pair of examples as two processes, as the how-to in
//! examples/rust/README.md does, and checks what the reader printed.

#![allow(missing_docs)]

use std::process::{Child, Command, Output, Stdio};

/// A unique segment name, unlinked on drop (even when the test fails).
struct Seg(String);

impl Seg {
    fn new(what: &str) -> Seg {
        Seg(format!(
            "flexshm-example-test-{what}-{}",
            std::process::id()
        ))
    }
}

impl Drop for Seg {
    fn drop(&mut self) {
        let _ = flexshm_std::unlink(&self.0);
    }
}

/// A child killed and reaped on drop unless `finish` took it.
struct Proc(Option<Child>);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(bin: &str, args: &[&str]) -> Proc {
    Proc(Some(
        Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

/// Waits for the process to exit by itself; its stdout, which must report success.
fn finish(mut p: Proc) -> String {
    let child = p.0.take().unwrap();
    let out: Output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} failed\nstdout:\n{text}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn sensors_writer_and_reader() {
    let seg = Seg::new("sensors");
    // The writer runs until the reader has seen 5 records, then we stop it.
    let writer = spawn(
        env!("CARGO_BIN_EXE_sensors-writer"),
        &["--name", &seg.0, "--count", "0", "--interval-ms", "20"],
    );
    let reader = spawn(
        env!("CARGO_BIN_EXE_sensors-reader"),
        &["--name", &seg.0, "--count", "5", "--timeout-ms", "10000"],
    );
    let out = finish(reader);
    drop(writer);
    let lines: Vec<_> = out.lines().filter(|l| l.contains("Temperature:")).collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines.iter().all(|l| l.contains("status_msg=OK #")), "{out}");
    assert!(
        flexshm_std::exists(&seg.0),
        "the writer keeps the segment without --unlink"
    );
}

#[test]
fn sensors_writer_unlinks_when_asked() {
    let seg = Seg::new("unlink");
    let out = finish(spawn(
        env!("CARGO_BIN_EXE_sensors-writer"),
        &[
            "--name",
            &seg.0,
            "--count",
            "3",
            "--interval-ms",
            "0",
            "--unlink",
        ],
    ));
    assert_eq!(out.matches("writer: #").count(), 3, "{out}");
    assert!(!flexshm_std::exists(&seg.0));
}

#[test]
fn fifo_producer_and_consumer() {
    let seg = Seg::new("fifo");
    // All 10 records fit the 16-slot ring, so the consumer gets every one in order,
    // whenever it starts.
    let out = finish(spawn(
        env!("CARGO_BIN_EXE_fifo-producer"),
        &["--name", &seg.0, "--count", "10", "--interval-ms", "0"],
    ));
    assert!(out.contains("committed seq=10"), "{out}");
    let out = finish(spawn(
        env!("CARGO_BIN_EXE_fifo-consumer"),
        &["--name", &seg.0, "--count", "10", "--timeout-ms", "10000"],
    ));
    let seqs: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("consumer: seq="))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "{out}");
    assert!(out.contains("10 records, 0 lost"), "{out}");
}

#[test]
fn fifo_consumer_reports_losses() {
    let seg = Seg::new("lapped");
    finish(spawn(
        env!("CARGO_BIN_EXE_fifo-producer"),
        &["--name", &seg.0, "--count", "40", "--interval-ms", "0"],
    ));
    // Opened after 40 commits into 16 slots: a new reader starts at the oldest kept
    // record (25) and has lost nothing; --latest gives the newest.
    let out = finish(spawn(
        env!("CARGO_BIN_EXE_fifo-consumer"),
        &["--name", &seg.0, "--count", "1", "--timeout-ms", "1000"],
    ));
    assert!(out.contains("seq=25 "), "{out}");
    let out = finish(spawn(
        env!("CARGO_BIN_EXE_fifo-consumer"),
        &[
            "--name",
            &seg.0,
            "--count",
            "1",
            "--latest",
            "--timeout-ms",
            "1000",
        ],
    ));
    assert!(out.contains("seq=40 "), "{out}");
}

#[test]
fn image_writer_and_reader() {
    let seg = Seg::new("image");
    let writer = spawn(
        env!("CARGO_BIN_EXE_image-writer"),
        &["--name", &seg.0, "--count", "0", "--interval-ms", "5"],
    );
    let out = finish(spawn(
        env!("CARGO_BIN_EXE_image-reader"),
        &["--name", &seg.0, "--count", "3", "--timeout-ms", "10000"],
    ));
    drop(writer);
    assert_eq!(out.matches("consistent").count(), 3, "{out}");
    assert!(!out.contains("TORN"), "{out}");
}

/// True if `valgrind` can be run here.
fn valgrind_found() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `bin` run under valgrind's memcheck, which makes it fail on a memory error.
fn under_valgrind(bin: &str, args: &[&str]) -> Proc {
    let mut all = vec!["-q", "--error-exitcode=97", bin];
    all.extend_from_slice(args);
    spawn("valgrind", &all)
}

/// Both sides of the sensors example under valgrind's memcheck: no crash and no memory
/// error. Programs run under valgrind see an auxiliary vector without the vDSO; flexshm-std
/// once read the process's real one (rustix's default) and crashed at its first clock read.
/// `make test-std` installs valgrind when it can and sets FLEXSHM_REQUIRE_VALGRIND=1 when
/// it is there, so this test cannot pass by finding nothing to run.
#[test]
fn sensors_pair_under_valgrind() {
    if !valgrind_found() {
        let required = std::env::var("FLEXSHM_REQUIRE_VALGRIND").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "FLEXSHM_REQUIRE_VALGRIND=1 but valgrind cannot be run"
        );
        eprintln!("sensors_pair_under_valgrind: valgrind not found, nothing checked");
        return;
    }
    let seg = Seg::new("valgrind");
    let mut writer = under_valgrind(
        env!("CARGO_BIN_EXE_sensors-writer"),
        &["--name", &seg.0, "--count", "0", "--interval-ms", "20"],
    );
    let out = finish(under_valgrind(
        env!("CARGO_BIN_EXE_sensors-reader"),
        &["--name", &seg.0, "--count", "3", "--timeout-ms", "20000"],
    ));
    assert_eq!(out.matches("Temperature:").count(), 3, "{out}");
    // The writer runs until stopped: it must still be running (not crashed) now.
    let exited = writer.0.as_mut().unwrap().try_wait().unwrap();
    if exited.is_some() {
        let out = writer.0.take().unwrap().wait_with_output().unwrap();
        panic!(
            "the writer under valgrind exited early ({})\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
