//! The process pair: the child process, CPU pinning, and the control words the parent
//! and the child share to agree on setup and on the block schedule.
//!
//! Protocol: the parent creates the control page (`flexshm-bench-{tag}-ctl`) and its own
//! side of every system, then starts the child with `--tag` and `--child-cpu`. The child
//! sets up its side and stores `READY` (or `FAILED`). What follows is each benchmark's
//! own use of the remaining words, always a Release store by one side and an Acquire
//! load by the other.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flexshm_bench::{allowed_cpus, pin_to_cpu, spin_until, Args, ShmFile};

use crate::Res;

/// How long one side waits for the other to set up or to finish a step.
pub const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// Control word indices (one word per cache line).
pub const C_READY: usize = 0;
pub const C_FAILED: usize = 1;
pub const C_BLOCK_START: usize = 2;
pub const C_BLOCK_DONE: usize = 3;
/// The number of the last step the child finished (a FIFO block, a wake-up).
pub const C_RESULT: usize = 4;
pub const C_RECEIVED: usize = 5;
pub const C_LOST: usize = 6;
pub const C_PRODUCED: usize = 7;
pub const C_MISORDERED: usize = 8;

/// Control words shared by the two processes, one per cache line.
pub struct Ctl {
    file: ShmFile,
}

impl Ctl {
    fn name(tag: &str) -> String {
        format!("flexshm-bench-{tag}-ctl")
    }

    /// The parent's side: a new, zeroed control page.
    pub fn create(tag: &str) -> Res<Ctl> {
        Ok(Ctl {
            file: ShmFile::create(&Self::name(tag), 4096)?,
        })
    }

    /// The child's side.
    pub fn open(tag: &str) -> Res<Ctl> {
        Ok(Ctl {
            file: ShmFile::open(&Self::name(tag))?,
        })
    }

    /// Control word `i`.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < 64);
        // SAFETY: the mapping is 4096 bytes, page-aligned, so line i (i < 64) holds an
        // aligned u64; both processes access it only through this atomic.
        unsafe { &*(self.file.ptr().add(i * 64) as *const AtomicU64) }
    }

    /// Child: reports the outcome of its setup, passing `setup`'s value or error on.
    pub fn report_setup<T>(&self, setup: Res<T>) -> Res<T> {
        // Pairs with the Acquire loads in `Pair::wait_ready`.
        match setup {
            Ok(v) => {
                self.word(C_READY).store(1, Ordering::Release);
                Ok(v)
            }
            Err(e) => {
                self.word(C_FAILED).store(1, Ordering::Release);
                Err(e)
            }
        }
    }
}

/// The child process and the control page.
pub struct Pair {
    child: Child,
    pub ctl: Ctl,
    tag: String,
}

impl Pair {
    /// Starts the child with `cmd` and this run's arguments; it pins itself to the other
    /// core.
    pub fn start(cmd: &str, args: &Args, tag: &str, ctl: Ctl) -> Res<Pair> {
        let child = Command::new(std::env::current_exe()?)
            .arg(cmd)
            .args(&args.all()[1..])
            .arg("--tag")
            .arg(tag)
            .arg("--child-cpu")
            .arg(cpus().1.to_string())
            .spawn()?;
        Ok(Pair {
            child,
            ctl,
            tag: tag.into(),
        })
    }

    /// Waits until the child has set up its side (or failed).
    pub fn wait_ready(&mut self) -> Res {
        let ok = spin_until(SETUP_LIMIT, || {
            self.ctl.word(C_READY).load(Ordering::Acquire) != 0
                || self.ctl.word(C_FAILED).load(Ordering::Acquire) != 0
        });
        if !ok || self.ctl.word(C_FAILED).load(Ordering::Acquire) != 0 {
            let _ = self.child.kill();
            return Err(format!("child ({}) did not get ready", self.tag).into());
        }
        Ok(())
    }

    /// Waits for the child to exit; an error if it failed.
    pub fn finish(mut self) -> Res {
        let st = self.child.wait()?;
        if !st.success() {
            return Err(format!("child ({}) exited with {st}", self.tag).into());
        }
        Ok(())
    }
}

/// The two CPUs to pin to (the first two this process may use), and whether there are
/// two.
pub fn cpus() -> (usize, usize, bool) {
    let c = allowed_cpus();
    if c.len() >= 2 {
        (c[0], c[1], true)
    } else {
        (c[0], c[0], false)
    }
}

/// Pins the parent to the first CPU; the child gets the second through `--child-cpu`
/// (it inherits the parent's affinity, so it cannot find that CPU itself). False if
/// there are not two CPUs.
pub fn pin_parent() -> bool {
    let (a, _, two) = cpus();
    pin_to_cpu(a) && two
}

/// Pins the child to the CPU the parent chose for it.
pub fn pin_child(args: &Args) -> bool {
    pin_to_cpu(args.get("child-cpu", 1usize))
}

/// The tag that names this run's files: `--tag`, or `{what}-{pid}` in the parent.
pub fn tag_for(args: &Args, what: &str) -> String {
    args.get("tag", format!("{what}-{}", std::process::id()))
}

/// A note for tables of runs that had only one CPU.
pub fn one_cpu_note(two: bool) -> &'static str {
    if two {
        ""
    } else {
        " Only one CPU was available: both processes share it, so these are not \
         cross-core figures."
    }
}

/// Removes this run's files from /dev/shm (`flexshm-bench-{tag}-*`). The benchmark
/// programs keep their mappings for the whole run (regions are `'static`), so their
/// files are removed here, once the run and its child are done.
pub fn remove_segments(tag: &str) {
    let prefix = format!("flexshm-bench-{tag}-");
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
