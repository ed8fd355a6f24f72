//! The publishing side: read a local segment as an ordinary reader and send every record
//! (FIFO) or every new commit (single-slot, optionally rate-limited).
//!
//! The loop is written against two small traits so that it runs without shared memory
//! or a network in tests: [`SegmentSource`] (the local segment) and [`Outlet`] (where
//! messages go; [`crate::net::ZenohOutlet`] in the bridge).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flexshm_core::{FieldDef, Mode};

use crate::error::BridgeError;
use crate::wire::{self, BatchEncoder, RecordHeader, SchemaMsg, WireField};

/// A local segment read for publishing.
pub trait SegmentSource {
    /// The segment name.
    fn name(&self) -> &str;
    /// The segment's fields.
    fn fields(&self) -> &[FieldDef];
    /// The segment's mode.
    fn mode(&self) -> Mode;
    /// Identity of the segment instance (0 if unknown): equal ids mean the same segment,
    /// whose commit numbers continue, so a mirror can tell a replay after a bridge
    /// restart from a segment that was created anew.
    fn source_id(&self) -> u64 {
        0
    }
    /// The next record to publish, waiting up to `timeout`; `Ok(None)` if none came.
    ///
    /// Single-slot: the newest record once its commit differs from the last one returned
    /// (the first call returns the current record at once if anything was ever
    /// committed). FIFO: the next unread record in commit order. In both modes a field's
    /// `modified` means "written since the previous record this source returned" (all
    /// written fields for the first one).
    fn next_record(&mut self, timeout: Duration) -> Result<Option<SourceRecord<'_>>, BridgeError>;
    /// True when the segment's name now refers to another segment (the bridge then
    /// reopens it and starts a new session).
    fn is_replaced(&self) -> bool {
        false
    }
}

/// One record read from a source.
#[derive(Debug, Clone)]
pub struct SourceRecord<'a> {
    /// The segment's commit number (32-bit, wrapping at the segment's modulus).
    pub commit: u32,
    /// FIFO: records this reader lost to a lapping writer just before this one.
    pub lost: u32,
    /// One entry per field.
    pub fields: Vec<WireField<'a>>,
    /// FIFO: another record was ready when this one was read (the publisher then
    /// gathers the ready records into one batch message).
    pub more: bool,
}

/// Where a publisher's messages go.
pub trait Outlet {
    /// Makes `bytes` (an encoded [`SchemaMsg`]) the schema served to receivers.
    fn set_schema(&mut self, schema: &SchemaMsg, bytes: Vec<u8>) -> Result<(), BridgeError>;
    /// Sends one message: a record, or the session's schema message ahead of its first
    /// record.
    fn put(&mut self, message: Vec<u8>) -> Result<(), BridgeError>;
    /// Whether some receiver subscribes to the messages now (as far as the outlet
    /// knows; `true` if it cannot tell).
    fn matched(&self) -> bool {
        true
    }
    /// Waits up to `timeout` until [`matched`](Self::matched) is true; returns it.
    fn wait_matched(&self, timeout: Duration) -> bool {
        let _ = timeout;
        self.matched()
    }
}

/// A fresh random 64-bit publisher session id (never 0).
///
/// Seeded by the standard library's per-process random hash keys (which come from the
/// operating system's random source) and mixed with the time and process id, so two
/// publishers, or two starts of one, do not share an id.
pub fn random_session_id() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = RandomState::new().build_hasher();
    std::process::id().hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .hash(&mut h);
    std::thread::current().id().hash(&mut h);
    h.finish().max(1)
}

/// The segment's commit modulus (docs/PROTOCOL.md §10): commit numbers wrap from
/// `modulus - 1` to 0.
pub fn commit_modulus(mode: Mode) -> u32 {
    let buffers = mode.slots().saturating_add(1).max(2);
    (u32::MAX / buffers) * buffers
}

/// Turns a segment's wrapping 32-bit commit numbers into a 64-bit count that only grows.
#[derive(Debug, Clone)]
pub struct CommitUnwrapper {
    modulus: u32,
    last: Option<u32>,
    value: u64,
}

impl CommitUnwrapper {
    /// For a segment of `mode`.
    pub fn new(mode: Mode) -> Self {
        CommitUnwrapper {
            modulus: commit_modulus(mode),
            last: None,
            value: 0,
        }
    }

    /// The unwrapped value of commit `c`, which must not be older than the previous one
    /// (a reader's commits only move forward). The first commit maps to itself.
    pub fn unwrap(&mut self, c: u32) -> u64 {
        match self.last {
            None => self.value = c as u64,
            Some(last) => {
                let m = self.modulus as u64;
                let delta = (c as u64 + m - last as u64 % m) % m;
                self.value += delta;
            }
        }
        self.last = Some(c);
        self.value
    }
}

/// What a publisher did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PublishStats {
    /// Record messages sent.
    pub published: u64,
    /// FIFO: records the bridge's reader lost because the local writer lapped it.
    pub source_lost: u64,
    /// Single-slot: commits never published because a newer one replaced them first
    /// (normal for a latest-value segment, or because of `max_rate`).
    pub skipped: u64,
    /// Sessions started (1 + reopenings of the segment).
    pub sessions: u64,
    /// Records that could not be encoded (never expected; logged).
    pub encode_errors: u64,
}

/// The state of one publisher session: schema, sequence numbers, commit unwrapping.
#[derive(Debug)]
pub struct Publisher {
    schema: SchemaMsg,
    seq: u64,
    commits: CommitUnwrapper,
    last_commit: Option<u64>,
}

impl Publisher {
    /// A new session for `src` with a random session id.
    pub fn new<S: SegmentSource + ?Sized>(src: &S) -> Result<Self, BridgeError> {
        Self::with_session(src, random_session_id())
    }

    /// A new session with the given id (tests).
    pub fn with_session<S: SegmentSource + ?Sized>(
        src: &S,
        session: u64,
    ) -> Result<Self, BridgeError> {
        let schema = SchemaMsg::new(session, src.source_id(), src.mode(), src.fields().to_vec())?;
        Ok(Publisher {
            commits: CommitUnwrapper::new(src.mode()),
            schema,
            seq: 0,
            last_commit: None,
        })
    }

    /// The session's schema message.
    pub fn schema(&self) -> &SchemaMsg {
        &self.schema
    }

    /// The header `rec` gets as the session's next record, and the number of commits
    /// skipped since the previous record.
    fn next_header(&mut self, rec: &SourceRecord<'_>) -> (RecordHeader, u64) {
        let commit = self.commits.unwrap(rec.commit);
        let skipped = match self.last_commit {
            Some(prev) => commit.saturating_sub(prev + 1),
            None => 0,
        };
        let hdr = RecordHeader {
            session: self.schema.session,
            seq: self.seq + 1,
            commit,
            schema_hash: self.schema.hash,
        };
        (hdr, skipped)
    }

    fn sent(&mut self, hdr: &RecordHeader) {
        self.seq = hdr.seq;
        self.last_commit = Some(hdr.commit);
    }

    /// Encodes `rec` as the session's next record message into `out` (cleared first) and
    /// returns its header and the number of commits skipped since the previous record.
    pub fn encode(
        &mut self,
        rec: &SourceRecord<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(RecordHeader, u64), BridgeError> {
        let (hdr, skipped) = self.next_header(rec);
        out.clear();
        wire::encode_record(&hdr, &self.schema.fields, &rec.fields, out)?;
        self.sent(&hdr);
        Ok((hdr, skipped))
    }

    /// Starts a batch message of this session in `out` (cleared first); add records with
    /// [`push`](Self::push).
    pub fn begin_batch(&self, out: &mut Vec<u8>) -> BatchEncoder {
        out.clear();
        BatchEncoder::begin(out, &self.schema, self.seq + 1)
    }

    /// Appends `rec` to `batch` as the session's next record; returns its header and the
    /// number of commits skipped since the previous record.
    pub fn push(
        &mut self,
        batch: &mut BatchEncoder,
        rec: &SourceRecord<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(RecordHeader, u64), BridgeError> {
        let (hdr, skipped) = self.next_header(rec);
        batch.push(out, hdr.commit, &self.schema.fields, &rec.fields)?;
        self.sent(&hdr);
        Ok((hdr, skipped))
    }
}

/// Default bound of a batch message: Zenoh's own batch size, so that a batch travels in
/// one transport frame.
pub const DEFAULT_BATCH_BYTES: usize = 60_000;

/// How a publisher runs.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Single-slot mode: at most this many records per second (`None`: every commit the
    /// bridge sees). Ignored in FIFO mode, where every record is sent.
    pub max_rate: Option<f64>,
    /// How long one wait for a record lasts before the loop checks `stop` and whether
    /// the segment was replaced.
    pub poll: Duration,
    /// Log the counts at this interval (info level); `None`: only when stopping.
    pub stats_every: Option<Duration>,
    /// Take no record from the segment while no subscriber matches the key (as the
    /// outlet knows it): FIFO records wait in the ring instead of being sent to no one
    /// (a writer that laps the bridge meanwhile makes them `source_lost`, counted), and a
    /// single-slot segment's newest record is sent once a subscriber appears.
    pub hold_unmatched: bool,
    /// FIFO: records already waiting in the ring when one is read are sent together in
    /// one batch message of at most about this many bytes (0: one message per record).
    pub batch_bytes: usize,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            max_rate: None,
            poll: Duration::from_millis(100),
            stats_every: None,
            hold_unmatched: true,
            batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }
}

/// Opens the source with `open` (retrying until it succeeds or `stop` is set), then sends
/// its records to `outlet` until `stop` is set. A segment that is replaced (or fails) is
/// reopened under a new session id. Returns the counts when stopped, or when `open`
/// reports [`BridgeError::Gone`]; errors only for an outlet that fails.
pub fn run_publisher<S, O, F>(
    mut open: F,
    outlet: &mut O,
    opts: &PublishOptions,
    stop: &AtomicBool,
) -> Result<PublishStats, BridgeError>
where
    S: SegmentSource,
    O: Outlet + ?Sized,
    F: FnMut() -> Result<S, BridgeError>,
{
    let mut stats = PublishStats::default();
    let mut buf = Vec::new();
    let mut last_log = Instant::now();
    let min_interval = opts
        .max_rate
        .filter(|r| *r > 0.0 && r.is_finite())
        .map(|r| Duration::from_secs_f64(1.0 / r));
    'sessions: while !stop.load(Ordering::Relaxed) {
        let Some(mut src) = open_until(&mut open, opts.poll, stop) else {
            break;
        };
        let mut publisher = Publisher::new(&src)?;
        let schema = publisher.schema().clone();
        outlet.set_schema(&schema, schema.encode())?;
        stats.sessions += 1;
        // The schema also goes in-band, ahead of the session's first record, so a
        // subscriber that is already there needs no query.
        outlet.put(schema.encode())?;
        tracing::info!(
            segment = src.name(),
            session = format_args!("{:016x}", schema.session),
            mode = ?schema.mode,
            fields = schema.fields.len(),
            "publishing"
        );
        let name = src.name().to_string();
        let fifo = src.mode().is_fifo();
        let rate_limited = min_interval.is_some() && !fifo;
        let mut next_allowed = Instant::now();
        let mut held = false;
        while !stop.load(Ordering::Relaxed) {
            if opts.stats_every.is_some_and(|e| last_log.elapsed() >= e) {
                tracing::info!(segment = name, ?stats, "publisher counts");
                last_log = Instant::now();
            }
            if opts.hold_unmatched && !outlet.wait_matched(opts.poll) {
                if !held {
                    tracing::info!(segment = name, "no subscriber: holding records");
                    held = true;
                }
                if src.is_replaced() {
                    continue 'sessions;
                }
                continue;
            }
            if held {
                tracing::info!(segment = name, "a subscriber matches: publishing");
                held = false;
            }
            if rate_limited {
                let now = Instant::now();
                if now < next_allowed {
                    std::thread::sleep((next_allowed - now).min(opts.poll));
                    continue;
                }
            }
            let rec = match src.next_record(opts.poll) {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    if src.is_replaced() {
                        tracing::info!(segment = src.name(), "segment replaced: reopening");
                        continue 'sessions;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(segment = src.name(), error = %e, "read failed: reopening");
                    std::thread::sleep(opts.poll);
                    continue 'sessions;
                }
            };
            count_lost(&mut stats, &name, rec.lost);
            if !(fifo && rec.more && opts.batch_bytes > 0) {
                match publisher.encode(&rec, &mut buf) {
                    Ok((_, skipped)) => {
                        if !fifo {
                            stats.skipped += skipped;
                        }
                    }
                    Err(e) => {
                        stats.encode_errors += 1;
                        tracing::error!(segment = name, error = %e, "record not encodable");
                        continue;
                    }
                }
                outlet.put(take_message(&mut buf))?;
                stats.published += 1;
            } else {
                // More records are waiting: send what is ready in one message, so that
                // the link and both ends pay per batch, not per record.
                let mut batch = publisher.begin_batch(&mut buf);
                let mut failed = None;
                let mut rec = Some(rec);
                while let Some(r) = rec.take() {
                    if let Err(e) = publisher.push(&mut batch, &r, &mut buf) {
                        stats.encode_errors += 1;
                        tracing::error!(segment = name, error = %e, "record not encodable");
                    }
                    if !r.more
                        || batch.len() >= wire::MAX_BATCH
                        || batch.bytes(&buf) >= opts.batch_bytes
                    {
                        break;
                    }
                    drop(r);
                    rec = match src.next_record(Duration::ZERO) {
                        Ok(Some(next)) => {
                            count_lost(&mut stats, &name, next.lost);
                            Some(next)
                        }
                        Ok(None) => None,
                        Err(e) => {
                            failed = Some(e);
                            None
                        }
                    };
                }
                if !batch.is_empty() {
                    stats.published += batch.finish(&mut buf) as u64;
                    outlet.put(take_message(&mut buf))?;
                }
                if let Some(e) = failed {
                    tracing::warn!(segment = name, error = %e, "read failed: reopening");
                    std::thread::sleep(opts.poll);
                    continue 'sessions;
                }
            }
            if let Some(iv) = min_interval.filter(|_| rate_limited) {
                next_allowed = Instant::now() + iv;
            }
        }
    }
    tracing::info!(?stats, "publisher stopped");
    Ok(stats)
}

/// Counts and logs records the bridge's FIFO reader lost to a lapping writer.
fn count_lost(stats: &mut PublishStats, name: &str, lost: u32) {
    if lost > 0 {
        stats.source_lost += lost as u64;
        tracing::warn!(
            segment = name,
            lost,
            "the local writer lapped the bridge: records lost before publishing"
        );
    }
}

/// The message in `buf`, moved out; `buf` gets a fresh buffer of the same capacity.
fn take_message(buf: &mut Vec<u8>) -> Vec<u8> {
    let cap = buf.capacity();
    std::mem::replace(buf, Vec::with_capacity(cap))
}

/// Calls `open` until it succeeds, logging the first failure and then one in 50.
fn open_until<S, F>(open: &mut F, poll: Duration, stop: &AtomicBool) -> Option<S>
where
    F: FnMut() -> Result<S, BridgeError>,
{
    let mut failures = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match open() {
            Ok(s) => return Some(s),
            Err(BridgeError::Gone { name }) => {
                tracing::info!(segment = name, "segment gone: publisher stops");
                return None;
            }
            Err(e) => {
                if failures.is_multiple_of(50) {
                    tracing::warn!(error = %e, "cannot open the segment yet; retrying");
                }
                failures += 1;
                std::thread::sleep(poll);
            }
        }
    }
    None
}
