//! What the bridge tests share: `flexshm bridge` processes that are killed if a test
//! fails, the writer of side A, the Python reader of side B, and the counters a bridge
//! prints when it stops.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use flexshm_std::{
    ArrayRef, CreateOptions, Dtype, Dynamic, FieldDef, Kind, OpenOptions, Reader, Value, Writer,
};

use crate::common;

/// How long any one wait of these tests may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `tcp/127.0.0.1:<free port>`.
pub fn endpoint() -> String {
    format!("tcp/127.0.0.1:{}", free_port())
}

/// The record the tests bridge: SensorData plus a sequence number and an array.
pub fn fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
        FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
        FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
        FieldDef::new("status_msg", Kind::str(32)),
        FieldDef::new("seq", Kind::Scalar(Dtype::U32)),
        FieldDef::new("samples", Kind::array(Dtype::I16, &[4, 2])),
    ]
}

/// Creates side A's segment.
pub fn create(name: &common::Name, opts: &CreateOptions) -> Writer<Dynamic> {
    Writer::<Dynamic>::create_with_fields(name.as_str(), &fields(), opts).expect("create")
}

/// Writes record `k` (and commits it in FIFO mode); `bridge_reader.py` checks exactly
/// this: `pressure` never written, `timestamp` only in record 1, a string cut to its
/// capacity every 97th record and an array cut to its first dimension every 89th.
pub fn write_record(w: &mut Writer<Dynamic>, k: u32) {
    let msg = if k.is_multiple_of(97) {
        format!("record {k} {}", "x".repeat(40))
    } else {
        format!("record {k}")
    };
    let rows = if k.is_multiple_of(89) {
        5
    } else {
        (k % 5) as usize
    };
    let samples: Vec<u8> = (0..rows * 2)
        .map(|e| (e as u32).wrapping_add(k) as u16 as i16)
        .flat_map(i16::to_ne_bytes)
        .collect();
    let array = ArrayRef::new(Dtype::I16, &[rows, 2], &samples).expect("array");
    let mut values = vec![
        (0, Value::Float(k as f64 * 0.5)),
        (3, Value::Str(&msg)),
        (4, Value::UInt(k as u64)),
        (5, Value::Array(array)),
    ];
    if k == 1 {
        values.push((2, Value::Float(1.5)));
    }
    w.write_fields(&values).expect("write");
    if w.mode().is_fifo() {
        w.finalize().expect("finalize");
    }
}

/// Opens a segment once it exists (flexshm-std's own wait).
pub fn open_when_there(name: &str) -> Reader<Dynamic> {
    Reader::<Dynamic>::open_with(name, &OpenOptions { timeout: PATIENCE })
        .unwrap_or_else(|e| panic!("segment {name} did not appear: {e}"))
}

/// Waits until `r`'s newest commit number is at least `n`.
pub fn wait_head(r: &mut Reader<Dynamic>, n: u32, what: &str) {
    let t0 = Instant::now();
    loop {
        let head = r.head();
        if head >= n {
            return;
        }
        assert!(
            t0.elapsed() < PATIENCE,
            "{what}: head {head}, waited for {n}"
        );
        let _ = r.wait_head_change(head, Duration::from_millis(200));
    }
}

/// The counters a bridge printed for a publisher (`what` = "publish") or a mirror
/// ("mirror"): `name=value` pairs after the line's colon.
pub fn counters(stdout: &str, what: &str) -> HashMap<String, u64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no '{what}' line in:\n{stdout}"));
    line.rsplit_once(": ")
        .map(|(_, c)| c)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().expect("a count")))
        .collect()
}

/// What a stopped bridge left: its exit status, stdout and stderr.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn count(&self, what: &str, counter: &str) -> u64 {
        counters(&self.stdout, what)
            .get(counter)
            .copied()
            .unwrap_or_else(|| panic!("no {counter} in the {what} line:\n{}", self.stdout))
    }
}

/// Lines a child process printed, collected by a thread as they come (so that a child
/// that logs a lot never blocks on a full pipe) and waited for without polling.
#[derive(Default)]
struct Lines {
    text: Mutex<String>,
    grew: Condvar,
}

impl Lines {
    fn collect(self: &Arc<Self>, from: impl Read + Send + 'static) -> std::thread::JoinHandle<()> {
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                let mut t = me.text.lock().expect("lines");
                t.push_str(&line);
                t.push('\n');
                me.grew.notify_all();
            }
        })
    }

    fn get(&self) -> String {
        self.text.lock().expect("lines").clone()
    }
}

fn count_lines(text: &str, needles: &[&str]) -> usize {
    text.lines()
        .filter(|l| needles.iter().all(|s| l.contains(s)))
        .count()
}

/// A `flexshm bridge` process; dropping it kills the process.
pub struct Bridge {
    child: Option<Child>,
    out: Arc<Lines>,
    err: Arc<Lines>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Bridge {
    /// Starts `flexshm bridge --no-multicast-scouting ARGS`.
    pub fn start(args: &[&str]) -> Bridge {
        let mut child = Command::new(common::bin())
            .arg("bridge")
            .arg("--no-multicast-scouting")
            .args(args)
            .env("RUST_LOG", "warn,flexshm_zenoh=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flexshm bridge");
        let (out, err) = (Arc::new(Lines::default()), Arc::new(Lines::default()));
        let readers = vec![
            out.collect(child.stdout.take().expect("stdout")),
            err.collect(child.stderr.take().expect("stderr")),
        ];
        Bridge {
            child: Some(child),
            out,
            err,
            readers,
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().expect("running").id() as libc::pid_t;
        // SAFETY: kill(2) on our own child, which has not been reaped (it is reaped only
        // when taken out of `self.child`).
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// What the bridge has logged so far.
    pub fn log(&self) -> String {
        self.err.get()
    }

    /// How many lines the bridge has logged that contain every one of `needles`.
    pub fn log_count(&self, needles: &[&str]) -> usize {
        count_lines(&self.err.get(), needles)
    }

    /// Waits until the bridge has logged `times` lines that contain every one of
    /// `needles`.
    pub fn wait_for_log(&self, needles: &[&str], times: usize) {
        let text = self.err.text.lock().expect("lines");
        let (text, timeout) = self
            .err
            .grew
            .wait_timeout_while(text, PATIENCE, |t| count_lines(t, needles) < times)
            .expect("lines");
        assert!(
            !timeout.timed_out(),
            "the bridge did not log {times} lines with {needles:?}:\n{}",
            *text
        );
    }

    /// Kills the bridge at once (no clean shutdown), as a crash would.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for a bridge that stops by itself.
    pub fn wait(mut self) -> Finished {
        let mut c = self.child.take().expect("running");
        let pid = c.id() as libc::pid_t;
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = c.wait();
            let _ = tx.send(());
            status
        });
        if rx.recv_timeout(PATIENCE).is_err() {
            // SAFETY: kill(2) on our child; the waiter thread has not reaped it (it would
            // have sent first).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            panic!("the bridge did not stop:\n{}", self.log());
        }
        let code = waiter.join().expect("waiter").expect("wait").code();
        // The pipes close with the process: the collectors have everything.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            code,
            stdout: self.out.get(),
            stderr: self.err.get(),
        }
    }

    /// Stops the bridge with SIGTERM and returns what it printed.
    pub fn stop(self) -> Finished {
        self.signal(libc::SIGTERM);
        self.wait()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The Python reader of side B (`tests/python/bridge_reader.py`), killed if dropped.
pub struct PyReader {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
}

/// What the Python reader read.
#[derive(Debug)]
pub struct PyReport(pub serde_json::Value);

impl PyReport {
    pub fn u(&self, key: &str) -> u64 {
        self.0[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {}", self.0))
    }

    /// Records missing from 1..=last.
    pub fn missing(&self) -> u64 {
        self.0["gaps"]
            .as_array()
            .expect("gaps")
            .iter()
            .map(|g| g[1].as_u64().unwrap() - g[0].as_u64().unwrap() + 1)
            .sum()
    }

    pub fn gaps(&self) -> usize {
        self.0["gaps"].as_array().expect("gaps").len()
    }

    /// Panics if a record was out of order, seen twice, or not what the writer wrote.
    pub fn assert_consistent(&self) {
        assert_eq!(self.u("out_of_order"), 0, "{}", self.0);
        assert_eq!(self.u("records"), self.u("distinct"), "{}", self.0);
        assert_eq!(
            self.0["bad"].as_array().map(Vec::len),
            Some(0),
            "{}",
            self.0
        );
    }
}

impl PyReader {
    /// Starts a reader of `name` (`mode` "fifo" or "single") that reads until it sees
    /// `seq == last` (`None`: the number given later with [`last`](Self::last)); waits
    /// until it has the segment open. `None` (said on stderr) if there is no Python with
    /// the package here and the test may skip.
    pub fn start(test: &str, name: &str, mode: &str, last: Option<u32>) -> Option<PyReader> {
        let py = match common::python() {
            Ok(p) => p,
            Err(why) if !common::required("FLEXSHM_CLI_REQUIRE_PY") => {
                common::say_skipped(test, &why);
                return None;
            }
            Err(why) => panic!("FLEXSHM_CLI_REQUIRE_PY=1 but {why}"),
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/bridge_reader.py");
        let mut child = Command::new(py)
            .arg(script)
            .args([name, mode])
            .arg(last.map_or("-".to_string(), |n| n.to_string()))
            .arg(PATIENCE.as_secs().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let r = PyReader {
            child: Some(child),
            lines,
        };
        let first = r
            .lines
            .recv_timeout(PATIENCE)
            .expect("the reader's first line");
        assert_eq!(first, "OPEN");
        Some(r)
    }

    /// Tells a reader started without a last record which one it is.
    pub fn last(&mut self, seq: u32) {
        let c = self.child.as_mut().expect("running");
        let stdin = c.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{seq}").expect("tell the reader");
        stdin.flush().expect("tell the reader");
    }

    /// Waits for the reader's report.
    pub fn report(mut self) -> PyReport {
        let line = self
            .lines
            .recv_timeout(PATIENCE + Duration::from_secs(10))
            .expect("the reader's report");
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        PyReport(serde_json::from_str(&line).expect("JSON report"))
    }
}

impl Drop for PyReader {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
