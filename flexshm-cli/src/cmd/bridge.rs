//! `flexshm bridge`: carry segments between machines over Zenoh (crate flexshm-zenoh).
//!
//! This module only turns the command line into the library's specs and reports what
//! came back; the bridge itself is `flexshm_zenoh::run_bridge`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flexshm_core::Mode;
use flexshm_zenoh::{
    run_bridge, MirrorSpec, MirrorStats, PublishSpec, PublishStats, StartAt, ZenohMode,
    ZenohOptions,
};

use crate::Failure;

/// Carry segments to other machines over Zenoh: publish local ones, mirror remote ones.
///
/// --publish reads a local segment as an ordinary reader (its writer does not notice) and
/// puts every commit on a Zenoh key: in FIFO mode every record, in order; in single-slot
/// mode each new commit, at most --max-rate a second. While no subscriber is there, it
/// takes nothing from the segment: FIFO records wait in the ring. --mirror subscribes to a key and
/// writes every record it receives into a local segment, created with the publisher's
/// schema if it is missing, so that local programs read remote data with the plain
/// flexshm API. The schema, the commit numbers and every field's status (unwritten,
/// truncated) travel with the data. One process can publish and mirror any number of
/// segments. It runs until Ctrl-C, SIGTERM or --duration, then prints the counters of
/// each publisher and mirror (records sent, written, lost, skipped); docs/BRIDGE.md
/// explains them and the wire format.
///
/// The Zenoh options override those of --config; without --connect, peers on the local
/// network find each other by multicast scouting. Logs: RUST_LOG (default: warnings, and
/// the bridge's own informational lines).
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("work").required(true).multiple(true).args(["publish", "mirror"]))]
pub struct Args {
    /// Publish local SEGMENT on KEY (default flexshm/SEGMENT); repeatable. With * or ?,
    /// SEGMENT is a pattern: every matching segment NAME (rescanned every second) is
    /// published on KEY/NAME (default flexshm/NAME)
    #[arg(long, value_name = "SEGMENT[=KEY]")]
    pub publish: Vec<String>,
    /// Write the records published on KEY into local SEGMENT; repeatable
    #[arg(long, value_name = "KEY=SEGMENT", value_parser = key_and_segment)]
    pub mirror: Vec<(String, String)>,
    /// Single-slot segments: publish at most HZ records a second (the newest each time)
    #[arg(long, value_name = "HZ", value_parser = positive)]
    pub max_rate: Option<f64>,
    /// Send each message at once instead of letting Zenoh batch small messages: lower
    /// latency, lower throughput
    #[arg(long)]
    pub express: bool,
    /// FIFO: start publishing at the oldest record still in the ring, or at the newest
    #[arg(long, value_name = "WHERE", default_value = "oldest", value_parser = ["oldest", "newest"])]
    pub start: String,
    /// Mirror into a FIFO of N slots (1: single-slot) instead of the publisher's mode
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1 << 24))]
    pub slots: Option<u32>,
    /// File mode of a mirror segment the bridge creates
    #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = octal_mode)]
    pub permissions: u32,
    /// Log the counters every SECONDS
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub stats: Option<f64>,
    /// Stop after SECONDS (default: run until Ctrl-C or SIGTERM)
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub duration: Option<f64>,
    /// Zenoh configuration file (JSON5), read first; the options below override it
    #[arg(long, value_name = "FILE", help_heading = "Zenoh")]
    pub config: Option<PathBuf>,
    /// Zenoh mode
    #[arg(long, value_name = "MODE", value_parser = ["peer", "client"], help_heading = "Zenoh")]
    pub mode: Option<String>,
    /// Connect to ENDPOINT, e.g. tcp/192.0.2.7:7447; repeatable
    #[arg(long, value_name = "ENDPOINT", help_heading = "Zenoh")]
    pub connect: Vec<String>,
    /// Listen on ENDPOINT, e.g. tcp/0.0.0.0:7447; repeatable
    #[arg(long, value_name = "ENDPOINT", help_heading = "Zenoh")]
    pub listen: Vec<String>,
    /// Do not look for peers by multicast scouting
    #[arg(long, help_heading = "Zenoh")]
    pub no_multicast_scouting: bool,
}

const EXAMPLES: &str = "Examples:
  host A:  flexshm bridge --listen tcp/0.0.0.0:7447 --publish sensors
  host B:  flexshm bridge --connect tcp/192.0.2.10:7447 --mirror flexshm/sensors=sensors
  with a Zenoh router: flexshm bridge --mode client --connect tcp/192.0.2.1:7447 --publish 'cam-*'";

fn key_and_segment(s: &str) -> Result<(String, String), String> {
    match s.rsplit_once('=') {
        Some((k, seg)) if !k.is_empty() && !seg.is_empty() => Ok((k.to_string(), seg.to_string())),
        _ => Err(format!("'{s}' is not KEY=SEGMENT")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1e9).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

fn octal_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "'{s}' is not an octal file mode such as 600 or 640"
        )),
    }
}

/// What the command line asks for, as the library's specs.
struct Plan {
    zenoh: ZenohOptions,
    publish: Vec<PublishSpec>,
    mirror: Vec<MirrorSpec>,
}

fn plan(args: &Args) -> Result<Plan, Failure> {
    let mode = args.mode.as_deref().map(|m| match m {
        "client" => ZenohMode::Client,
        _ => ZenohMode::Peer,
    });
    let zenoh = ZenohOptions {
        config_file: args.config.clone(),
        mode,
        connect: args.connect.clone(),
        listen: args.listen.clone(),
        multicast_scouting: args.no_multicast_scouting.then_some(false),
    };
    let start = match args.start.as_str() {
        "newest" => StartAt::Newest,
        _ => StartAt::Oldest,
    };
    let secs = |s: Option<f64>| s.map(Duration::from_secs_f64);
    let publish = args
        .publish
        .iter()
        .map(|p| {
            let (segment, key) = match p.split_once('=') {
                Some((s, k)) => (s, Some(k.to_string())),
                None => (p.as_str(), None),
            };
            if segment.is_empty() || key.as_deref() == Some("") {
                return Err(usage(format!(
                    "--publish: '{p}' is not SEGMENT or SEGMENT=KEY"
                )));
            }
            let mut spec = PublishSpec::new(segment);
            spec.key = key;
            spec.options.max_rate = args.max_rate;
            spec.options.stats_every = secs(args.stats);
            spec.express = args.express;
            spec.start = start;
            Ok(spec)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mirror = args
        .mirror
        .iter()
        .map(|(key, segment)| {
            let mut spec = MirrorSpec::new(key, segment);
            spec.mode = args.slots.map(|n| match n {
                1 => Mode::Single,
                n => Mode::Fifo { slots: n },
            });
            spec.permissions = args.permissions;
            spec.options.stats_every = secs(args.stats);
            spec
        })
        .collect();
    Ok(Plan {
        zenoh,
        publish,
        mirror,
    })
}

fn usage(message: String) -> Failure {
    Failure {
        code: 2,
        message: Some(message),
    }
}

/// The counters of a publisher, as printed when the bridge stops.
fn publish_counts(s: &PublishStats) -> String {
    format!(
        "published={} source_lost={} skipped={} sessions={} encode_errors={}",
        s.published, s.source_lost, s.skipped, s.sessions, s.encode_errors
    )
}

/// The counters of a mirror, as printed when the bridge stops.
fn mirror_counts(s: &MirrorStats) -> String {
    format!(
        "written={} lost={} skipped={} lost_restart={} replayed={} invalid={} stale={} \
         duplicates={} sessions={} no_schema={} schema_mismatch={} unwritten_conflicts={} \
         received={}",
        s.written,
        s.lost,
        s.skipped,
        s.lost_restart,
        s.replayed,
        s.invalid,
        s.stale,
        s.duplicates,
        s.sessions,
        s.no_schema,
        s.schema_mismatch,
        s.unwritten_conflicts,
        s.received
    )
}

pub fn run(args: Args) -> Result<(), Failure> {
    let plan = plan(&args)?;
    flexshm_zenoh::init_logging("warn,flexshm_zenoh=info");
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Failure::new(format!("cannot handle signal {sig}: {e}")))?;
    }
    if let Some(d) = args.duration {
        let stop = Arc::clone(&stop);
        // Ends with the process if the bridge stops first.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(d));
            stop.store(true, Ordering::Relaxed);
        });
    }
    let names: Vec<String> = plan
        .publish
        .iter()
        .map(|p| format!("publish {} on {}", p.segment, p.key()))
        .chain(
            plan.mirror
                .iter()
                .map(|m| format!("mirror {} into {}", m.key, m.segment)),
        )
        .collect();
    let report = run_bridge(&plan.zenoh, plan.publish, plan.mirror, stop)
        .map_err(|e| Failure::new(format!("bridge: {e}")))?;
    let results = report
        .publishers
        .iter()
        .map(|r| r.as_ref().map(publish_counts))
        .chain(report.mirrors.iter().map(|r| r.as_ref().map(mirror_counts)));
    let mut failed = false;
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(counts) => println!("{name}: {counts}"),
            Err(e) => {
                failed = true;
                eprintln!(
                    "flexshm: bridge: {name}: {}",
                    crate::render::clean(&e.to_string())
                );
            }
        }
    }
    if failed {
        Err(Failure::reported())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        assert_eq!(
            key_and_segment("flexshm/a=b").unwrap(),
            ("flexshm/a".to_string(), "b".to_string())
        );
        assert!(key_and_segment("nokey").is_err());
        assert!(key_and_segment("=x").is_err());
        assert!(key_and_segment("k=").is_err());
        assert_eq!(octal_mode("640").unwrap(), 0o640);
        assert_eq!(octal_mode("0o600").unwrap(), 0o600);
        assert!(octal_mode("800").is_err() && octal_mode("1000").is_err());
        assert!(positive("0").is_err() && positive("nan").is_err());
        assert_eq!(positive("2.5").unwrap(), 2.5);
        assert!(seconds("-1").is_err() && seconds("0").is_ok());
    }
}
