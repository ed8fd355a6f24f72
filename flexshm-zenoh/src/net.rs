//! The Zenoh side of the bridge: an [`Outlet`] that publishes record messages and serves
//! the schema, and an [`Inlet`] that subscribes and fetches schemas.
//!
//! Keys: records go to the data key (default `flexshm/<segment>`); the schema is served
//! by a queryable on `<data key>/@schema`. `@schema` is a verbatim chunk, so wildcard
//! subscriptions such as `flexshm/**` never receive it.

use std::borrow::Cow;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use zenoh::handlers::FifoChannelHandler;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::query::{ConsolidationMode, Queryable};
use zenoh::sample::Sample;
use zenoh::{Session, Wait};

use crate::error::BridgeError;
use crate::mirror::{InMessage, Inlet};
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

/// Receives the messages of a key expression.
pub struct ZenohInlet {
    session: Session,
    subscriber: Subscriber<FifoChannelHandler<Sample>>,
    replies_tx: std::sync::mpsc::Sender<Vec<u8>>,
    replies: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl std::fmt::Debug for ZenohInlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohInlet")
            .field("key", &self.subscriber.key_expr().as_str())
            .finish()
    }
}

impl ZenohInlet {
    /// Subscribes to `key` (a key expression; wildcards allowed).
    pub fn new(session: &Session, key: &str) -> Result<Self, BridgeError> {
        let subscriber = session
            .declare_subscriber(key.to_string())
            .wait()
            .map_err(BridgeError::Zenoh)?;
        let (replies_tx, replies) = std::sync::mpsc::channel();
        Ok(ZenohInlet {
            session: session.clone(),
            subscriber,
            replies_tx,
            replies,
        })
    }
}

impl InMessage for Sample {
    fn key(&self) -> &str {
        self.key_expr().as_str()
    }

    fn payload(&self) -> Cow<'_, [u8]> {
        Sample::payload(self).to_bytes()
    }
}

impl Inlet for ZenohInlet {
    type Msg = Sample;

    fn recv(&mut self, timeout: Duration) -> Result<Option<Sample>, BridgeError> {
        self.subscriber
            .recv_timeout(timeout)
            .map_err(BridgeError::Zenoh)
    }

    fn request_schema(&mut self, key: &str, timeout: Duration) -> Result<(), BridgeError> {
        let tx = self.replies_tx.clone();
        self.session
            .get(schema_key(key))
            .consolidation(ConsolidationMode::None)
            .timeout(timeout)
            .callback(move |reply| match reply.result() {
                Ok(sample) => {
                    let _ = tx.send(sample.payload().to_bytes().into_owned());
                }
                Err(e) => tracing::debug!(error = ?e, "schema query error reply"),
            })
            .wait()
            .map_err(BridgeError::Zenoh)
    }

    fn schema_replies(&mut self) -> Vec<Vec<u8>> {
        self.replies.try_iter().collect()
    }
}
