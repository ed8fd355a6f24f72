//! Helpers shared by the integration tests: unique segment names that are unlinked even
//! when a test fails, child processes (the test binary re-executed in a role), and raw
//! access to a segment's bytes as another program would have it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique segment name, unlinked when the guard is dropped (also on panic).
pub struct SegGuard {
    pub name: String,
}

impl SegGuard {
    pub fn new(test: &str) -> SegGuard {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "flexshm-test-{test}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let _ = flexshm_std::unlink(&name);
        SegGuard { name }
    }

    /// The file backing the segment (Linux: /dev/shm/NAME).
    pub fn path(&self) -> String {
        format!("/dev/shm/{}", self.name)
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.path()).expect("segment file readable")
    }

    /// Overwrites bytes at `off`, as a foreign program would.
    pub fn poke(&self, off: u64, data: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path())
            .unwrap();
        f.write_all_at(data, off).unwrap();
    }

    pub fn word(&self, off: usize) -> u32 {
        let b = self.bytes();
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    pub fn set_len(&self, len: u64) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path())
            .unwrap()
            .set_len(len)
            .unwrap();
    }
}

impl Drop for SegGuard {
    fn drop(&mut self) {
        let _ = flexshm_std::unlink(&self.name);
    }
}

const ROLE: &str = "FLEXSHM_TEST_ROLE";
const SEG: &str = "FLEXSHM_TEST_SEG";

/// In a child process: its role and segment name.
pub fn child_role() -> Option<(String, String)> {
    Some((std::env::var(ROLE).ok()?, std::env::var(SEG).ok()?))
}

/// Child side: sends a line to the parent (prefixed so libtest's own lines are skipped).
pub fn tell(msg: &str) {
    println!("@@{msg}");
    std::io::stdout().flush().unwrap();
}

/// Child side: the next line from the parent; None when the parent closed stdin.
pub fn hear() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// A child process running test `test` of this binary in `role`; killed and reaped on
/// drop, so a failing test leaves no process behind.
pub struct ChildProc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ChildProc {
    pub fn spawn(test: &str, role: &str, seg: &str) -> ChildProc {
        ChildProc::start(
            Command::new(std::env::current_exe().unwrap()),
            test,
            role,
            seg,
        )
    }

    /// Like [`spawn`](Self::spawn), running as user and group `id` (needs root). The
    /// test binary is copied to a world-readable place first, since the build directory
    /// may be one the other user cannot enter.
    pub fn spawn_as(id: u32, test: &str, role: &str, seg: &str) -> ChildProc {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = std::env::temp_dir().join(format!("flexshm-test-exe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("test-binary");
        if !exe.exists() {
            std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut cmd = Command::new(&exe);
        cmd.uid(id).gid(id).current_dir("/");
        ChildProc::start(cmd, test, role, seg)
    }

    fn start(mut cmd: Command, test: &str, role: &str, seg: &str) -> ChildProc {
        let mut child = cmd
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(SEG, seg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("re-executing the test binary");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        ChildProc {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child's next message; panics if it exits first.
    pub fn expect_msg(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "child exited before sending a message");
            // libtest may print "test NAME ... " on the same line before our message.
            if let Some(at) = line.find("@@") {
                return line[at + 2..].trim_end().to_string();
            }
        }
    }

    /// Sends a line to the child.
    pub fn send(&mut self, msg: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        writeln!(s, "{msg}").unwrap();
        s.flush().unwrap();
    }

    /// Closes the child's stdin and waits for it to exit successfully.
    pub fn finish(mut self) {
        self.stdin = None;
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }

    /// Waits for the child to exit and returns its exit code.
    pub fn exit_code(mut self) -> Option<i32> {
        self.stdin = None;
        self.child.wait().unwrap().code()
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when the tests run as root: only then can they play a second user.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The unprivileged user the tests play as (nobody).
pub const OTHER_USER: u32 = 65534;
