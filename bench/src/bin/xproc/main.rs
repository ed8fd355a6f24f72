//! Cross-process benchmarks: two processes pinned to different cores.
//!
//! ```text
//! xproc latency     --payload small|image [--blocks N] [--iters M]
//! xproc fifo        --payload small|image [--blocks N] [--block-ms D]
//! xproc wake        [--blocks N] [--iters M] [--gap-us G] [--idle-runs R]
//! xproc commit-cost [--blocks N] [--commits M]
//! ```
//!
//! The parent measures and prints markdown tables; it starts a copy of this program as
//! the child (`latency-child`, `fifo-child`, `wake-child`) with the same arguments. The
//! two walk the same schedule: blocks, and inside each block every system in turn (the
//! order rotates per block), so every system sees the same mix of host scheduling.
//! Reported ratios are medians of per-block ratios (see `flexshm_bench::stats`).
//! `commit-cost` runs in one process.
//!
//! Modules: `pair` (the child process and the control words the two share), `payload`,
//! `latency` (ping-pong, one module per transport), `fifo` (producer/consumer
//! throughput), `futex` (the raw futex baseline), `wake` (a sleeping reader's wake-up
//! and its idle CPU time) and `commit_cost` (what the writer's wake-up logic costs per
//! commit).

mod commit_cost;
mod fifo;
mod futex;
mod latency;
mod pair;
mod payload;
mod wake;

use flexshm_bench::Args;

/// What every benchmark function returns.
pub type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let args = Args::from_env();
    // The tag of a parent run; its child uses the same one, passed on the command line.
    let run_tag = match args.command() {
        Some("latency") => Some(pair::tag_for(&args, "lat")),
        Some("fifo") => Some(pair::tag_for(&args, "fifo")),
        Some("wake") => Some(pair::tag_for(&args, "wake")),
        Some("commit-cost") => Some(pair::tag_for(&args, "cost")),
        _ => None,
    };
    let r = match args.command() {
        Some("latency") => latency::parent(&args),
        Some("latency-child") => latency::child(&args),
        Some("fifo") => fifo::parent(&args),
        Some("fifo-child") => fifo::child(&args),
        Some("wake") => wake::parent(&args),
        Some("wake-child") => wake::child(&args),
        Some("commit-cost") => commit_cost::run(&args),
        _ => {
            eprintln!(
                "usage: xproc latency|fifo --payload small|image [--blocks N] ... | \
                 xproc wake|commit-cost [--blocks N] ..."
            );
            std::process::exit(2);
        }
    };
    if let Some(tag) = run_tag {
        pair::remove_segments(&tag);
    }
    if let Err(e) = r {
        eprintln!("xproc: {e}");
        std::process::exit(1);
    }
}
