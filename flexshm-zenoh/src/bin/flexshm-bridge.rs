//! `flexshm-bridge`: publish local flexshm segments over Zenoh and mirror remote ones.
//!
//! A stand-in for `flexshm bridge` (the CLI crate will call the same library) so that
//! the bridge can be run and tested now. `flexshm-bridge --help` lists the options.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flexshm_core::Mode;
use flexshm_zenoh::{run_bridge, MirrorSpec, PublishSpec, StartAt, ZenohOptions};

const USAGE: &str = "\
usage: flexshm-bridge [OPTIONS] (--publish SEGMENT[=KEY] | --mirror KEY=SEGMENT)...

Publishes local flexshm segments on Zenoh key expressions and mirrors key expressions
into local segments (created with the publisher's schema if missing).

Bridge:
  --publish SEGMENT[=KEY]   publish SEGMENT on KEY (default flexshm/SEGMENT); repeatable.
                            With * or ?, SEGMENT is a pattern: every matching segment
                            NAME is published on KEY/NAME (default flexshm/NAME)
  --mirror KEY=SEGMENT      write the records published on KEY into local SEGMENT; repeatable
  --max-rate HZ             single-slot segments: publish at most HZ records per second
  --express                 send each message at once (no batching): lower latency
  --start oldest|newest     FIFO: where publishing starts (default oldest in the ring)
  --slots N                 mirror into a FIFO of N slots (default: the publisher's mode);
                            1 means single-slot
  --permissions OCTAL       file mode of new mirror segments (default 600)
  --stats SECS              log the counts every SECS seconds
  --duration SECS           stop after SECS seconds (default: run until SIGINT/SIGTERM)

Zenoh (passed through):
  --config FILE             Zenoh configuration file (JSON5), applied first
  --mode peer|client        Zenoh mode
  --connect ENDPOINT        e.g. tcp/192.0.2.7:7447; repeatable
  --listen ENDPOINT         e.g. tcp/0.0.0.0:7447; repeatable
  --no-multicast-scouting   do not discover peers by multicast

Logs go through RUST_LOG (default: warn, and info for the bridge).
";

struct Args {
    zenoh: ZenohOptions,
    publish: Vec<PublishSpec>,
    mirror: Vec<MirrorSpec>,
    duration: Option<Duration>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut zenoh = ZenohOptions::default();
    let mut publish = Vec::new();
    let mut mirror = Vec::new();
    let (mut max_rate, mut express, mut start) = (None, false, StartAt::Oldest);
    let (mut slots, mut permissions, mut stats, mut duration) = (None, 0o600, None, None);
    let secs = |v: String, what: &str| -> Result<Duration, String> {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or(format!("{what}: not a number of seconds: '{v}'"))
    };
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--publish" => {
                let v = val("--publish")?;
                let (seg, key) = match v.split_once('=') {
                    Some((s, k)) => (s.to_string(), Some(k.to_string())),
                    None => (v, None),
                };
                let mut spec = PublishSpec::new(&seg);
                spec.key = key;
                publish.push(spec);
            }
            "--mirror" => {
                let v = val("--mirror")?;
                let (key, seg) = v
                    .split_once('=')
                    .ok_or(format!("--mirror wants KEY=SEGMENT, got '{v}'"))?;
                mirror.push(MirrorSpec::new(key, seg));
            }
            "--max-rate" => {
                let v = val("--max-rate")?;
                let r = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or(format!("--max-rate: not a positive number: '{v}'"))?;
                max_rate = Some(r);
            }
            "--express" => express = true,
            "--start" => {
                start = match val("--start")?.as_str() {
                    "oldest" => StartAt::Oldest,
                    "newest" => StartAt::Newest,
                    v => return Err(format!("--start: 'oldest' or 'newest', got '{v}'")),
                }
            }
            "--slots" => {
                let v = val("--slots")?;
                let n = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("--slots: not a positive integer: '{v}'"))?;
                slots = Some(if n == 1 {
                    Mode::Single
                } else {
                    Mode::Fifo { slots: n }
                });
            }
            "--permissions" => {
                let v = val("--permissions")?;
                let digits = v.trim_start_matches("0o");
                permissions = u32::from_str_radix(digits, 8)
                    .ok()
                    .filter(|p| *p <= 0o777)
                    .ok_or(format!("--permissions: not octal mode bits: '{v}'"))?;
            }
            "--stats" => stats = Some(secs(val("--stats")?, "--stats")?),
            "--duration" => duration = Some(secs(val("--duration")?, "--duration")?),
            "--config" => zenoh.config_file = Some(val("--config")?.into()),
            "--mode" => zenoh.mode = Some(val("--mode")?.parse().map_err(|e| format!("{e}"))?),
            "--connect" => zenoh.connect.push(val("--connect")?),
            "--listen" => zenoh.listen.push(val("--listen")?),
            "--no-multicast-scouting" => zenoh.multicast_scouting = Some(false),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if publish.is_empty() && mirror.is_empty() {
        return Err("nothing to do: give --publish or --mirror".into());
    }
    for p in &mut publish {
        p.options.max_rate = max_rate;
        p.options.stats_every = stats;
        p.express = express;
        p.start = start;
    }
    for m in &mut mirror {
        m.mode = slots;
        m.permissions = permissions;
        m.options.stats_every = stats;
    }
    Ok(Some(Args {
        zenoh,
        publish,
        mirror,
        duration,
    }))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("flexshm-bridge: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    flexshm_zenoh::init_logging("warn,flexshm_zenoh=info,flexshm_bridge=info");
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let deadline = args.duration.map(|d| std::time::Instant::now() + d);
        std::thread::spawn(move || {
            let running = || match deadline {
                Some(t) => std::time::Instant::now() < t,
                None => true,
            };
            while !STOP.load(Ordering::Relaxed) && running() && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let names: Vec<String> = args
        .publish
        .iter()
        .map(|p| format!("publish {} on {}", p.segment, p.key()))
        .chain(
            args.mirror
                .iter()
                .map(|m| format!("mirror {} into {}", m.key, m.segment)),
        )
        .collect();
    let report = run_bridge(&args.zenoh, args.publish, args.mirror, Arc::clone(&stop));
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flexshm-bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    let results = report
        .publishers
        .iter()
        .map(|r| r.as_ref().map(|s| format!("{s:?}")))
        .chain(
            report
                .mirrors
                .iter()
                .map(|r| r.as_ref().map(|s| format!("{s:?}"))),
        );
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(s) => println!("flexshm-bridge: {name}: {s}"),
            Err(e) => {
                failed = true;
                eprintln!("flexshm-bridge: {name}: error: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
