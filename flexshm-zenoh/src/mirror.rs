//! The mirroring side: receive record messages and write them into a local segment, so
//! that local programs read remote data with the plain flexshm API.
//!
//! [`Mirror`] is the state machine (schemas, publisher sessions, gaps, what to write);
//! it writes through the [`SegmentSink`] trait and is fed bytes, so it is tested without
//! shared memory or a network. [`MirrorLoop`] keeps what lies between messages (records
//! waiting for their schema); [`run_mirror`] drives both from an [`Inlet`] that is
//! pulled (the tests' inlets), [`crate::net::run_mirror_callback`] from a Zenoh
//! subscriber's callback (the bridge).
//!
//! What the mirror writes: the first record of a publisher session, and the first after
//! a gap, carries every written field (a *resync*); other records carry only the fields
//! modified since the previous message, so the mirror's own `modified` flags match the
//! source's. Local readers see the mirror's own consecutive commit numbers: network loss
//! is counted here ([`MirrorStats::lost`]) and logged, but a local FIFO reader's `lost`
//! stays 0 because the mirror committed every record it received.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flexshm_core::{FieldDef, Mode};

use crate::error::BridgeError;
use crate::publish::commit_modulus;
use crate::wire::{self, Peek, RecordHeader, SchemaMsg, WireError, WireField};

/// The local segment a mirror writes.
pub trait SegmentSink {
    /// The segment name.
    fn name(&self) -> &str;
    /// Creates the segment for `fields` in `mode`, or attaches to an existing one that
    /// has exactly these fields and this mode; anything else is an error that names the
    /// difference ([`BridgeError::Mismatch`]). Returns the mask of fields already
    /// written in it (bit i: field i).
    fn prepare(&mut self, fields: &[FieldDef], mode: Mode) -> Result<u64, BridgeError>;
    /// Writes the fields selected by `which` (bit i: field i; each selected field is
    /// written) with their values and truncated flags, and commits exactly one record
    /// (fields not selected keep their values, not modified). Returns the local commit
    /// number.
    fn write_record(&mut self, fields: &[WireField<'_>], which: u64) -> Result<u32, BridgeError>;
}

/// What a mirror did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MirrorStats {
    /// Messages handled (records and schema messages on the data key).
    pub received: u64,
    /// Records committed into the local segment.
    pub written: u64,
    /// Messages that failed validation: dropped, nothing written.
    pub invalid: u64,
    /// Record messages lost in the network (gaps in a session's sequence numbers).
    pub lost: u64,
    /// Source commits that were never sent (single-slot commits replaced before the
    /// publisher read them or skipped by its rate limit; FIFO records its reader lost):
    /// commit-number gaps not explained by lost messages.
    pub skipped: u64,
    /// Source commits missed between two publisher sessions on the same segment (a
    /// publisher restart).
    pub lost_restart: u64,
    /// Records dropped because the mirror had already written them (a restarted
    /// publisher replaying its FIFO ring).
    pub replayed: u64,
    /// Messages of a publisher session that a newer one replaced.
    pub stale: u64,
    /// Messages with a sequence number already seen.
    pub duplicates: u64,
    /// Publisher sessions seen.
    pub sessions: u64,
    /// Records dropped because their schema could not be fetched.
    pub no_schema: u64,
    /// Records dropped because their schema differs from the local segment's.
    pub schema_mismatch: u64,
    /// Fields unwritten at the source but written in the local segment at a resync; the
    /// mirror cannot clear a field's written status (it keeps the old value).
    pub unwritten_conflicts: u64,
}

/// The result of handling one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A record was committed locally.
    Written {
        /// The local commit number.
        local_commit: u32,
    },
    /// The schema of this publisher session is unknown: fetch it, pass it to
    /// [`Mirror::learn_schema`] and hand the message in again (or report
    /// [`Mirror::no_schema`]).
    NeedSchema {
        /// The publisher session.
        session: u64,
    },
    /// A schema message was learnt.
    SchemaLearnt,
    /// The message was dropped (counted in [`MirrorStats`], logged).
    Dropped,
}

/// Options of a mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Mode of the local segment; `None`: the source's mode and slot count.
    pub mode: Option<Mode>,
}

/// Schemas remembered (by publisher session).
const SCHEMA_CACHE: usize = 8;
/// Replaced sessions remembered, whose late messages are dropped as stale.
const RETIRED: usize = 16;

#[derive(Debug)]
struct Local {
    hash: u64,
    written: u64,
}

#[derive(Debug)]
struct Current {
    session: u64,
    last_seq: u64,
    last_commit: u64,
    /// The local segment holds this session's state (a resync was written and nothing
    /// was dropped since).
    synced: bool,
}

#[derive(Debug, Clone, Copy)]
struct Applied {
    source: u64,
    commit: u32,
    modulus: u32,
}

/// Logs the first 10 events of a kind, then one in 1000.
#[derive(Debug, Default)]
struct Throttle(u64);

impl Throttle {
    fn hit(&mut self) -> bool {
        self.0 += 1;
        self.0 <= 10 || self.0.is_multiple_of(1000)
    }
}

/// The mirror state machine; see the module docs.
#[derive(Debug)]
pub struct Mirror<K> {
    sink: K,
    opts: MirrorOptions,
    local: Option<Local>,
    schemas: VecDeque<Arc<SchemaMsg>>,
    current: Option<Current>,
    retired: VecDeque<u64>,
    applied: Option<Applied>,
    stats: MirrorStats,
    key: String,
    invalid_log: Throttle,
    mismatch_log: Throttle,
    quiet_log: Throttle,
}

impl<K: SegmentSink> Mirror<K> {
    /// A mirror writing into `sink`; the local segment is prepared when the first
    /// record's schema is known.
    pub fn new(sink: K, opts: MirrorOptions) -> Self {
        Mirror {
            sink,
            opts,
            local: None,
            schemas: VecDeque::new(),
            current: None,
            retired: VecDeque::new(),
            applied: None,
            stats: MirrorStats::default(),
            key: String::new(),
            invalid_log: Throttle::default(),
            mismatch_log: Throttle::default(),
            quiet_log: Throttle::default(),
        }
    }

    /// Names the key the mirror's messages come from, in its log lines.
    pub fn with_key(mut self, key: &str) -> Self {
        self.key = key.to_string();
        self
    }

    /// The counts so far.
    pub fn stats(&self) -> MirrorStats {
        self.stats
    }

    /// The sink.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut K {
        &mut self.sink
    }

    /// Learns a schema message (from a schema fetch, or one received on the data key).
    pub fn learn_schema(&mut self, bytes: &[u8]) -> Result<Arc<SchemaMsg>, WireError> {
        let schema = Arc::new(SchemaMsg::decode(bytes)?);
        self.schemas.retain(|s| s.session != schema.session);
        self.schemas.push_back(Arc::clone(&schema));
        while self.schemas.len() > SCHEMA_CACHE {
            self.schemas.pop_front();
        }
        Ok(schema)
    }

    /// Counts a message of `session` with `records` records dropped because its schema
    /// could not be had.
    pub fn no_schema(&mut self, session: u64, records: u64) {
        self.stats.received += 1;
        self.stats.no_schema += records;
        if self.invalid_log.hit() {
            tracing::warn!(
                key = self.key,
                segment = self.sink.name(),
                session = format_args!("{session:016x}"),
                records,
                "message dropped: its schema could not be fetched from the publisher"
            );
        }
    }

    /// Handles one message. Errors only for a local segment that cannot be created or
    /// written (fatal for the mirror); bad messages are dropped and counted.
    pub fn handle(&mut self, bytes: &[u8]) -> Result<Outcome, BridgeError> {
        let out = self.handle_inner(bytes)?;
        if !matches!(out, Outcome::NeedSchema { .. }) {
            self.stats.received += 1;
        }
        Ok(out)
    }

    fn invalid(&mut self, e: &WireError) -> Outcome {
        self.stats.invalid += 1;
        if self.invalid_log.hit() {
            tracing::warn!(
                key = self.key,
                segment = self.sink.name(),
                reason = %e,
                "invalid message dropped"
            );
        }
        Outcome::Dropped
    }

    fn handle_inner(&mut self, bytes: &[u8]) -> Result<Outcome, BridgeError> {
        let peeked = match wire::peek(bytes) {
            Ok(Peek::Schema { .. }) => {
                return Ok(match self.learn_schema(bytes) {
                    Ok(_) => Outcome::SchemaLearnt,
                    Err(e) => self.invalid(&e),
                })
            }
            Ok(p) => p,
            Err(e) => return Ok(self.invalid(&e)),
        };
        let session = peeked.session();
        if self.retired.contains(&session) {
            let n = match peeked {
                Peek::Batch(b) => b.count as u64,
                _ => 1,
            };
            self.stats.stale += n;
            if self.quiet_log.hit() {
                tracing::debug!(
                    key = self.key,
                    session = format_args!("{session:016x}"),
                    records = n,
                    "message dropped: its publisher session was replaced by a newer one"
                );
            }
            return Ok(Outcome::Dropped);
        }
        let Some(schema) = self.schemas.iter().find(|s| s.session == session).cloned() else {
            return Ok(Outcome::NeedSchema { session });
        };
        let n = schema.fields.len();
        match peeked {
            Peek::Batch(_) => {
                let (mut fields, mut commits) = (Vec::new(), Vec::new());
                let bh = match wire::decode_batch(bytes, &schema, &mut fields, &mut commits) {
                    Ok(h) => h,
                    Err(e) => return Ok(self.invalid(&e)),
                };
                if !self.local_matches(&schema, session, bh.count as u64)? {
                    return Ok(Outcome::Dropped);
                }
                // Check the batch against its session before writing any of it: the
                // first record not seen yet must carry a greater commit number.
                if let Some(c) = self.current.as_ref().filter(|c| c.session == session) {
                    let first_new = (c.last_seq + 1).saturating_sub(bh.first_seq) as usize;
                    if commits.get(first_new).is_some_and(|&k| k <= c.last_commit) {
                        let e = WireError::Invalid {
                            what: "commit number did not grow within a session",
                        };
                        return Ok(self.invalid(&e));
                    }
                }
                let mut out = Outcome::Dropped;
                for (i, &commit) in commits.iter().enumerate() {
                    let rec = &fields[i * n..(i + 1) * n];
                    if let o @ Outcome::Written { .. } =
                        self.apply(bh.record(i, commit), &schema, rec)?
                    {
                        out = o;
                    }
                }
                Ok(out)
            }
            _ => {
                let mut fields = Vec::with_capacity(n);
                let hdr = match wire::decode_record(bytes, &schema, &mut fields) {
                    Ok(h) => h,
                    Err(e) => return Ok(self.invalid(&e)),
                };
                if !self.local_matches(&schema, session, 1)? {
                    return Ok(Outcome::Dropped);
                }
                self.apply(hdr, &schema, &fields)
            }
        }
    }

    /// Makes sure the local segment exists for `schema` (creating it from the first
    /// schema seen); false, with `records` counted and logged as dropped, if the local
    /// segment has another schema.
    fn local_matches(
        &mut self,
        schema: &SchemaMsg,
        session: u64,
        records: u64,
    ) -> Result<bool, BridgeError> {
        match &self.local {
            Some(l) if l.hash == schema.hash => Ok(true),
            Some(_) => {
                self.stats.schema_mismatch += records;
                if self.mismatch_log.hit() {
                    tracing::error!(
                        key = self.key,
                        segment = self.sink.name(),
                        session = format_args!("{session:016x}"),
                        records,
                        "message dropped: the publisher's schema differs from the local \
                         segment's (the local segment keeps its layout while mapped)"
                    );
                }
                Ok(false)
            }
            None => {
                let mode = self.opts.mode.unwrap_or(schema.mode);
                let written = self.sink.prepare(&schema.fields, mode)?;
                self.local = Some(Local {
                    hash: schema.hash,
                    written,
                });
                Ok(true)
            }
        }
    }

    /// Applies one decoded record of `schema` (whose local segment is prepared): session
    /// and gap bookkeeping, replay detection, and the local write.
    fn apply(
        &mut self,
        hdr: RecordHeader,
        schema: &SchemaMsg,
        fields: &[WireField<'_>],
    ) -> Result<Outcome, BridgeError> {
        let local_written = self.local.as_ref().map_or(0, |l| l.written);
        // Publisher sessions and gaps.
        let resync = match &mut self.current {
            Some(c) if c.session == hdr.session => {
                if hdr.seq <= c.last_seq {
                    self.stats.duplicates += 1;
                    if self.quiet_log.hit() {
                        tracing::debug!(
                            key = self.key,
                            seq = hdr.seq,
                            "record dropped: its sequence number was already received"
                        );
                    }
                    return Ok(Outcome::Dropped);
                }
                if hdr.commit <= c.last_commit {
                    let e = WireError::Invalid {
                        what: "commit number did not grow within a session",
                    };
                    return Ok(self.invalid(&e));
                }
                let seq_gap = hdr.seq - c.last_seq - 1;
                let commit_gap = hdr.commit - c.last_commit - 1;
                self.stats.lost += seq_gap;
                self.stats.skipped += commit_gap.saturating_sub(seq_gap);
                if seq_gap > 0 {
                    tracing::warn!(
                        key = self.key,
                        segment = self.sink.name(),
                        lost = seq_gap,
                        total = self.stats.lost,
                        after_seq = c.last_seq,
                        "records lost in the network"
                    );
                }
                seq_gap > 0 || !c.synced
            }
            _ => {
                if let Some(old) = self.current.take() {
                    self.retired.push_back(old.session);
                    while self.retired.len() > RETIRED {
                        self.retired.pop_front();
                    }
                }
                self.stats.sessions += 1;
                tracing::info!(
                    key = self.key,
                    segment = self.sink.name(),
                    session = format_args!("{:016x}", hdr.session),
                    source = format_args!("{:016x}", schema.source),
                    first_commit = hdr.commit,
                    "new publisher session"
                );
                self.current = Some(Current {
                    session: hdr.session,
                    last_seq: hdr.seq,
                    last_commit: hdr.commit,
                    synced: false,
                });
                // Commits missed between the previous session on the same segment and
                // this one.
                if let Some(a) = self.applied.filter(|a| a.source == schema.source) {
                    let d = distance(a, hdr.commit);
                    if d > 1 && d < a.modulus / 2 {
                        let gap = (d - 1) as u64;
                        self.stats.lost_restart += gap;
                        tracing::warn!(
                            key = self.key,
                            segment = self.sink.name(),
                            lost = gap,
                            "records committed while no publisher sent them"
                        );
                    }
                }
                true
            }
        };
        // Mark the message as seen by its session (it is in order, see above).
        let cur = self.current.as_mut().expect("set above");
        cur.last_seq = hdr.seq;
        cur.last_commit = hdr.commit;

        // A restarted publisher replays records this mirror already wrote.
        if let Some(a) = self.applied.filter(|a| a.source == schema.source) {
            let d = distance(a, hdr.commit);
            if d == 0 || d >= a.modulus / 2 {
                self.stats.replayed += 1;
                cur.synced = false;
                if self.quiet_log.hit() {
                    tracing::debug!(
                        key = self.key,
                        commit = hdr.commit,
                        "record dropped: already written (a restarted publisher replays its ring)"
                    );
                }
                return Ok(Outcome::Dropped);
            }
        }
        let mut which = 0u64;
        let mut conflicts = 0u64;
        for (i, f) in fields.iter().enumerate() {
            let bit = 1u64 << i;
            if resync {
                if f.status.written {
                    which |= bit;
                } else if local_written & bit != 0 {
                    conflicts += 1;
                }
            } else if f.status.modified {
                which |= bit;
            }
        }
        if conflicts > 0 {
            self.stats.unwritten_conflicts += conflicts;
            tracing::warn!(
                key = self.key,
                segment = self.sink.name(),
                fields = conflicts,
                "fields unwritten at the source keep an older value in the local segment"
            );
        }
        let local_commit = self.sink.write_record(fields, which)?;
        if let Some(l) = self.local.as_mut() {
            l.written |= which;
        }
        if let Some(c) = self.current.as_mut() {
            c.synced = true;
        }
        let modulus = commit_modulus(schema.mode);
        self.applied = Some(Applied {
            source: schema.source,
            commit: (hdr.commit % modulus as u64) as u32,
            modulus,
        });
        self.stats.written += 1;
        Ok(Outcome::Written { local_commit })
    }
}

/// `(commit - applied) mod modulus`, with `commit` an unwrapped commit number.
fn distance(a: Applied, commit: u64) -> u32 {
    let m = a.modulus as u64;
    ((commit % m + m - a.commit as u64 % m) % m) as u32
}

/// A received message.
pub trait InMessage {
    /// The key it was published on.
    fn key(&self) -> &str;
    /// Its bytes.
    fn payload(&self) -> Cow<'_, [u8]>;
}

/// Where a mirror's messages come from.
pub trait Inlet {
    /// The message type.
    type Msg: InMessage;
    /// The next message, waiting up to `timeout`; `Ok(None)` if none came.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Self::Msg>, BridgeError>;
    /// Starts asking the publishers of `key` for their schema messages, without waiting
    /// for the answers (the receive path must keep flowing meanwhile: a blocked
    /// subscriber can hold up the very link the answer comes on). Answers arrive through
    /// [`schema_replies`](Self::schema_replies).
    fn request_schema(&mut self, key: &str, timeout: Duration) -> Result<(), BridgeError>;
    /// Schema messages that arrived since the previous call.
    fn schema_replies(&mut self) -> Vec<Vec<u8>>;
}

/// How [`run_mirror`] runs.
#[derive(Debug, Clone)]
pub struct MirrorLoopOptions {
    /// How long one wait for a message lasts before `stop` is checked.
    pub poll: Duration,
    /// How long a schema request waits for answers; records kept waiting for their
    /// schema longer than this are dropped (counted in [`MirrorStats::no_schema`]).
    pub schema_timeout: Duration,
    /// Records kept while their schema is being fetched, at most (older ones are dropped
    /// first, counted in [`MirrorStats::no_schema`]).
    pub max_pending: usize,
    /// Bytes of such records kept, at most.
    pub max_pending_bytes: usize,
    /// Log the counts at this interval (info level); `None`: never.
    pub stats_every: Option<Duration>,
}

impl Default for MirrorLoopOptions {
    fn default() -> Self {
        MirrorLoopOptions {
            poll: Duration::from_millis(100),
            schema_timeout: Duration::from_secs(2),
            max_pending: 1024,
            max_pending_bytes: 64 << 20,
            stats_every: None,
        }
    }
}

/// Records waiting for their session's schema, and the requests made.
#[derive(Debug, Default)]
struct Pending {
    msgs: VecDeque<(u64, Vec<u8>)>,
    bytes: usize,
    requested: Vec<(u64, Instant)>,
}

impl Pending {
    fn recount(&mut self) {
        self.bytes = self.msgs.iter().map(|(_, m)| m.len()).sum();
    }
}

/// What a mirror's loop keeps between messages: the records waiting for their schema
/// and the schema requests made. It is fed one message at a time, from a pulling loop
/// ([`run_mirror`]) or from a subscriber's callback ([`crate::spawn_mirror`]), and ticked
/// now and then for schema answers, expiry and the periodic counts.
#[derive(Debug)]
pub struct MirrorLoop {
    pending: Pending,
    opts: MirrorLoopOptions,
    last_log: Instant,
}

impl MirrorLoop {
    /// An empty loop state.
    pub fn new(opts: MirrorLoopOptions) -> Self {
        MirrorLoop {
            pending: Pending::default(),
            opts,
            last_log: Instant::now(),
        }
    }

    /// The options.
    pub fn options(&self) -> &MirrorLoopOptions {
        &self.opts
    }

    /// Handles one message received on `key`. A record whose schema is unknown is kept
    /// (up to `max_pending` and `max_pending_bytes`, the oldest dropped first) and
    /// `Some(key)` returned when the schema should now be requested from that key.
    /// Errors only for a local segment that cannot be used.
    pub fn message<K: SegmentSink>(
        &mut self,
        mirror: &mut Mirror<K>,
        key: &str,
        bytes: &[u8],
    ) -> Result<Option<String>, BridgeError> {
        let pending = &mut self.pending;
        let Outcome::NeedSchema { session } = handle_in_order(mirror, pending, bytes)? else {
            return Ok(None);
        };
        while !pending.msgs.is_empty()
            && (pending.msgs.len() >= self.opts.max_pending.max(1)
                || pending.bytes + bytes.len() > self.opts.max_pending_bytes)
        {
            if let Some((s, m)) = pending.msgs.pop_front() {
                pending.bytes -= m.len();
                mirror.no_schema(s, records_in(&m));
            }
        }
        pending.bytes += bytes.len();
        pending.msgs.push_back((session, bytes.to_vec()));
        if pending.requested.iter().any(|(s, _)| *s == session) {
            return Ok(None);
        }
        pending.requested.push((session, Instant::now()));
        Ok(Some(key.to_string()))
    }

    /// Learns schema answers (`replies`) and handles the records that waited for them,
    /// drops those whose schema did not come in time, logs the counts when due.
    pub fn tick<K: SegmentSink>(
        &mut self,
        mirror: &mut Mirror<K>,
        replies: Vec<Vec<u8>>,
    ) -> Result<(), BridgeError> {
        if self
            .opts
            .stats_every
            .is_some_and(|e| self.last_log.elapsed() >= e)
        {
            tracing::info!(key = mirror.key, segment = mirror.sink.name(), stats = ?mirror.stats, "mirror counts");
            self.last_log = Instant::now();
        }
        if !replies.is_empty() {
            for r in replies {
                match mirror.learn_schema(&r) {
                    Ok(s) => tracing::info!(
                        key = mirror.key,
                        segment = mirror.sink.name(),
                        session = format_args!("{:016x}", s.session),
                        "schema fetched from the publisher"
                    ),
                    Err(e) => tracing::warn!(
                        key = mirror.key,
                        segment = mirror.sink.name(),
                        reason = %e,
                        "invalid schema reply ignored"
                    ),
                }
            }
            replay_pending(mirror, &mut self.pending)?;
        }
        expire_pending(mirror, &mut self.pending, self.opts.schema_timeout);
        Ok(())
    }

    /// How long to wait for the next message before ticking again: short while schemas
    /// are awaited, to take their answers.
    pub fn wait(&self) -> Duration {
        if self.pending.requested.is_empty() {
            self.opts.poll
        } else {
            self.opts.poll.min(Duration::from_millis(5))
        }
    }
}

/// Feeds `mirror` from `inlet` until `stop` is set. Records whose schema is unknown are
/// kept (up to `max_pending`) while the schema is requested, and handled in order once
/// it arrives. Errors only for a local segment that cannot be used or a failing inlet.
pub fn run_mirror<K: SegmentSink, I: Inlet + ?Sized>(
    mirror: &mut Mirror<K>,
    inlet: &mut I,
    opts: &MirrorLoopOptions,
    stop: &AtomicBool,
) -> Result<MirrorStats, BridgeError> {
    let mut state = MirrorLoop::new(opts.clone());
    while !stop.load(Ordering::Relaxed) {
        state.tick(mirror, inlet.schema_replies())?;
        let Some(msg) = inlet.recv(state.wait())? else {
            continue;
        };
        if let Some(key) = state.message(mirror, msg.key(), &msg.payload())? {
            if let Err(e) = inlet.request_schema(&key, opts.schema_timeout) {
                tracing::warn!(key, error = %e, "schema request failed");
            }
        }
    }
    Ok(mirror.stats())
}

/// Handles a message unless older records of its session are still waiting for their
/// schema (then it waits behind them, keeping the order).
fn handle_in_order<K: SegmentSink>(
    mirror: &mut Mirror<K>,
    pending: &Pending,
    bytes: &[u8],
) -> Result<Outcome, BridgeError> {
    if let Ok(p @ (Peek::Record(_) | Peek::Batch(_))) = wire::peek(bytes) {
        let session = p.session();
        if pending.msgs.iter().any(|(s, _)| *s == session) {
            return Ok(Outcome::NeedSchema { session });
        }
    }
    mirror.handle(bytes)
}

/// Records a data message carries (1 unless it is a batch).
fn records_in(bytes: &[u8]) -> u64 {
    match wire::peek(bytes) {
        Ok(Peek::Batch(b)) => b.count as u64,
        _ => 1,
    }
}

/// Handles the waiting records whose schema is now known, in arrival order.
fn replay_pending<K: SegmentSink>(
    mirror: &mut Mirror<K>,
    pending: &mut Pending,
) -> Result<(), BridgeError> {
    let msgs = std::mem::take(&mut pending.msgs);
    let mut still: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    for (session, bytes) in msgs {
        if still.iter().any(|(s, _)| *s == session) {
            still.push_back((session, bytes));
            continue;
        }
        if let Outcome::NeedSchema { .. } = mirror.handle(&bytes)? {
            still.push_back((session, bytes));
        }
    }
    pending
        .requested
        .retain(|(s, _)| still.iter().any(|(t, _)| t == s));
    pending.msgs = still;
    pending.recount();
    Ok(())
}

/// Drops the records of sessions whose schema request got no usable answer in time; the
/// next record of such a session asks again.
fn expire_pending<K: SegmentSink>(
    mirror: &mut Mirror<K>,
    pending: &mut Pending,
    timeout: Duration,
) {
    let expired: Vec<u64> = pending
        .requested
        .iter()
        .filter(|(_, t)| t.elapsed() > timeout)
        .map(|(s, _)| *s)
        .collect();
    if expired.is_empty() {
        return;
    }
    pending.requested.retain(|(s, _)| !expired.contains(s));
    pending.msgs.retain(|(s, m)| {
        if expired.contains(s) {
            mirror.no_schema(*s, records_in(m));
            false
        } else {
            true
        }
    });
    pending.recount();
}
