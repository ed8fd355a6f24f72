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
//! - [`shm`]: the traits implemented on flexshm-std; [`net`]: on Zenoh.
//! - [`session`]: Zenoh configuration (file, `--connect`, `--listen`, `--mode`).
//!
//! [`run_bridge`] runs any number of publishers and mirrors on one session, one thread
//! each, until a stop flag is set.

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

/// One segment to publish.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// The local segment name.
    pub segment: String,
    /// The data key; `None`: `flexshm/<segment>`.
    pub key: Option<String>,
    /// Loop options (rate limit for single-slot segments, poll interval).
    pub options: PublishOptions,
    /// Send each message at once instead of letting Zenoh batch messages.
    pub express: bool,
    /// FIFO: where the bridge's reader starts.
    pub start: StartAt,
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
        }
    }

    /// The data key.
    pub fn key(&self) -> String {
        self.key
            .clone()
            .unwrap_or_else(|| net::default_key(&self.segment))
    }
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

/// Starts a publisher thread on `session`.
pub fn spawn_publisher(
    session: &zenoh::Session,
    spec: PublishSpec,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<PublishStats, BridgeError>>, BridgeError> {
    let mut outlet = net::ZenohOutlet::new(session, &spec.key(), spec.express)?;
    std::thread::Builder::new()
        .name(format!("pub {}", spec.segment))
        .spawn(move || {
            let open = || shm::StdSource::open(&spec.segment, spec.start);
            publish::run_publisher(open, &mut outlet, &spec.options, &stop)
        })
        .map_err(|e| BridgeError::Config(format!("cannot start a thread: {e}")))
}

/// Starts a mirror thread on `session`.
pub fn spawn_mirror(
    session: &zenoh::Session,
    spec: MirrorSpec,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<MirrorStats, BridgeError>>, BridgeError> {
    let mut inlet = net::ZenohInlet::new(session, &spec.key)?;
    std::thread::Builder::new()
        .name(format!("mirror {}", spec.segment))
        .spawn(move || {
            let sink = shm::StdSink::new(&spec.segment, spec.permissions);
            let mut m = Mirror::new(sink, MirrorOptions { mode: spec.mode });
            let r = mirror::run_mirror(&mut m, &mut inlet, &spec.options, &stop);
            tracing::info!(segment = spec.segment, stats = ?m.stats(), "mirror stopped");
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

fn join<T>(h: JoinHandle<Result<T, BridgeError>>) -> Result<T, BridgeError> {
    h.join()
        .unwrap_or_else(|_| Err(BridgeError::Config("a bridge thread panicked".into())))
}

use zenoh::Wait as _;
