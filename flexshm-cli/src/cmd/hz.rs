//! `flexshm hz NAME`: how often a segment's writer commits.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::rate::Periods;
use crate::render::writer_json;
use crate::source::Segment;
use crate::Failure;

/// Measure the commit rate of a segment, like `ros2 topic hz`.
///
/// Every --interval it prints the rate and the minimum, mean and maximum period between
/// commits with their standard deviation (jitter), over the last --window commits.
/// Times are when this process saw each commit: commits that land closer together than
/// it wakes up are counted exactly (from commit numbers) and share an average period.
/// Reads no record, so a FIFO's readers lose nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Segment name (`sensors`, `/sensors` or `/dev/shm/sensors`).
    pub name: String,
    /// Number of recent commits the statistics cover.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub window: u64,
    /// Seconds between reports.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive_seconds)]
    pub interval: f64,
    /// Stop after this many reports.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// One JSON object per report, one per line.
    #[arg(long)]
    pub json: bool,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 86400.0 => Ok(x),
        _ => Err(format!("'{s}' is not a number of seconds in (0, 86400]")),
    }
}

fn ms(s: f64) -> String {
    format!("{:.3} ms", s * 1e3)
}

pub fn run(args: Args) -> Result<(), Failure> {
    let mut seg = Segment::open(&args.name)?;
    let mut out = std::io::stdout().lock();
    let interval = Duration::from_secs_f64(args.interval);
    let mut periods = Periods::new(args.window);
    let mut head = seg.head();
    let mut last_seen: Option<Instant> = None;
    let mut new_commits = 0u64;
    let mut total = 0u64;
    let mut reports = 0u64;
    let mut next_report = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if now < next_report && seg.wait(head, next_report - now)? {
            let t = Instant::now();
            let h = seg.head();
            let k = seg.commits_between(head, h) as u64;
            head = h;
            if let Some(prev) = last_seen {
                periods.push(t.duration_since(prev).as_secs_f64(), k);
            }
            last_seen = Some(t);
            new_commits += k;
            total += k;
            continue;
        }
        if Instant::now() < next_report {
            continue;
        }
        let writer = seg.writer();
        let stats = periods.stats().filter(|_| new_commits > 0);
        if args.json {
            let j = json!({
                "name": seg.name(),
                "rate_hz": stats.map(|s| s.rate_hz),
                "period_min_s": stats.map(|s| s.min),
                "period_mean_s": stats.map(|s| s.mean),
                "period_max_s": stats.map(|s| s.max),
                "jitter_s": stats.map(|s| s.jitter),
                "window": stats.map_or(0, |s| s.commits),
                "coalesced": stats.map_or(0, |s| s.coalesced),
                "new_commits": new_commits,
                "commits": total,
                "commit": head,
                "writer": writer_json(writer),
            });
            writeln!(out, "{j}")?;
        } else if let Some(s) = stats {
            let mut line = format!(
                "rate {:.3} Hz  period min {}  mean {}  max {}  jitter {}  window {} commits",
                s.rate_hz,
                ms(s.min),
                ms(s.mean),
                ms(s.max),
                ms(s.jitter),
                s.commits
            );
            if s.coalesced > 0 {
                line += &format!(" ({} coalesced)", s.coalesced);
            }
            writeln!(out, "{line}  writer {writer}")?;
        } else if new_commits > 0 {
            writeln!(
                out,
                "{new_commits} commit(s) seen, a period needs one more  writer {writer}"
            )?;
        } else {
            writeln!(out, "no new commits  writer {writer}")?;
        }
        out.flush()?;
        new_commits = 0;
        reports += 1;
        if args.count.is_some_and(|c| reports >= c) {
            return Ok(());
        }
        next_report += interval;
        // After a long stall (a suspended terminal), report from now on.
        next_report = next_report.max(Instant::now());
    }
}
