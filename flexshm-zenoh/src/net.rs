//! The Zenoh side of the bridge: an [`Outlet`] that publishes record messages and serves
//! the schema, and [`run_mirror_callback`], which feeds a mirror from a subscriber's
//! callback and fetches schemas.
//!
//! Keys: records go to the data key (default `flexshm/<segment>`); the schema is served
//! by a queryable on `<data key>/@schema`. `@schema` is a verbatim chunk, so wildcard
//! subscriptions such as `flexshm/**` never receive it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::{ConsolidationMode, Queryable};
use zenoh::sample::Sample;
use zenoh::{Session, Wait};

use crate::error::BridgeError;
use crate::mirror::{Mirror, MirrorLoop, MirrorLoopOptions, MirrorStats, SegmentSink};
use crate::publish::Outlet;
use crate::wire::SchemaMsg;

/// The chunk appended to a data key to reach its schema queryable.
pub const SCHEMA_CHUNK: &str = "@schema";

/// The default data key of a segment: `flexshm/<segment>`.
pub fn default_key(segment: &str) -> String {
    format!("flexshm/{}", segment.strip_prefix('/').unwrap_or(segment))
}

/// The key of the schema queryable for data key `key`.
pub fn schema_key(key: &str) -> String {
    format!("{key}/{SCHEMA_CHUNK}")
}

/// Publishes a segment's records on a key and serves its schema.
pub struct ZenohOutlet {
    session: Session,
    key: String,
    express: bool,
    publisher: Option<Publisher<'static>>,
    schema: Arc<Mutex<Option<Vec<u8>>>>,
    matching: Arc<Matching>,
    _queryable: Queryable<()>,
}

/// Whether a subscriber matches the publisher's key, kept by Zenoh's matching listener.
#[derive(Debug, Default)]
struct Matching {
    now: Mutex<bool>,
    changed: Condvar,
}

impl Matching {
    fn set(&self, matching: bool) {
        if let Ok(mut m) = self.now.lock() {
            *m = matching;
            self.changed.notify_all();
        }
    }

    fn get(&self) -> bool {
        self.now.lock().map(|m| *m).unwrap_or(true)
    }

    fn wait(&self, timeout: Duration) -> bool {
        let Ok(m) = self.now.lock() else {
            return true;
        };
        match self.changed.wait_timeout_while(m, timeout, |m| !*m) {
            Ok((m, _)) => *m,
            Err(_) => true,
        }
    }
}

impl std::fmt::Debug for ZenohOutlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohOutlet")
            .field("key", &self.key)
            .finish()
    }
}

impl ZenohOutlet {
    /// An outlet for data key `key`; `express` sends each message at once instead of
    /// letting Zenoh batch (lower latency, lower throughput).
    pub fn new(session: &Session, key: &str, express: bool) -> Result<Self, BridgeError> {
        let schema: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
        let served = Arc::clone(&schema);
        let queryable = session
            .declare_queryable(schema_key(key))
            .callback(move |query| {
                let bytes = served.lock().ok().and_then(|s| s.clone());
                if let Some(bytes) = bytes {
                    if let Err(e) = query.reply(query.key_expr().clone(), bytes).wait() {
                        tracing::warn!(error = %e, "schema reply failed");
                    }
                }
            })
            .wait()
            .map_err(BridgeError::Zenoh)?;
        Ok(ZenohOutlet {
            session: session.clone(),
            key: key.to_string(),
            express,
            publisher: None,
            schema,
            matching: Arc::default(),
            _queryable: queryable,
        })
    }
}

impl Outlet for ZenohOutlet {
    fn set_schema(&mut self, _schema: &SchemaMsg, bytes: Vec<u8>) -> Result<(), BridgeError> {
        if let Ok(mut s) = self.schema.lock() {
            *s = Some(bytes);
        }
        // Blocking congestion control in both modes: a slow link slows the publisher
        // instead of losing messages in the network. FIFO: the local writer may then lap
        // the bridge's reader, which counts those records (`source_lost`). Single-slot:
        // the publisher sends less often and always the newest record, so the last value
        // written always arrives (a dropped message would leave an old value in place
        // until the next commit).
        if self.publisher.is_none() {
            let p = self
                .session
                .declare_publisher(self.key.clone())
                .congestion_control(CongestionControl::Block)
                .express(self.express)
                .wait()
                .map_err(BridgeError::Zenoh)?;
            let m = Arc::clone(&self.matching);
            p.matching_listener()
                .callback(move |s| m.set(s.matching()))
                .background()
                .wait()
                .map_err(BridgeError::Zenoh)?;
            // The listener reports changes; start from the status now.
            let now = p
                .matching_status()
                .wait()
                .map(|s| s.matching())
                .unwrap_or(true);
            self.matching.set(now);
            self.publisher = Some(p);
        }
        Ok(())
    }

    fn put(&mut self, message: Vec<u8>) -> Result<(), BridgeError> {
        let p = self
            .publisher
            .as_ref()
            .ok_or_else(|| BridgeError::Config("put before set_schema".into()))?;
        p.put(message).wait().map_err(BridgeError::Zenoh)
    }

    fn matched(&self) -> bool {
        self.publisher.is_some() && self.matching.get()
    }

    fn wait_matched(&self, timeout: Duration) -> bool {
        self.publisher.is_some() && self.matching.wait(timeout)
    }
}

/// Locks `m`. A panic in a callback leaves consistent state behind (every update of the
/// mirror completes before the next one starts), so a poisoned lock is used as it is.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `mirror` on the messages of `key` until `stop` is set, handling each message in
/// the subscriber's own callback: no hand-over to another thread, so one wake-up less
/// per message than a pulling loop ([`crate::mirror::run_mirror`]). The calling thread
/// only sends schema requests, takes their answers and ticks the loop state. Errors only for a local segment that cannot be used (the
/// subscription is then undeclared at once).
pub fn run_mirror_callback<K: SegmentSink + Send + 'static>(
    session: &Session,
    key: &str,
    mirror: Mirror<K>,
    opts: &MirrorLoopOptions,
    stop: &AtomicBool,
) -> Result<MirrorStats, BridgeError> {
    enum Event {
        Ask(String),
        Answer(Vec<u8>),
        Failed,
    }
    struct Shared<K> {
        mirror: Mirror<K>,
        state: MirrorLoop,
        failed: Option<BridgeError>,
    }
    let shared = Arc::new(Mutex::new(Shared {
        mirror,
        state: MirrorLoop::new(opts.clone()),
        failed: None,
    }));
    let (tx, rx) = mpsc::channel::<Event>();
    let subscribed = {
        let (shared, tx) = (Arc::clone(&shared), tx.clone());
        session
            .declare_subscriber(key.to_string())
            .callback(move |sample: Sample| {
                let mut g = lock(&shared);
                let g = &mut *g;
                if g.failed.is_some() {
                    return;
                }
                let bytes = sample.payload().to_bytes();
                match g
                    .state
                    .message(&mut g.mirror, sample.key_expr().as_str(), &bytes)
                {
                    Ok(Some(k)) => {
                        let _ = tx.send(Event::Ask(k));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        g.failed = Some(e);
                        let _ = tx.send(Event::Failed);
                    }
                }
            })
            .wait()
    };
    let subscriber = subscribed.map_err(BridgeError::Zenoh)?;
    let mut failure = None;
    while !stop.load(Ordering::Relaxed) {
        let wait = lock(&shared).state.wait();
        let mut replies = Vec::new();
        let first = rx.recv_timeout(wait).ok();
        for ev in first.into_iter().chain(rx.try_iter()) {
            match ev {
                Event::Ask(k) => {
                    let tx = tx.clone();
                    let asked = session
                        .get(schema_key(&k))
                        .consolidation(ConsolidationMode::None)
                        .timeout(opts.schema_timeout)
                        .callback(move |reply| match reply.result() {
                            Ok(sample) => {
                                let _ = tx
                                    .send(Event::Answer(sample.payload().to_bytes().into_owned()));
                            }
                            Err(e) => tracing::debug!(error = ?e, "schema query error reply"),
                        })
                        .wait();
                    if let Err(e) = asked {
                        tracing::warn!(key = k, error = %e, "schema request failed");
                    }
                }
                Event::Answer(b) => replies.push(b),
                Event::Failed => {}
            }
        }
        let mut g = lock(&shared);
        let g = &mut *g;
        if let Some(e) = g.failed.take() {
            failure = Some(e);
            break;
        }
        if let Err(e) = g.state.tick(&mut g.mirror, replies) {
            failure = Some(e);
            break;
        }
    }
    // No callback runs after this: the subscription is gone. The mirror (and with it
    // the local segment's writer role) goes when the callback's last clone is dropped.
    let _ = subscriber.undeclare().wait();
    let stats = lock(&shared).mirror.stats();
    match failure {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}
