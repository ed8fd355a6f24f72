//! # flexshm-zenoh
//!
//! Bridges flexshm segments between machines over [Zenoh](https://zenoh.io): a
//! *publisher* reads a local segment as an ordinary reader and publishes every commit
//! (FIFO: every record, in order; single-slot: each new commit, optionally rate-limited)
//! on a key expression; a *mirror* subscribes to a key expression and writes every
//! record it receives into a local segment, created with the publisher's schema, so
//! local programs read remote data with the plain flexshm API.
//!
//! - [`wire`]: the versioned wire format (docs/BRIDGE.md), independent of the region
//!   layout; decoding validates everything.
//! - [`publish`] / [`mirror`]: the bridge loops, over the small [`SegmentSource`] /
//!   [`SegmentSink`] traits (no shared memory needed in tests) and the [`Outlet`] /
//!   [`Inlet`] traits (no network needed in tests).
//! - [`shm`]: the source and sink traits implemented on flexshm-std; [`net`]: the
//!   outlet on Zenoh, and the mirror fed from a Zenoh subscriber's callback.
//! - [`session`]: Zenoh configuration (file, `--connect`, `--listen`, `--mode`).
//!
//! [`run_bridge`] runs any number of publishers and mirrors on one session until a stop
//! flag is set: a thread per publisher, and per mirror a thread for schema requests and
//! housekeeping (its records are written in Zenoh's receive callback). `flexshm bridge`
//! is this function behind a command line.

pub mod error;
pub mod mirror;
pub mod net;
pub mod publish;
pub mod session;
pub mod shm;
pub mod wire;

#[cfg(test)]
mod loop_tests;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use error::BridgeError;
pub use mirror::{Inlet, Mirror, MirrorOptions, MirrorStats, SegmentSink};
pub use publish::{Outlet, PublishOptions, PublishStats, SegmentSource};
pub use session::{ZenohMode, ZenohOptions};
pub use shm::StartAt;
pub use zenoh;

use flexshm_core::Mode;

/// One segment, or every segment whose name matches a pattern, to publish.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// The local segment name, or a pattern (`*`: any characters, `?`: one character)
    /// matched against the names in /dev/shm, rescanned every second.
    pub segment: String,
    /// The data key; `None`: `flexshm/<segment>`. For a pattern: the key prefix, each
    /// segment being published on `<prefix>/<name>` (default prefix `flexshm`).
    pub key: Option<String>,
    /// Loop options (rate limit for single-slot segments, poll interval).
    pub options: PublishOptions,
    /// Send each message at once instead of letting Zenoh batch messages.
    pub express: bool,
    /// FIFO: where the bridge's reader starts.
    pub start: StartAt,
    /// Stop when the segment no longer exists instead of waiting for it to come back
    /// (set for the publishers a pattern starts).
    pub stop_when_gone: bool,
}

impl PublishSpec {
    /// Publishes `segment` on its default key with default options.
    pub fn new(segment: &str) -> Self {
        PublishSpec {
            segment: segment.to_string(),
            key: None,
            options: PublishOptions::default(),
            express: false,
            start: StartAt::default(),
            stop_when_gone: false,
        }
    }

    /// The data key (for a pattern: the key prefix).
    pub fn key(&self) -> String {
        match (&self.key, is_pattern(&self.segment)) {
            (Some(k), _) => k.clone(),
            (None, true) => "flexshm".to_string(),
            (None, false) => net::default_key(&self.segment),
        }
    }

    /// The spec of one segment a pattern matched.
    fn for_match(&self, name: &str) -> PublishSpec {
        PublishSpec {
            segment: name.to_string(),
            key: Some(format!("{}/{name}", self.key())),
            stop_when_gone: true,
            ..self.clone()
        }
    }
}

/// True if `s` is a name pattern (has `*` or `?`).
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Whether `name` matches `pattern`: `*` matches any run of characters (also none), `?`
/// exactly one, everything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the name position it matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and try again.
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// One key to mirror into a local segment.
#[derive(Debug, Clone)]
pub struct MirrorSpec {
    /// The key expression to subscribe to (one publisher's key).
    pub key: String,
    /// The local segment to write.
    pub segment: String,
    /// Mode of the local segment; `None`: the publisher's.
    pub mode: Option<Mode>,
    /// File mode bits of a new local segment.
    pub permissions: u32,
    /// Loop options.
    pub options: mirror::MirrorLoopOptions,
}

impl MirrorSpec {
    /// Mirrors `key` into local segment `segment` with default options.
    pub fn new(key: &str, segment: &str) -> Self {
        MirrorSpec {
            key: key.to_string(),
            segment: segment.to_string(),
            mode: None,
            permissions: 0o600,
            options: mirror::MirrorLoopOptions::default(),
        }
    }
}

/// Starts a publisher thread on `session` (for a pattern, a thread that starts one per
/// matching segment and returns their added counts).
pub fn spawn_publisher(
    session: &zenoh::Session,
    spec: PublishSpec,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<PublishStats, BridgeError>>, BridgeError> {
    if is_pattern(&spec.segment) {
        let session = session.clone();
        return std::thread::Builder::new()
            .name(format!("scan {}", spec.segment))
            .spawn(move || run_pattern(&session, &spec, &stop))
            .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")));
    }
    let mut outlet = net::ZenohOutlet::new(session, &spec.key(), spec.express)?;
    std::thread::Builder::new()
        .name(format!("pub {}", spec.segment))
        .spawn(move || {
            let open = || {
                if spec.stop_when_gone && !flexshm_std::exists(&spec.segment) {
                    return Err(BridgeError::Gone {
                        name: spec.segment.clone(),
                    });
                }
                shm::StdSource::open(&spec.segment, spec.start)
            };
            let r = publish::run_publisher(open, &mut outlet, &spec.options, &stop);
            if let Err(e) = &r {
                tracing::error!(segment = spec.segment, error = %e, "publisher failed");
            }
            r
        })
        .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")))
}

/// How often a pattern publisher looks for new segments.
const RESCAN: std::time::Duration = std::time::Duration::from_secs(1);

/// Publishes every flexshm segment whose name matches `spec.segment`, starting a
/// publisher for each new one, until `stop` is set.
fn run_pattern(
    session: &zenoh::Session,
    spec: &PublishSpec,
    stop: &Arc<AtomicBool>,
) -> Result<PublishStats, BridgeError> {
    use std::sync::atomic::Ordering;
    let mut running: Vec<(String, JoinHandle<Result<PublishStats, BridgeError>>)> = Vec::new();
    let mut total = PublishStats::default();
    let add = |total: &mut PublishStats, r: Result<PublishStats, BridgeError>, name: &str| match r {
        Ok(s) => {
            total.published += s.published;
            total.source_lost += s.source_lost;
            total.skipped += s.skipped;
            total.sessions += s.sessions;
            total.encode_errors += s.encode_errors;
        }
        Err(e) => tracing::error!(segment = name, error = %e, "publisher failed"),
    };
    while !stop.load(Ordering::Relaxed) {
        // Publishers whose segment went away have ended; a name that comes back is
        // picked up again below.
        let (done, still): (Vec<_>, Vec<_>) =
            running.into_iter().partition(|(_, h)| h.is_finished());
        running = still;
        for (name, h) in done {
            add(&mut total, join(h), &name);
        }
        let names = std::fs::read_dir("/dev/shm")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for name in names {
            if !glob_match(&spec.segment, &name) || running.iter().any(|(n, _)| *n == name) {
                continue;
            }
            // Only flexshm segments (other programs keep shared memory there too).
            if flexshm_std::Reader::<flexshm_std::Dynamic>::open(&name).is_err() {
                continue;
            }
            tracing::info!(pattern = spec.segment, segment = name, "segment matches");
            let h = spawn_publisher(session, spec.for_match(&name), Arc::clone(stop))?;
            running.push((name, h));
        }
        let t0 = std::time::Instant::now();
        while t0.elapsed() < RESCAN && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    for (name, h) in running {
        add(&mut total, join(h), &name);
    }
    Ok(total)
}

/// Starts a mirror thread on `session`.
pub fn spawn_mirror(
    session: &zenoh::Session,
    spec: MirrorSpec,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<MirrorStats, BridgeError>>, BridgeError> {
    let session = session.clone();
    std::thread::Builder::new()
        .name(format!("mirror {}", spec.segment))
        .spawn(move || {
            let sink = shm::StdSink::new(&spec.segment, spec.permissions);
            let m = Mirror::new(sink, MirrorOptions { mode: spec.mode }).with_key(&spec.key);
            let r = net::run_mirror_callback(&session, &spec.key, m, &spec.options, &stop);
            match &r {
                Ok(stats) => tracing::info!(key = spec.key, segment = spec.segment, ?stats, "mirror stopped"),
                Err(e) => tracing::error!(key = spec.key, segment = spec.segment, error = %e, "mirror failed"),
            }
            r
        })
        .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")))
}

/// What [`run_bridge`] returns per publisher and per mirror.
#[derive(Debug, Default)]
pub struct BridgeReport {
    /// Per publisher, in the order given.
    pub publishers: Vec<Result<PublishStats, BridgeError>>,
    /// Per mirror, in the order given.
    pub mirrors: Vec<Result<MirrorStats, BridgeError>>,
}

/// Opens a session with `zenoh` and runs the publishers and mirrors until `stop` is set
/// (or every one of them has failed). The `flexshm bridge` command calls this.
pub fn run_bridge(
    zenoh: &ZenohOptions,
    publish: Vec<PublishSpec>,
    mirror: Vec<MirrorSpec>,
    stop: Arc<AtomicBool>,
) -> Result<BridgeReport, BridgeError> {
    let session = zenoh.open()?;
    let mut pubs = Vec::new();
    for spec in publish {
        pubs.push(spawn_publisher(&session, spec, Arc::clone(&stop))?);
    }
    let mut mirs = Vec::new();
    for spec in mirror {
        mirs.push(spawn_mirror(&session, spec, Arc::clone(&stop))?);
    }
    let report = BridgeReport {
        publishers: pubs.into_iter().map(join).collect(),
        mirrors: mirs.into_iter().map(join).collect(),
    };
    let _ = session.close().wait();
    Ok(report)
}

/// Sends log lines (the bridge's and Zenoh's) to stderr, filtered by `RUST_LOG` or, if
/// it is not set, by `fallback` (e.g. `"warn,flexshm_zenoh=info"`); colours only on a
/// terminal. Does nothing if the program already installed a logger.
pub fn init_logging(fallback: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(fallback));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn join<T>(h: JoinHandle<Result<T, BridgeError>>) -> Result<T, BridgeError> {
    h.join()
        .unwrap_or_else(|_| Err(BridgeError::Config("a bridge thread panicked".into())))
}

use zenoh::Wait as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        for (p, n, want) in [
            ("sensors*", "sensors", true),
            ("sensors*", "sensors-left", true),
            ("sensors*", "sensor", false),
            ("*-cam?", "front-cam1", true),
            ("*-cam?", "front-cam12", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b*c", "abcbc", true),
            ("*", "", true),
            ("?", "", false),
            ("é?", "éü", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} {n}");
        }
        assert!(is_pattern("a*") && is_pattern("a?") && !is_pattern("a"));
    }

    #[test]
    fn pattern_keys() {
        let mut s = PublishSpec::new("cam*");
        assert_eq!(s.key(), "flexshm");
        assert_eq!(s.for_match("cam1").key(), "flexshm/cam1");
        s.key = Some("robot/shm".into());
        assert_eq!(s.for_match("cam1").key(), "robot/shm/cam1");
        assert!(s.for_match("cam1").stop_when_gone);
        assert_eq!(PublishSpec::new("/imu").key(), "flexshm/imu");
    }
}
