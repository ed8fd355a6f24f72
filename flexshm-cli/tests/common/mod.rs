//! Shared by the CLI's integration tests: segment names that clean up after
//! themselves, running `flexshm` with a deadline, writer processes that can be killed.
//!
//! The segments are written with flexshm-std's `Writer<Dynamic>` (the tool reads them
//! through its own code only).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flexshm_std::{CreateOptions, Dynamic, FieldDef, Mode, Writer};

/// The writer the tests use: a schema given at run time.
pub type DynWriter = Writer<Dynamic>;

/// The longest any one run of the tool may take in a test before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Environment variable that turns a test binary into a fixture writer process.
pub const FIXTURE_ENV: &str = "FLEXSHM_CLI_FIXTURE";

/// The prefix of every segment this test process makes: `--match` patterns use it so
/// that tests never look at (or remove) anyone else's segments.
pub fn prefix() -> String {
    format!("flexshm-cli-test-{}-", std::process::id())
}

/// A segment name owned by the test: its file is removed when this is dropped, also
/// when the test fails (panics unwind through the drop).
pub struct Name(pub String);

impl Name {
    pub fn new(tag: &str) -> Name {
        let n = Name(format!("{}{tag}", prefix()));
        let _ = std::fs::remove_file(n.path());
        n
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/dev/shm").join(&self.0)
    }

    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// The result of one run of the tool.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flexshm")
}

/// A `flexshm` command with a fixed help width and no terminal.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .env("COLUMNS", "100")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `flexshm args...` to completion; kills it and fails if it takes longer than
/// [`DEADLINE`].
pub fn run(args: &[&str]) -> Run {
    let child = command(args).spawn().expect("start flexshm");
    finish(child, args)
}

/// Waits for a started `flexshm` with the deadline and collects its output.
pub fn finish(child: Child, args: &[&str]) -> Run {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => {
            let out = out.expect("wait for flexshm");
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            // SAFETY: plain kill(2) of the child we started and have not reaped (the
            // waiting thread still holds it).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("flexshm {args:?} did not finish within {DEADLINE:?}");
        }
    }
}

/// Runs the tool, expects exit status 0 and JSON on stdout.
pub fn json(args: &[&str]) -> serde_json::Value {
    let r = run(args);
    assert_eq!(r.code, 0, "flexshm {args:?} failed: {}", r.stderr);
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("flexshm {args:?}: not JSON ({e}): {}", r.stdout))
}

/// The `ls --json` entry of `name`, if listed.
pub fn ls_entry(listing: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    listing["segments"]
        .as_array()
        .expect("segments array")
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

/// Lines of a child's stdout, delivered over a channel as they are printed.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(out: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end even when nobody listens any more: a child whose pipe
            // closed would fail writing (EPIPE) for no reason of its own.
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Lines(rx)
    }

    /// The next line, or a test failure after [`DEADLINE`].
    pub fn next(&self, what: &str) -> String {
        self.0
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("no line from {what} within {DEADLINE:?}"))
    }

    /// Skips lines until one ends with `marker` (the test harness starts the fixture's
    /// line with its own "test fixture_writer ... ").
    pub fn wait_for(&self, marker: &str, what: &str) {
        while !self.next(what).ends_with(marker) {}
    }
}

/// A child process killed (and reaped) when dropped, unless it was already waited for.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Kills it with SIGKILL (no chance to clean up: a crash) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Closes its stdin and waits for it to exit on its own.
    pub fn finish(&mut self) -> std::process::ExitStatus {
        let mut c = self.0.take().expect("running");
        drop(c.stdin.take());
        c.wait().expect("wait")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts this test binary again as a fixture writer (`spec` is read by
/// [`fixture_main`]); returns once it has written and printed `FIXTURE READY`.
pub fn spawn_fixture(spec: &str) -> Proc {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "fixture_writer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(FIXTURE_ENV, spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the fixture writer");
    let lines = Lines::new(child.stdout.take().expect("stdout"));
    let p = Proc(Some(child));
    lines.wait_for("FIXTURE READY", "the fixture writer");
    p
}

/// The fixture writer: `kind:name`. Creates the segment, writes, says so, then holds
/// the writer role until its stdin closes (or it is killed).
pub fn fixture_main(spec: &str) {
    let (kind, name) = spec.split_once(':').expect("kind:name");
    let w = match kind {
        "single" => {
            let mut w = create(name, all_kinds(), Mode::Single);
            write_all_kinds(&mut w);
            w
        }
        "fifo" => {
            let mut w = create(name, all_kinds(), Mode::Fifo { slots: 4 });
            for i in 0..3 {
                w.write_named(&[("i32", flexshm_std::Value::Int(i))])
                    .expect("write");
                w.finalize().expect("finalize");
            }
            w
        }
        other => panic!("unknown fixture {other}"),
    };
    println!("FIXTURE READY");
    std::io::stdout().flush().expect("flush");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(w);
}

pub fn create(name: &str, fields: Vec<FieldDef>, mode: Mode) -> DynWriter {
    DynWriter::create_with_fields(
        name,
        &fields,
        &CreateOptions {
            mode,
            ..Default::default()
        },
    )
    .expect("create the segment")
}

/// Every kind of field: each scalar dtype, a string, arrays of 1 to 3 dimensions, and
/// one field that stays unwritten.
pub fn all_kinds() -> Vec<FieldDef> {
    use flexshm_std::{Dtype as D, Kind};
    vec![
        FieldDef::new("flag", Kind::Scalar(D::Bool)),
        FieldDef::new("i8", Kind::Scalar(D::I8)),
        FieldDef::new("i16", Kind::Scalar(D::I16)),
        FieldDef::new("i32", Kind::Scalar(D::I32)),
        FieldDef::new("i64", Kind::Scalar(D::I64)),
        FieldDef::new("u8", Kind::Scalar(D::U8)),
        FieldDef::new("u16", Kind::Scalar(D::U16)),
        FieldDef::new("u32", Kind::Scalar(D::U32)),
        FieldDef::new("u64", Kind::Scalar(D::U64)),
        FieldDef::new("f32", Kind::Scalar(D::F32)),
        FieldDef::new("f64", Kind::Scalar(D::F64)),
        FieldDef::new("label", Kind::str(6)),
        FieldDef::new("note", Kind::str(16)),
        FieldDef::new("vec", Kind::array(D::F32, &[4])),
        FieldDef::new("mat", Kind::array(D::I16, &[3, 2])),
        FieldDef::new("cube", Kind::array(D::U8, &[2, 2, 3])),
        FieldDef::new("never", Kind::Scalar(D::U32)),
    ]
}

fn ne<const N: usize>(items: impl IntoIterator<Item = [u8; N]>) -> Vec<u8> {
    items.into_iter().flatten().collect()
}

/// Writes one record of [`all_kinds`]: a string cut to its capacity (truncated), a
/// partly filled array, and `never` left unwritten.
pub fn write_all_kinds(w: &mut DynWriter) {
    use flexshm_std::{ArrayRef, Dtype as D, Value as V};
    let vec = ne([1.5f32, -2.0, 0.1].map(f32::to_ne_bytes));
    let mat = ne([1i16, -2, 300, -32768].map(i16::to_ne_bytes));
    let cube: Vec<u8> = (1..=12).collect();
    let arr = |d, shape: &[usize], b| V::Array(ArrayRef::new(d, shape, b).expect("shape"));
    w.write_fields(&[
        (0, V::Bool(true)),
        (1, V::Int(-128)),
        (2, V::Int(-32768)),
        (3, V::Int(-42)),
        (4, V::Int(i64::MIN)),
        (5, V::UInt(255)),
        (6, V::UInt(65535)),
        (7, V::UInt(u32::MAX as u64)),
        (8, V::UInt(u64::MAX)),
        (9, V::Float(0.1)),
        (10, V::Float(-40.0625)),
        (11, V::Str("much too long")),
        (12, V::Str("Grüße 🌍")),
        (13, arr(D::F32, &[3], &vec)),
        (14, arr(D::I16, &[2, 2], &mat)),
        (15, arr(D::U8, &[2, 2, 3], &cube)),
    ])
    .expect("write");
}

/// The interpreter of the repository's `.venv` with `flexible_shared_memory`
/// installed, or why there is none.
pub fn python() -> Result<PathBuf, String> {
    let venv = match std::env::var_os("FLEXSHM_CLI_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    };
    if !venv.exists() {
        return Err(format!(
            "{} does not exist (make build-py creates it)",
            venv.display()
        ));
    }
    let ok = Command::new(&venv)
        .args(["-c", "import flexible_shared_memory"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!(
            "{} cannot import flexible_shared_memory (make build-py installs it)",
            venv.display()
        ));
    }
    Ok(venv)
}

/// Says that (part of) a test is skipped and why, on the real stderr: the test harness
/// captures `eprintln!` of passing tests, and a skip must not go unseen.
pub fn say_skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether a test that cannot run here must fail instead of being skipped (set by
/// `make test-cli`, which installs what these tests need).
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}
