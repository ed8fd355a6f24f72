//! `flexshm watch` in a real terminal: tmux runs it in a pseudo-terminal while a writer
//! commits; the test reads the screen with capture-pane, quits with q, Ctrl-C and
//! SIGTERM and checks each time that the terminal is given back: main screen, cursor
//! shown, line discipline (icanon, echo) restored.
//!
//! Skipped, saying so, when tmux is missing; `make test-cli` installs it (as root) and
//! sets FLEXSHM_CLI_REQUIRE_TMUX=1 so that the test cannot be skipped there.

mod common;

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Name;
use flexshm_std::{
    ArrayRef, CreateOptions, Dtype, Dynamic, FieldDef, Kind, Mode, Value as V, Writer,
};

type DynWriter = Writer<Dynamic>;

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start() -> Option<Tmux> {
        let t = Tmux {
            socket: format!("flexshm-cli-test-{}", std::process::id()),
        };
        // A plain POSIX shell in a 120×30 terminal, no user configuration.
        let out = t.try_run(&[
            "new-session",
            "-d",
            "-s",
            "live",
            "-x",
            "120",
            "-y",
            "30",
            "sh",
        ]);
        match out {
            Some(o) if o.status.success() => Some(t),
            Some(o) => panic!(
                "tmux new-session failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            None => None,
        }
    }

    fn try_run(&self, args: &[&str]) -> Option<Output> {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env("PS1", "$ ")
            .output()
            .ok()
    }

    fn run(&self, args: &[&str]) -> String {
        let o = self.try_run(args).expect("run tmux");
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Types `text` and Enter.
    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "live", "-l", text]);
        self.run(&["send-keys", "-t", "live", "Enter"]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "live"])
    }

    /// A pane property (`#{alternate_on}`, `#{cursor_flag}`).
    fn pane(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "live", format])
            .trim()
            .to_string()
    }

    /// Waits until the screen satisfies `ok` (the screen has no event to wait on, so it
    /// is looked at every 50 ms) and returns it; fails with the last screen after 20 s.
    fn wait_screen(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "the screen never showed {what}; last screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.try_run(&["kill-server"]);
    }
}

/// A writer thread committing a new `tick` every 20 ms until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(mut w: DynWriter) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                i += 1;
                let label = format!("tick-{i}");
                let vec: Vec<u8> = [i as f32, 0.5, -1.0]
                    .iter()
                    .flat_map(|x| x.to_ne_bytes())
                    .collect();
                let arr = ArrayRef::new(Dtype::F32, &[3], &vec).expect("shape");
                w.write_fields(&[
                    (0, V::UInt(i)),
                    (1, V::Str(&label)),
                    (2, V::Float(20.0 + i as f64 / 4.0)),
                    (3, V::Array(arr)),
                ])
                .expect("write");
                if w.mode().is_fifo() {
                    w.finalize().expect("finalize");
                }
                // The writer's pace, not synchronisation.
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("tick", Kind::Scalar(Dtype::U64)),
        FieldDef::new("label", Kind::str(16)),
        FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
        FieldDef::new("vec", Kind::array(Dtype::F32, &[4])),
        FieldDef::new("never", Kind::Scalar(Dtype::I32)),
    ]
}

/// The number after `tick-` on the screen.
fn tick(screen: &str) -> Option<u64> {
    let rest = screen.split("\"tick-").nth(1)?;
    rest.split('"').next()?.parse().ok()
}

/// The rate shown as `rate X Hz`.
fn rate(screen: &str) -> Option<f64> {
    let rest = screen.split("rate ").nth(1)?;
    rest.split(" Hz").next()?.trim().parse().ok()
}

/// Clears the screen (no dependency on `clear` and the terminfo database).
const CLEAR: &str = "printf '\\033[H\\033[2J'";

/// What `stty -a` says about icanon and echo, after the watcher left.
const STTY: &str = "stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo";

#[test]
fn the_live_view_updates_and_gives_the_terminal_back() {
    let Some(tmux) = Tmux::start() else {
        assert!(
            !common::required("FLEXSHM_CLI_REQUIRE_TMUX"),
            "FLEXSHM_CLI_REQUIRE_TMUX=1 but tmux cannot be run"
        );
        common::say_skipped(
            "the_live_view_updates_and_gives_the_terminal_back",
            "tmux is not installed (apt-get install tmux)",
        );
        return;
    };
    let bin = common::bin();

    // Single-slot, quit with q.
    let single = Name::new("live-single");
    let w = DynWriter::create_with_fields(single.as_str(), &fields(), &CreateOptions::default())
        .unwrap();
    let ticker = Ticker::start(w);
    tmux.type_line(&format!(
        "{CLEAR}; {bin} watch {}; echo watch-exit=$?; {STTY}",
        single.0
    ));
    let first = tmux.wait_screen("a record and a rate", |s| {
        s.contains(&format!("flexshm watch {}", single.0))
            && tick(s).is_some()
            && rate(s).is_some_and(|r| r > 0.0)
    });
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "1",
        "the view uses the alternate screen"
    );
    let n = tick(&first).unwrap();
    let later = tmux.wait_screen("newer values", |s| tick(s).is_some_and(|m| m > n));
    let row = |s: &str, field: &str| {
        s.lines()
            .find(|l| l.trim_start_matches('│').starts_with(field))
            .map(|l| {
                l.trim_matches(|c: char| c == '│' || c.is_whitespace())
                    .to_string()
            })
            .unwrap_or_else(|| panic!("no row {field} in\n{s}"))
    };
    let m = tick(&later).unwrap();
    // One record: tick, label and temperature of the same commit.
    let tick_row = row(&later, "tick ");
    assert!(tick_row.contains("valid, modified"), "{tick_row}");
    assert!(tick_row.ends_with(&m.to_string()), "{later}");
    let temp = 20.0 + m as f64 / 4.0;
    assert!(
        row(&later, "temperature").ends_with(&format!("{temp:?}")),
        "{later}"
    );
    let vec_row = row(&later, "vec ");
    assert!(
        vec_row.contains(&format!("float32 [3] of [4] min -1.0 max {:?}", m as f32)),
        "{vec_row}"
    );
    assert!(row(&later, "never").contains("unwritten"), "{later}");
    assert!(
        later.contains(&format!("writer {} alive", std::process::id())),
        "{later}"
    );

    tmux.run(&["send-keys", "-t", "live", "q"]);
    let after = tmux.wait_screen("the shell again", |s| s.contains("watch-exit=0"));
    assert_eq!(
        tmux.pane("#{alternate_on}"),
        "0",
        "back on the main screen:\n{after}"
    );
    assert_eq!(tmux.pane("#{cursor_flag}"), "1", "cursor shown:\n{after}");
    let modes = tmux.wait_screen("stty's answer", |s| {
        s.lines().any(|l| l.starts_with("icanon echo"))
    });
    assert!(
        !modes.contains("-icanon") && !modes.contains("-echo"),
        "{modes}"
    );
    drop(ticker);

    // FIFO, quit with Ctrl-C: the viewer reads every record with its own cursor.
    let fifo = Name::new("live-fifo");
    let opts = CreateOptions {
        mode: Mode::Fifo { slots: 64 },
        ..Default::default()
    };
    let w = DynWriter::create_with_fields(fifo.as_str(), &fields(), &opts).unwrap();
    let ticker = Ticker::start(w);
    tmux.type_line(&format!(
        "{CLEAR}; {bin} watch {}; echo watch-exit=$?; {STTY}",
        fifo.0
    ));
    let screen = tmux.wait_screen("FIFO records", |s| {
        s.contains("mode fifo 64")
            && tick(s).is_some_and(|t| t > 3)
            && rate(s).is_some_and(|r| r > 0.0)
    });
    assert!(screen.contains("lost 0"), "{screen}");
    tmux.run(&["send-keys", "-t", "live", "C-c"]);
    tmux.wait_screen("the shell again", |s| s.contains("watch-exit=0"));
    assert_eq!(tmux.pane("#{alternate_on}"), "0");
    assert_eq!(tmux.pane("#{cursor_flag}"), "1");
    let modes = tmux.wait_screen("stty's answer", |s| {
        s.lines().any(|l| l.starts_with("icanon echo"))
    });
    assert!(
        !modes.contains("-icanon") && !modes.contains("-echo"),
        "{modes}"
    );

    // SIGTERM (kill, a session manager) ends the view too, with the terminal restored.
    let pidfile = std::env::temp_dir().join(format!("{}-watch.pid", fifo.0));
    let _ = std::fs::remove_file(&pidfile);
    tmux.type_line(&format!(
        "{CLEAR}; sh -c 'echo $$ > {}; exec {bin} watch {}'; echo watch-exit=$?; {STTY}",
        pidfile.display(),
        fifo.0
    ));
    tmux.wait_screen("the view again", |s| s.contains("mode fifo 64"));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("the watcher's pid")
        .trim()
        .parse()
        .expect("a pid");
    let _ = std::fs::remove_file(&pidfile);
    // SAFETY: kill(2) with a pid the watcher's shell wrote; the process is in our pane.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    tmux.wait_screen("the shell after SIGTERM", |s| s.contains("watch-exit=0"));
    assert_eq!(tmux.pane("#{alternate_on}"), "0");
    assert_eq!(tmux.pane("#{cursor_flag}"), "1");
    let modes = tmux.wait_screen("stty's answer", |s| {
        s.lines().any(|l| l.starts_with("icanon echo"))
    });
    assert!(
        !modes.contains("-icanon") && !modes.contains("-echo"),
        "{modes}"
    );
    drop(ticker);
}
