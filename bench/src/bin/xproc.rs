//! Cross-process benchmarks: two processes pinned to different cores.
//!
//! ```text
//! xproc latency --payload small|image [--blocks N] [--iters M]
//! xproc fifo    --payload small|image [--blocks N] [--block-ms D]
//! xproc wake    [--blocks N] [--iters M] [--gap-us G]
//! ```
//!
//! The parent measures and prints a markdown table; it starts a copy of this program as
//! the child (`latency-child`, `fifo-child`) with the same arguments. The two walk the
//! same schedule: blocks, and inside each block every system in turn (the order rotates
//! per block), so every system sees the same mix of host scheduling. Reported ratios are
//! medians of per-block ratios (see `flexshm_bench::stats`).

use std::process::{Child, Command};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flexshm_bench::stats::{fmt_ns, fmt_rate, Blocks};
use flexshm_bench::table::Table;
use flexshm_bench::{
    allowed_cpus, image_fields, pin_to_cpu, sample_sensor, segment_size, spin_until, Args, Blob64,
    Pose, SensorData, ShmFile, IMG_BYTES, IMG_C, IMG_H, IMG_W, SENSOR_PAYLOAD,
};
use flexshm_core::{
    ArrayRef, Dtype, Error, FieldDef, Mode, ReadOptions, Reader, Record, Region, TypedReader,
    TypedWriter, Value, Writer,
};

const SETUP_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    let args = Args::from_env();
    // The tag of a parent run; its child uses the same one, passed on the command line.
    let run_tag = match args.command() {
        Some("latency") => Some(tag_for(&args, "lat")),
        Some("fifo") => Some(tag_for(&args, "fifo")),
        Some("wake") => Some(tag_for(&args, "wake")),
        _ => None,
    };
    let r = match args.command() {
        Some("latency") => latency_parent(&args),
        Some("latency-child") => latency_child(&args),
        Some("fifo") => fifo_parent(&args),
        Some("fifo-child") => fifo_child(&args),
        Some("wake") => wake::parent(&args),
        Some("wake-child") => wake::child(&args),
        _ => {
            eprintln!("usage: xproc latency|fifo --payload small|image [--blocks N] ...");
            std::process::exit(2);
        }
    };
    if let Some(tag) = run_tag {
        remove_segments(&tag);
    }
    if let Err(e) = r {
        eprintln!("xproc: {e}");
        std::process::exit(1);
    }
}

/// Removes this run's files from /dev/shm (`flexshm-bench-{tag}-*`). The benchmark
/// programs keep their mappings for the whole run (regions are `'static`, the ShmFiles
/// are leaked), so their files are removed here, once the run and its child are done.
fn remove_segments(tag: &str) {
    let prefix = format!("flexshm-bench-{tag}-");
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

// ---------------------------------------------------------------------------------------
// Process pair: control words, pinning, the child.

/// Control words shared by the two processes, one per cache line.
struct Ctl {
    file: ShmFile,
}

/// Control word indices.
const C_READY: usize = 0;
const C_FAILED: usize = 1;
const C_BLOCK_START: usize = 2;
const C_BLOCK_DONE: usize = 3;
const C_RESULT: usize = 4;
const C_RECEIVED: usize = 5;
const C_LOST: usize = 6;
const C_PRODUCED: usize = 7;
const C_MISORDERED: usize = 8;

impl Ctl {
    fn create(tag: &str) -> Res<Ctl> {
        Ok(Ctl {
            file: ShmFile::create(&format!("flexshm-bench-{tag}-ctl"), 4096)?,
        })
    }
    fn open(tag: &str) -> Res<Ctl> {
        Ok(Ctl {
            file: ShmFile::open(&format!("flexshm-bench-{tag}-ctl"))?,
        })
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < 64);
        // SAFETY: the mapping is 4096 bytes, page-aligned, so line i (i < 64) holds an
        // aligned u64; both processes access it only through this atomic.
        unsafe { &*(self.file.ptr().add(i * 64) as *const AtomicU64) }
    }
}

struct Pair {
    child: Child,
    ctl: Ctl,
    tag: String,
}

impl Pair {
    /// Starts the child with `cmd` and this run's arguments; it pins itself to the other
    /// core.
    fn start(cmd: &str, args: &Args, tag: &str, ctl: Ctl) -> Res<Pair> {
        let child = Command::new(std::env::current_exe()?)
            .arg(cmd)
            .args(&args.all()[1..])
            .arg("--tag")
            .arg(tag)
            .arg("--child-cpu")
            .arg(cpus().1.to_string())
            .spawn()?;
        Ok(Pair {
            child,
            ctl,
            tag: tag.into(),
        })
    }

    /// Waits until the child has set up its side (or failed).
    fn wait_ready(&mut self) -> Res {
        let ok = spin_until(SETUP_LIMIT, || {
            self.ctl.word(C_READY).load(Ordering::Acquire) != 0
                || self.ctl.word(C_FAILED).load(Ordering::Acquire) != 0
        });
        if !ok || self.ctl.word(C_FAILED).load(Ordering::Acquire) != 0 {
            let _ = self.child.kill();
            return Err(format!("child ({}) did not get ready", self.tag).into());
        }
        Ok(())
    }

    fn finish(mut self) -> Res {
        let st = self.child.wait()?;
        if !st.success() {
            return Err(format!("child ({}) exited with {st}", self.tag).into());
        }
        Ok(())
    }
}

/// The two CPUs to pin to: the first two this process may use.
fn cpus() -> (usize, usize, bool) {
    let c = allowed_cpus();
    if c.len() >= 2 {
        (c[0], c[1], true)
    } else {
        (c[0], c[0], false)
    }
}

/// Pins the parent to the first CPU; the child gets the second through `--child-cpu`
/// (it inherits the parent's affinity, so it cannot find that CPU itself).
fn pin_parent() -> bool {
    let (a, _, two) = cpus();
    pin_to_cpu(a) && two
}

fn pin_child(args: &Args) -> bool {
    pin_to_cpu(args.get("child-cpu", 1usize))
}

fn tag_for(args: &Args, what: &str) -> String {
    args.get("tag", format!("{what}-{}", std::process::id()))
}

// ---------------------------------------------------------------------------------------
// Latency: ping-pong, one-way = round trip / 2.

/// One system in the ping-pong. Side A sends message `i` and waits for the reply;
/// side B waits for message `i` and replies. Each side's payload is written by its
/// sender and copied out by its receiver.
trait PingPong {
    fn ping(&mut self, i: u64);
    fn pong(&mut self, i: u64);
}

/// Payload size of a run.
#[derive(Clone, Copy, PartialEq)]
enum Payload {
    Small,
    Image,
}

impl Payload {
    fn parse(args: &Args) -> Res<Payload> {
        match args.get("payload", String::from("small")).as_str() {
            "small" => Ok(Payload::Small),
            "image" => Ok(Payload::Image),
            p => Err(format!("unknown payload {p}").into()),
        }
    }
    /// Payload size in bytes (the iceoryx2 peer's slice length).
    #[cfg_attr(not(feature = "iceoryx2"), allow(dead_code))]
    fn bytes(self) -> usize {
        match self {
            Payload::Small => 64,
            Payload::Image => IMG_BYTES,
        }
    }
}

/// Raw shared memory: per direction a counter line and a payload area; the sender
/// copies the payload in and publishes the counter (Release), the receiver spins on the
/// counter (Acquire) and copies the payload out. `len == 0`: the counter alone (a pure
/// cache-line ping-pong).
struct Raw {
    _file: ShmFile,
    base: *mut u8,
    len: usize,
    stride: usize,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Raw {
    fn name(tag: &str, len: usize) -> String {
        format!("flexshm-bench-{tag}-raw{len}")
    }
    fn new(tag: &str, len: usize, create: bool) -> Res<Raw> {
        let stride = 64 + len.div_ceil(64) * 64;
        let file = if create {
            ShmFile::create(&Self::name(tag, len), 2 * stride)?
        } else {
            ShmFile::open(&Self::name(tag, len))?
        };
        let base = file.ptr();
        Ok(Raw {
            _file: file,
            base,
            len,
            stride,
            src: (0..len).map(|i| i as u8).collect(),
            dst: vec![0; len],
        })
    }
    fn counter(&self, dir: usize) -> &AtomicU64 {
        // SAFETY: the file holds two strides; each starts 64-aligned with the counter.
        unsafe { &*(self.base.add(dir * self.stride) as *const AtomicU64) }
    }
    fn payload(&self, dir: usize) -> *mut u8 {
        // SAFETY: the payload follows the counter line inside the stride.
        unsafe { self.base.add(dir * self.stride + 64) }
    }
    fn send(&mut self, dir: usize, i: u64) {
        if self.len > 0 {
            self.src[..8.min(self.len)].copy_from_slice(&i.to_le_bytes()[..8.min(self.len)]);
            // SAFETY: the receiver reads this area only after seeing counter == i, and
            // the ping-pong alternates, so nobody reads it while we write; in bounds.
            unsafe { ptr::copy_nonoverlapping(self.src.as_ptr(), self.payload(dir), self.len) };
        }
        // Pairs with the Acquire load in `recv` on the other side.
        self.counter(dir).store(i, Ordering::Release);
    }
    fn recv(&mut self, dir: usize, i: u64) {
        // Pairs with the Release store in `send`.
        while self.counter(dir).load(Ordering::Acquire) != i {
            std::hint::spin_loop();
        }
        if self.len > 0 {
            // SAFETY: the sender finished writing before its Release store of i and
            // writes again only after our reply.
            unsafe { ptr::copy_nonoverlapping(self.payload(dir), self.dst.as_mut_ptr(), self.len) };
            std::hint::black_box(&mut self.dst);
        }
    }
}

impl PingPong for Raw {
    // Direction 0 carries A's messages, direction 1 B's replies.
    fn ping(&mut self, i: u64) {
        self.send(0, i);
        self.recv(1, i);
    }
    fn pong(&mut self, i: u64) {
        self.recv(0, i);
        self.send(1, i);
    }
}

/// A typed record with a sequence number in it.
trait SeqRecord: Record + Default {
    fn set_seq(&mut self, i: u64);
    fn seq(&self) -> u64;
}

impl SeqRecord for Pose {
    fn set_seq(&mut self, i: u64) {
        self.seq = i as f64;
    }
    fn seq(&self) -> u64 {
        self.seq as u64
    }
}

impl SeqRecord for Blob64 {
    fn set_seq(&mut self, i: u64) {
        self.data[..8].copy_from_slice(&i.to_le_bytes());
    }
    fn seq(&self) -> u64 {
        u64::from_le_bytes(self.data[..8].try_into().unwrap())
    }
}

/// flexshm, typed API, two single-slot segments (one per direction). The receiver
/// busy-polls the cheap head word, then takes a snapshot and decodes it.
struct FlexTyped<R: 'static> {
    _files: (ShmFile, ShmFile),
    w: TypedWriter<'static, R>,
    r: TypedReader<'static, R>,
    rec: R,
    out: R,
    buf: Vec<u8>,
    last: u32,
    bad: u64,
}

/// The two one-way segments of a flexshm ping-pong, `{tag}-{kind}-ab` (side A writes)
/// and `-ba` (side B writes): created by the parent, opened by the child. Returns the
/// files (the caller keeps them for the run), this side's outgoing region and the other
/// side's.
fn segment_pair(
    tag: &str,
    kind: &str,
    size: usize,
    create: bool,
    side_a: bool,
) -> Res<((ShmFile, ShmFile), Region<'static>, Region<'static>)> {
    let names = [
        format!("flexshm-bench-{tag}-{kind}-ab"),
        format!("flexshm-bench-{tag}-{kind}-ba"),
    ];
    let files = if create {
        (
            ShmFile::create(&names[0], size)?,
            ShmFile::create(&names[1], size)?,
        )
    } else {
        (ShmFile::open(&names[0])?, ShmFile::open(&names[1])?)
    };
    let (ab, ba) = (files.0.region(), files.1.region());
    let (mine, theirs) = if side_a { (ab, ba) } else { (ba, ab) };
    Ok((files, mine, theirs))
}

impl<R: SeqRecord> FlexTyped<R> {
    fn new(tag: &str, kind: &str, create: bool, side_a: bool) -> Res<Self> {
        let size = segment_size(R::FIELDS, Mode::Single);
        let (files, region_w, region_r) = segment_pair(tag, kind, size, create, side_a)?;
        let w = if create {
            TypedWriter::<R>::create(region_w, Mode::Single)?
        } else {
            TypedWriter::<R>::attach(region_w)?
        };
        // The parent initialises both segments; the child attaches as writer of its own.
        if create {
            TypedWriter::<R>::create(region_r, Mode::Single)?;
        }
        let r = TypedReader::<R>::open(region_r)?;
        let mut s = FlexTyped {
            _files: files,
            w,
            r,
            rec: R::default(),
            out: R::default(),
            buf: vec![0; R::SNAPSHOT_LEN],
            last: 0,
            bad: 0,
        };
        s.last = s.r.inner().head();
        Ok(s)
    }
    fn send(&mut self, i: u64) {
        self.rec.set_seq(i);
        self.w.write(&self.rec).expect("flexshm write");
    }
    fn recv(&mut self, i: u64) {
        loop {
            let mut k = 0u64;
            while self.r.inner().head() == self.last {
                std::hint::spin_loop();
                k += 1;
                if k == 1 << 28 && std::env::var_os("XPROC_DEBUG").is_some() {
                    eprintln!(
                        "{} stuck want {i} head {} last {}",
                        std::process::id(),
                        self.r.inner().head(),
                        self.last
                    );
                }
            }
            let info = self
                .r
                .try_read(&mut self.buf, ReadOptions::default(), &mut self.out)
                .expect("flexshm read");
            self.last = info.commit;
            if self.out.seq() == i {
                return;
            }
            self.bad += 1;
            if std::env::var_os("XPROC_DEBUG").is_some() {
                eprintln!("want {i} got {} commit {}", self.out.seq(), info.commit);
            }
        }
    }
}

impl<R: SeqRecord> PingPong for FlexTyped<R> {
    fn ping(&mut self, i: u64) {
        self.send(i);
        self.recv(i);
    }
    fn pong(&mut self, i: u64) {
        self.recv(i);
        self.send(i);
    }
}

/// flexshm-std's typed `SharedMemory` (named POSIX segments, what a Linux program
/// uses), one single-slot segment per direction: each side creates the segment it
/// writes and opens the other side's on first use.
struct FlexStd<R: Record + 'static> {
    w: flexshm_std::SharedMemory<R>,
    r: Option<flexshm_std::SharedMemory<R>>,
    theirs: String,
    rec: R,
    out: R,
    last: u32,
}

impl<R: SeqRecord> FlexStd<R> {
    fn new(tag: &str, side_a: bool) -> Res<Self> {
        let names = [
            format!("fxbench-{tag}-std-ab"),
            format!("fxbench-{tag}-std-ba"),
        ];
        let (mine, theirs) = if side_a { (0, 1) } else { (1, 0) };
        let w = flexshm_std::SharedMemory::<R>::create(&names[mine], &Default::default())?;
        Ok(FlexStd {
            w,
            r: None,
            theirs: names[theirs].clone(),
            rec: R::default(),
            out: R::default(),
            last: 0,
        })
    }
    fn reader(&mut self) -> &mut flexshm_std::SharedMemory<R> {
        if self.r.is_none() {
            let r = flexshm_std::SharedMemory::<R>::open(&self.theirs).expect("open peer segment");
            self.r = Some(r);
        }
        self.r.as_mut().unwrap()
    }
    fn send(&mut self, i: u64) {
        self.rec.set_seq(i);
        self.w.write(&self.rec).expect("flexshm-std write");
    }
    fn recv(&mut self, i: u64) {
        let mut last = self.last;
        let mut out = std::mem::take(&mut self.out);
        let r = self.reader();
        loop {
            while r.reader().head() == last {
                std::hint::spin_loop();
            }
            let info = r
                .try_read(&mut out, ReadOptions::default())
                .expect("flexshm-std read");
            last = info.commit;
            if out.seq() == i {
                break;
            }
        }
        self.out = out;
        self.last = last;
    }
}

impl<R: Record + 'static> Drop for FlexStd<R> {
    fn drop(&mut self) {
        let _ = flexshm_std::unlink(self.w.name());
    }
}

impl<R: SeqRecord> PingPong for FlexStd<R> {
    fn ping(&mut self, i: u64) {
        self.send(i);
        self.recv(i);
    }
    fn pong(&mut self, i: u64) {
        self.recv(i);
        self.send(i);
    }
}

/// flexshm with the image record (untyped API: the reader's snapshot holds the pixels).
struct FlexImage {
    _files: (ShmFile, ShmFile),
    w: Writer<'static, Vec<FieldDef>>,
    r: Reader<'static, Vec<FieldDef>>,
    img: Vec<u8>,
    buf: Vec<u8>,
    last: u32,
}

impl FlexImage {
    fn new(tag: &str, create: bool, side_a: bool) -> Res<Self> {
        let fields = image_fields();
        let size = segment_size(&fields, Mode::Single);
        let (files, region_w, region_r) = segment_pair(tag, "img", size, create, side_a)?;
        let w = if create {
            Writer::create(region_w, fields.clone(), Mode::Single)?
        } else {
            Writer::attach(region_w, fields.clone())?
        };
        if create {
            Writer::create(region_r, fields.clone(), Mode::Single)?;
        }
        let r = Reader::open(region_r, fields)?;
        let buf = vec![0; r.snapshot_len()];
        let last = r.head();
        Ok(FlexImage {
            _files: files,
            w,
            r,
            img: (0..IMG_BYTES).map(|i| (i % 251) as u8).collect(),
            buf,
            last,
        })
    }
    fn send(&mut self, i: u64) {
        self.img[..8].copy_from_slice(&i.to_le_bytes());
        let a = ArrayRef::new(Dtype::U8, &[IMG_H, IMG_W, IMG_C], &self.img).unwrap();
        self.w
            .write(&[(0, Value::Array(a))])
            .expect("flexshm write");
    }
    fn recv(&mut self, i: u64) {
        loop {
            while self.r.head() == self.last {
                std::hint::spin_loop();
            }
            let snap = self
                .r
                .try_read(&mut self.buf, ReadOptions::default())
                .expect("flexshm read");
            let commit = snap.commit();
            let px = snap.raw(0).expect("image");
            let seq = u64::from_le_bytes(px[..8].try_into().unwrap());
            self.last = commit;
            if seq == i {
                return;
            }
        }
    }
}

impl PingPong for FlexImage {
    fn ping(&mut self, i: u64) {
        self.send(i);
        self.recv(i);
    }
    fn pong(&mut self, i: u64) {
        self.recv(i);
        self.send(i);
    }
}

/// iceoryx2 publish-subscribe, one service per direction, slices of `len` bytes. The
/// sender copies its payload into a loaned sample and sends it; the receiver copies the
/// received payload out (what a flexshm read does).
#[cfg(feature = "iceoryx2")]
mod ice {
    use super::*;
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;

    pub struct Ice {
        _node: Node<ipc::Service>,
        publisher: Publisher<ipc::Service, [u8], ()>,
        subscriber: Subscriber<ipc::Service, [u8], ()>,
        src: Vec<u8>,
        dst: Vec<u8>,
    }

    impl Ice {
        pub fn new(tag: &str, len: usize, side_a: bool) -> Res<Ice> {
            iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
            let node = NodeBuilder::new().create::<ipc::Service>()?;
            let open = |dir: &str| -> Res<_> {
                let name: ServiceName = format!("flexshm-bench/{tag}/{len}/{dir}")
                    .as_str()
                    .try_into()?;
                Ok(node
                    .service_builder(&name)
                    .publish_subscribe::<[u8]>()
                    .history_size(0)
                    .subscriber_max_buffer_size(1)
                    .enable_safe_overflow(true)
                    .open_or_create()?)
            };
            let ab = open("ab")?;
            let ba = open("ba")?;
            let (out, inn) = if side_a { (&ab, &ba) } else { (&ba, &ab) };
            let publisher = out
                .publisher_builder()
                .initial_max_slice_len(len)
                .create()?;
            let subscriber = inn.subscriber_builder().create()?;
            Ok(Ice {
                _node: node,
                publisher,
                subscriber,
                src: (0..len).map(|i| i as u8).collect(),
                dst: vec![0; len],
            })
        }

        fn send(&mut self, i: u64) {
            let n = 8.min(self.src.len());
            self.src[..n].copy_from_slice(&i.to_le_bytes()[..n]);
            let s = self
                .publisher
                .loan_slice_uninit(self.src.len())
                .expect("iceoryx2 loan");
            s.write_from_slice(&self.src).send().expect("iceoryx2 send");
        }

        fn recv(&mut self, i: u64) {
            loop {
                if let Some(s) = self.subscriber.receive().expect("iceoryx2 receive") {
                    self.dst.copy_from_slice(s.payload());
                    let n = 8.min(self.dst.len());
                    let mut b = [0u8; 8];
                    b[..n].copy_from_slice(&self.dst[..n]);
                    if u64::from_le_bytes(b) == i || n < 8 {
                        return;
                    }
                }
                std::hint::spin_loop();
            }
        }
    }

    impl PingPong for Ice {
        fn ping(&mut self, i: u64) {
            self.send(i);
            self.recv(i);
        }
        fn pong(&mut self, i: u64) {
            self.recv(i);
            self.send(i);
        }
    }
}

/// Named ping-pong systems.
type Systems = Vec<(&'static str, Box<dyn PingPong>)>;

/// The systems of a latency run, in a fixed order both processes agree on, plus the
/// reason for every system that could not be set up.
fn latency_systems(
    payload: Payload,
    tag: &str,
    create: bool,
    side_a: bool,
) -> Res<(Systems, Vec<String>)> {
    let mut v: Systems = Vec::new();
    let mut skipped = Vec::new();
    match payload {
        Payload::Small => {
            v.push(("raw 64 B", Box::new(Raw::new(tag, 64, create)?)));
            v.push(("raw cache line", Box::new(Raw::new(tag, 0, create)?)));
            v.push((
                "flexshm Pose (8 × f64)",
                Box::new(FlexTyped::<Pose>::new(tag, "pose", create, side_a)?),
            ));
            v.push((
                "flexshm uint8[64]",
                Box::new(FlexTyped::<Blob64>::new(tag, "blob", create, side_a)?),
            ));
            v.push((
                "flexshm-std SharedMemory<Pose>",
                Box::new(FlexStd::<Pose>::new(tag, side_a)?),
            ));
        }
        Payload::Image => {
            v.push(("raw memcpy", Box::new(Raw::new(tag, IMG_BYTES, create)?)));
            v.push((
                "flexshm image",
                Box::new(FlexImage::new(tag, create, side_a)?),
            ));
        }
    }
    #[cfg(feature = "iceoryx2")]
    match ice::Ice::new(tag, payload.bytes(), side_a) {
        Ok(s) => v.push(("iceoryx2", Box::new(s))),
        Err(e) => skipped.push(format!("iceoryx2: could not be set up here: {e}")),
    }
    #[cfg(not(feature = "iceoryx2"))]
    skipped.push(
        "iceoryx2: not built; the iceoryx2 crate needs libclang at build time (Debian: \
         libclang-dev and clang), which this machine lacks"
            .to_string(),
    );
    Ok((v, skipped))
}

struct LatencyPlan {
    blocks: usize,
    iters: usize,
    warmup: usize,
}

impl LatencyPlan {
    fn from(args: &Args, payload: Payload) -> LatencyPlan {
        let (b, i) = match payload {
            Payload::Small => (100, 1000),
            Payload::Image => (40, 20),
        };
        let iters = args.get("iters", i);
        LatencyPlan {
            blocks: args.get("blocks", b),
            iters,
            warmup: (iters / 10).max(2),
        }
    }
}

fn latency_parent(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "lat");
    let two = cpus().2;
    let ctl = Ctl::create(&tag)?;
    let (mut systems, skipped) = latency_systems(payload, &tag, true, true)?;
    let mut pair = Pair::start("latency-child", args, &tag, ctl)?;
    pair.wait_ready()?;
    pin_parent();
    let plan = LatencyPlan::from(args, payload);
    let names: Vec<&str> = systems.iter().map(|s| s.0).collect();
    let mut res = Blocks::new(&names);
    let n = systems.len();
    let mut i = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let s = (b + k) % n;
            let sys = &mut systems[s].1;
            for _ in 0..plan.warmup {
                sys.ping(i);
                i += 1;
            }
            let mut v = Vec::with_capacity(plan.iters);
            let mut t = Instant::now();
            for _ in 0..plan.iters {
                sys.ping(i);
                i += 1;
                let now = Instant::now();
                v.push((now - t).as_nanos() as f64 / 2.0);
                t = now;
            }
            res.push(s, v);
        }
    }
    pair.finish()?;
    let base = 0;
    let (title, base_name) = match payload {
        Payload::Small => (
            "Rust, cross-process one-way latency, 64-byte record",
            "raw 64 B",
        ),
        Payload::Image => (
            "Rust, cross-process one-way latency, 640×480×3 uint8 image",
            "raw memcpy",
        ),
    };
    let ice = names.iter().position(|n| *n == "iceoryx2");
    let mut t = Table::new(
        title,
        &[
            "system",
            "p50",
            "p99",
            &format!("ratio to {base_name}"),
            "ratio to iceoryx2",
        ],
    );
    for (s, name) in names.iter().enumerate() {
        t.row(vec![
            name.to_string(),
            fmt_ns(res.pooled(s, 50.0)),
            fmt_ns(res.pooled(s, 99.0)),
            res.ratio(s, base).show(),
            ice.map(|k| res.ratio(s, k).show())
                .unwrap_or_else(|| "–".into()),
        ]);
    }
    t.note(format!(
        "{} blocks × {} round trips per system, interleaved; one-way = round trip / 2. \
         p50/p99 pool all blocks; ratios are the median (25th–75th percentile) of per-block \
         ratios of medians.{}",
        plan.blocks,
        plan.iters,
        if two {
            ""
        } else {
            " Only one CPU was available: both processes share it, so these are not \
             cross-core figures."
        }
    ));
    for s in skipped {
        t.note(format!("Not measured: {s}"));
    }
    t.print();
    Ok(())
}

fn latency_child(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "lat");
    pin_child(args);
    let ctl = Ctl::open(&tag)?;
    let r = latency_systems(payload, &tag, false, false);
    let (mut systems, _) = match r {
        Ok(s) => s,
        Err(e) => {
            ctl.word(C_FAILED).store(1, Ordering::Release);
            return Err(e);
        }
    };
    ctl.word(C_READY).store(1, Ordering::Release);
    let plan = LatencyPlan::from(args, payload);
    let n = systems.len();
    let mut i = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let sys = &mut systems[(b + k) % n].1;
            for _ in 0..plan.warmup + plan.iters {
                sys.pong(i);
                i += 1;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// FIFO throughput: a producer process and a consumer process.

/// One FIFO system. The producer never waits for flexshm (records the consumer could
/// not keep up with are lost and counted); the raw ring is lossless and makes the
/// producer wait when full.
trait Fifo {
    /// Produces one record.
    fn produce(&mut self, i: u64);
    /// Consumes every record available now; returns (received, lost).
    fn consume(&mut self) -> (u64, u64);
    /// Reads so far whose record did not follow the previous one by exactly the reported
    /// loss, for systems that check the order of what they receive.
    fn misordered(&self) -> Option<u64> {
        None
    }
}

/// A lossless single-producer single-consumer ring in raw shared memory (Lamport queue):
/// the copy-in, copy-out limit for moving records between the two cores.
struct RawRing {
    _file: ShmFile,
    base: *mut u8,
    len: usize,
    stride: usize,
    slots: u64,
    head_cache: u64,
    tail_cache: u64,
    pos: u64,
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl RawRing {
    fn new(tag: &str, len: usize, slots: u64, create: bool) -> Res<RawRing> {
        let stride = len.div_ceil(64) * 64;
        let name = format!("flexshm-bench-{tag}-ring");
        let size = 128 + stride * slots as usize;
        let file = if create {
            ShmFile::create(&name, size)?
        } else {
            ShmFile::open(&name)?
        };
        let base = file.ptr();
        Ok(RawRing {
            _file: file,
            base,
            len,
            stride,
            slots,
            head_cache: 0,
            tail_cache: 0,
            pos: 0,
            src: (0..len).map(|i| i as u8).collect(),
            dst: vec![0; len],
        })
    }
    fn head(&self) -> &AtomicU64 {
        // SAFETY: the first line of the page-aligned file.
        unsafe { &*(self.base as *const AtomicU64) }
    }
    fn tail(&self) -> &AtomicU64 {
        // SAFETY: the second line.
        unsafe { &*(self.base.add(64) as *const AtomicU64) }
    }
    fn slot(&self, k: u64) -> *mut u8 {
        // SAFETY: k % slots < slots, inside the file.
        unsafe { self.base.add(128 + (k % self.slots) as usize * self.stride) }
    }
}

impl Fifo for RawRing {
    fn produce(&mut self, i: u64) {
        let head = self.pos;
        while head - self.tail_cache >= self.slots {
            // Pairs with the Release store of tail in `consume`: the slot is free.
            self.tail_cache = self.tail().load(Ordering::Acquire);
        }
        self.src[..8].copy_from_slice(&i.to_le_bytes());
        // SAFETY: the consumer is done with this slot (tail passed it) and reads it
        // again only after our Release store of head below.
        unsafe { ptr::copy_nonoverlapping(self.src.as_ptr(), self.slot(head), self.len) };
        self.pos = head + 1;
        // Pairs with the Acquire load of head in `consume`.
        self.head().store(self.pos, Ordering::Release);
    }
    fn consume(&mut self) -> (u64, u64) {
        // Pairs with the Release store of head in `produce`.
        self.head_cache = self.head().load(Ordering::Acquire);
        let mut n = 0;
        while self.pos < self.head_cache {
            // SAFETY: published by the producer (head passed it); it writes the slot
            // again only after our Release store of tail.
            unsafe {
                ptr::copy_nonoverlapping(self.slot(self.pos), self.dst.as_mut_ptr(), self.len)
            };
            std::hint::black_box(&mut self.dst);
            self.pos += 1;
            n += 1;
            // Pairs with the Acquire load of tail in `produce`.
            self.tail().store(self.pos, Ordering::Release);
        }
        (n, 0)
    }
}

/// flexshm FIFO of SensorData, typed API.
struct FlexFifoSensor {
    _file: ShmFile,
    w: Option<TypedWriter<'static, SensorData>>,
    r: Option<TypedReader<'static, SensorData>>,
    rec: SensorData,
    out: SensorData,
    buf: Vec<u8>,
    /// Producer: this system's own record counter (the timestamp of the next record).
    /// Consumer: the timestamp of the last record read.
    seq: u64,
    /// Consumer: reads whose record did not follow the previous one by exactly the
    /// reported loss (a duplicate, a reordering or a miscounted loss).
    misordered: u64,
}

impl FlexFifoSensor {
    fn new(tag: &str, slots: u32, producer: bool) -> Res<Self> {
        let mode = Mode::Fifo { slots };
        let name = format!("flexshm-bench-{tag}-fifo-sensor");
        let (file, w, r) = if producer {
            let f = ShmFile::create(&name, segment_size(SensorData::FIELDS, mode))?;
            let w = TypedWriter::<SensorData>::create(f.region(), mode)?;
            (f, Some(w), None)
        } else {
            let f = ShmFile::open(&name)?;
            let r = TypedReader::<SensorData>::open(f.region())?;
            (f, None, Some(r))
        };
        Ok(FlexFifoSensor {
            _file: file,
            w,
            r,
            rec: sample_sensor(0),
            out: SensorData::default(),
            buf: vec![0; SensorData::SNAPSHOT_LEN],
            seq: 0,
            misordered: 0,
        })
    }
}

impl Fifo for FlexFifoSensor {
    fn produce(&mut self, _i: u64) {
        let w = self.w.as_mut().expect("producer side");
        self.seq += 1;
        self.rec.timestamp = self.seq as f64;
        w.write(&self.rec).expect("flexshm write");
        w.finalize();
    }
    fn consume(&mut self) -> (u64, u64) {
        let r = self.r.as_mut().expect("consumer side");
        let (mut n, mut lost) = (0, 0);
        loop {
            match r.try_read(&mut self.buf, ReadOptions::default(), &mut self.out) {
                Ok(info) => {
                    let ts = self.out.timestamp as u64;
                    if ts != self.seq + 1 + info.lost as u64 {
                        self.misordered += 1;
                        if std::env::var_os("XPROC_DEBUG").is_some() {
                            eprintln!(
                                "after record {} read {ts}, reported lost {}",
                                self.seq, info.lost
                            );
                        }
                    }
                    self.seq = ts;
                    n += 1;
                    lost += info.lost as u64;
                }
                Err(Error::NoRecord) => return (n, lost),
                Err(Error::Contended) => continue,
                Err(e) => panic!("flexshm read: {e:?}"),
            }
        }
    }
    fn misordered(&self) -> Option<u64> {
        Some(self.misordered)
    }
}

/// flexshm FIFO of images, untyped API.
struct FlexFifoImage {
    _file: ShmFile,
    w: Option<Writer<'static, Vec<FieldDef>>>,
    r: Option<Reader<'static, Vec<FieldDef>>>,
    img: Vec<u8>,
    buf: Vec<u8>,
}

impl FlexFifoImage {
    fn new(tag: &str, slots: u32, producer: bool) -> Res<Self> {
        let mode = Mode::Fifo { slots };
        let fields = image_fields();
        let name = format!("flexshm-bench-{tag}-fifo-image");
        let (file, w, r) = if producer {
            let f = ShmFile::create(&name, segment_size(&fields, mode))?;
            let w = Writer::create(f.region(), fields, mode)?;
            (f, Some(w), None)
        } else {
            let f = ShmFile::open(&name)?;
            let r = Reader::open(f.region(), fields)?;
            (f, None, Some(r))
        };
        let len = r.as_ref().map(|r| r.snapshot_len()).unwrap_or(0);
        Ok(FlexFifoImage {
            _file: file,
            w,
            r,
            img: (0..IMG_BYTES).map(|i| (i % 251) as u8).collect(),
            buf: vec![0; len],
        })
    }
}

impl Fifo for FlexFifoImage {
    fn produce(&mut self, i: u64) {
        let w = self.w.as_mut().expect("producer side");
        self.img[..8].copy_from_slice(&i.to_le_bytes());
        let a = ArrayRef::new(Dtype::U8, &[IMG_H, IMG_W, IMG_C], &self.img).unwrap();
        w.write(&[(0, Value::Array(a))]).expect("flexshm write");
        w.finalize();
    }
    fn consume(&mut self) -> (u64, u64) {
        let r = self.r.as_mut().expect("consumer side");
        let (mut n, mut lost) = (0, 0);
        loop {
            match r.try_read(&mut self.buf, ReadOptions::default()) {
                Ok(snap) => {
                    std::hint::black_box(snap.raw(0).map(|p| p[0]).unwrap_or(0));
                    n += 1;
                    lost += snap.lost() as u64;
                }
                Err(Error::NoRecord) => return (n, lost),
                Err(Error::Contended) => continue,
                Err(e) => panic!("flexshm read: {e:?}"),
            }
        }
    }
}

struct FifoPlan {
    blocks: usize,
    block: Duration,
    slots: u32,
    record: usize,
}

impl FifoPlan {
    fn from(args: &Args, payload: Payload) -> FifoPlan {
        let (slots, record) = match payload {
            Payload::Small => (1024, SENSOR_PAYLOAD),
            Payload::Image => (16, IMG_BYTES),
        };
        FifoPlan {
            blocks: args.get("blocks", 20),
            block: Duration::from_millis(args.get("block-ms", 100)),
            slots: args.get("slots", slots),
            record,
        }
    }
}

fn fifo_systems(
    payload: Payload,
    plan: &FifoPlan,
    tag: &str,
    producer: bool,
) -> Res<Vec<(&'static str, Box<dyn Fifo>)>> {
    let mut v: Vec<(&'static str, Box<dyn Fifo>)> = vec![(
        "raw SPSC ring (lossless)",
        Box::new(RawRing::new(tag, plan.record, plan.slots as u64, producer)?),
    )];
    match payload {
        Payload::Small => v.push((
            "flexshm FIFO, SensorData",
            Box::new(FlexFifoSensor::new(tag, plan.slots, producer)?),
        )),
        Payload::Image => v.push((
            "flexshm FIFO, image",
            Box::new(FlexFifoImage::new(tag, plan.slots, producer)?),
        )),
    }
    Ok(v)
}

fn fifo_parent(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "fifo");
    let two = cpus().2;
    let ctl = Ctl::create(&tag)?;
    let plan = FifoPlan::from(args, payload);
    let mut systems = fifo_systems(payload, &plan, &tag, true)?;
    let mut pair = Pair::start("fifo-child", args, &tag, ctl)?;
    pair.wait_ready()?;
    pin_parent();
    let n = systems.len();
    let names: Vec<&str> = systems.iter().map(|s| s.0).collect();
    let mut delivered = Blocks::new(&names);
    let mut produced_rate = Blocks::new(&names);
    let mut lost = vec![0u64; n];
    let mut produced_total = vec![0u64; n];
    let mut misordered = vec![0u64; n];
    let mut accounted = true;
    let checks: Vec<bool> = systems.iter().map(|s| s.1.misordered().is_some()).collect();
    let mut i = 1u64;
    let mut block_id = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let s = (b + k) % n;
            let ctl = &pair.ctl;
            // Start the block: the consumer is polling.
            ctl.word(C_BLOCK_START).store(block_id, Ordering::Release);
            let t0 = Instant::now();
            let mut produced = 0u64;
            let sys = &mut systems[s].1;
            loop {
                for _ in 0..64 {
                    sys.produce(i);
                    i += 1;
                }
                produced += 64;
                if t0.elapsed() >= plan.block {
                    break;
                }
            }
            let tp = t0.elapsed();
            ctl.word(C_PRODUCED).store(produced, Ordering::Relaxed);
            // Pairs with the consumer's Acquire load: it sees `produced`.
            ctl.word(C_BLOCK_DONE).store(block_id, Ordering::Release);
            if !spin_until(SETUP_LIMIT, || {
                ctl.word(C_RESULT).load(Ordering::Acquire) == block_id
            }) {
                return Err("consumer did not finish a block".into());
            }
            let tc = t0.elapsed();
            let got = ctl.word(C_RECEIVED).load(Ordering::Relaxed);
            let l = ctl.word(C_LOST).load(Ordering::Relaxed);
            misordered[s] += ctl.word(C_MISORDERED).load(Ordering::Relaxed);
            if got + l != produced {
                accounted = false;
                if std::env::var_os("XPROC_DEBUG").is_some() {
                    eprintln!(
                        "block {b} {}: produced {produced} received {got} lost {l}",
                        names[s]
                    );
                }
            }
            lost[s] += l;
            produced_total[s] += produced;
            delivered.push(s, vec![got as f64 / tc.as_secs_f64()]);
            produced_rate.push(s, vec![produced as f64 / tp.as_secs_f64()]);
            block_id += 1;
        }
    }
    pair.finish()?;
    let what = match payload {
        Payload::Small => "SensorData records (152 B of values)",
        Payload::Image => "640×480×3 images",
    };
    let mut t = Table::new(
        &format!("Rust, FIFO throughput, {what}"),
        &[
            "system",
            "delivered p50",
            "ratio to raw ring",
            "produced p50",
            "lost",
            "out of sequence",
        ],
    );
    for s in 0..n {
        t.row(vec![
            names[s].to_string(),
            fmt_rate(delivered.pooled(s, 50.0)),
            delivered.ratio(s, 0).show(),
            fmt_rate(produced_rate.pooled(s, 50.0)),
            format!(
                "{} of {} ({:.1} %)",
                lost[s],
                produced_total[s],
                100.0 * lost[s] as f64 / produced_total[s].max(1) as f64
            ),
            if checks[s] {
                misordered[s].to_string()
            } else {
                "–".to_string()
            },
        ]);
    }
    t.note(format!(
        "{} blocks of {} ms per system, interleaved; producer process on one core, consumer \
         on the other, busy-polling. FIFO of {} slots. Delivered = records the consumer \
         read per second (p50 over blocks); produced = records the producer committed per \
         second. flexshm's producer never waits, so a slower consumer loses records (and is \
         told how many); the raw ring makes the producer wait instead. Out of sequence = \
         reads whose record (numbered by the producer) did not follow the previous one by \
         exactly the reported loss. Every block: received + lost = produced: {}.{}",
        plan.blocks,
        plan.block.as_millis(),
        plan.slots,
        if accounted { "yes" } else { "NO" },
        if two {
            ""
        } else {
            " Only one CPU was available."
        }
    ));
    t.print();
    Ok(())
}

fn fifo_child(args: &Args) -> Res {
    let payload = Payload::parse(args)?;
    let tag = tag_for(args, "fifo");
    pin_child(args);
    let ctl = Ctl::open(&tag)?;
    let plan = FifoPlan::from(args, payload);
    let mut systems = match fifo_systems(payload, &plan, &tag, false) {
        Ok(s) => s,
        Err(e) => {
            ctl.word(C_FAILED).store(1, Ordering::Release);
            return Err(e);
        }
    };
    ctl.word(C_READY).store(1, Ordering::Release);
    let n = systems.len();
    let mut block_id = 1u64;
    for b in 0..plan.blocks {
        for k in 0..n {
            let sys = &mut systems[(b + k) % n].1;
            if !spin_until(SETUP_LIMIT, || {
                ctl.word(C_BLOCK_START).load(Ordering::Acquire) == block_id
            }) {
                return Err("producer did not start a block".into());
            }
            let (mut got, mut lost) = (0, 0);
            let mis0 = sys.misordered().unwrap_or(0);
            let mut done_at: Option<Instant> = None;
            loop {
                // Read `done` before draining: after it, one more drain gets the rest.
                let done = ctl.word(C_BLOCK_DONE).load(Ordering::Acquire) == block_id;
                let (g, l) = sys.consume();
                got += g;
                lost += l;
                if done {
                    let produced = ctl.word(C_PRODUCED).load(Ordering::Relaxed);
                    let since = *done_at.get_or_insert_with(Instant::now);
                    // A count that never adds up is reported by the parent, not hung on.
                    if got + lost >= produced || since.elapsed() > Duration::from_secs(2) {
                        break;
                    }
                }
            }
            ctl.word(C_RECEIVED).store(got, Ordering::Relaxed);
            ctl.word(C_LOST).store(lost, Ordering::Relaxed);
            let mis = sys.misordered().unwrap_or(0) - mis0;
            ctl.word(C_MISORDERED).store(mis, Ordering::Relaxed);
            // Pairs with the producer's Acquire load of RESULT.
            ctl.word(C_RESULT).store(block_id, Ordering::Release);
            block_id += 1;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Blocking wait: wake-up latency of a sleeping reader, and its CPU time while idle.

mod wake {
    use super::*;
    use flexshm_std::{CreateOptions, SharedMemory};

    /// Where the child leaves its measurements: one u64 per wake-up.
    const MAX_SAMPLES: usize = 1 << 16;

    fn results(tag: &str, create: bool) -> Res<ShmFile> {
        let name = format!("flexshm-bench-{tag}-results");
        Ok(if create {
            ShmFile::create(&name, 8 * (MAX_SAMPLES + 16))?
        } else {
            ShmFile::open(&name)?
        })
    }

    fn slot(f: &ShmFile, i: usize) -> &AtomicU64 {
        assert!(i < MAX_SAMPLES + 16);
        // SAFETY: in bounds (checked), 8-aligned in a page-aligned mapping; accessed only
        // through this atomic by both processes.
        unsafe { &*(f.ptr().add(8 * i) as *const AtomicU64) }
    }

    /// The raw baseline: a counter and a timestamp in shared memory, and a shared futex.
    struct RawFutex {
        _file: ShmFile,
        base: *mut u8,
    }

    impl RawFutex {
        fn new(tag: &str, create: bool) -> Res<RawFutex> {
            let name = format!("flexshm-bench-{tag}-futex");
            let file = if create {
                ShmFile::create(&name, 4096)?
            } else {
                ShmFile::open(&name)?
            };
            let base = file.ptr();
            Ok(RawFutex { _file: file, base })
        }
        fn word(&self) -> &std::sync::atomic::AtomicU32 {
            // SAFETY: first word of the page-aligned mapping, atomics only.
            unsafe { &*(self.base as *const std::sync::atomic::AtomicU32) }
        }
        fn stamp(&self) -> &AtomicU64 {
            // SAFETY: second line of the mapping, atomics only.
            unsafe { &*(self.base.add(64) as *const AtomicU64) }
        }
        fn post(&self) {
            self.stamp()
                .store(flexshm_bench::mono_ns(), Ordering::Relaxed);
            // Pairs with the Acquire load in `wait`.
            self.word().fetch_add(1, Ordering::Release);
            // SAFETY: FUTEX_WAKE on a valid, mapped, aligned u32.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.word().as_ptr(),
                    libc::FUTEX_WAKE,
                    i32::MAX,
                    0,
                    0,
                    0,
                );
            }
        }
        /// Sleeps until the counter moves past `last`; returns (new value, stamp).
        fn wait(&self, last: u32) -> (u32, u64) {
            loop {
                // Pairs with the Release fetch_add in `post`.
                let v = self.word().load(Ordering::Acquire);
                if v != last {
                    return (v, self.stamp().load(Ordering::Relaxed));
                }
                // SAFETY: FUTEX_WAIT on a valid, mapped, aligned u32; returns at once if
                // the word is no longer `last`.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        self.word().as_ptr(),
                        libc::FUTEX_WAIT,
                        last,
                        ptr::null::<libc::timespec>(),
                        0,
                        0,
                    );
                }
            }
        }
    }

    struct Plan {
        blocks: usize,
        iters: usize,
        gap: Duration,
        idle_runs: usize,
    }

    impl Plan {
        fn from(args: &Args) -> Plan {
            Plan {
                blocks: args.get("blocks", 10),
                iters: args.get("iters", 50),
                gap: Duration::from_micros(args.get("gap-us", 2000)),
                idle_runs: args.get("idle-runs", 3),
            }
        }
    }

    fn seg_name(tag: &str) -> String {
        format!("flexshm-bench-{tag}-wake")
    }

    fn idle_name(tag: &str) -> String {
        format!("flexshm-bench-{tag}-idle")
    }

    pub fn parent(args: &Args) -> Res {
        let tag = tag_for(args, "wake");
        let two = cpus().2;
        let plan = Plan::from(args);
        let ctl = Ctl::create(&tag)?;
        let res = results(&tag, true)?;
        let raw = RawFutex::new(&tag, true)?;
        let mut shm =
            SharedMemory::<SensorData>::create(&seg_name(&tag), &CreateOptions::fifo(16))?;
        let idle = SharedMemory::<SensorData>::create(&idle_name(&tag), &CreateOptions::fifo(16))?;
        let mut pair = Pair::start("wake-child", args, &tag, ctl)?;
        pair.wait_ready()?;
        pin_parent();
        let mut rec = sample_sensor(0);
        let mut acks = 0u64;
        // Block b, system s (0 = raw futex, 1 = flexshm), wake-up k: the child writes
        // its latency to slot ((b * 2 + s) * iters + k).
        for b in 0..plan.blocks {
            for k in 0..2 {
                let s = (b + k) % 2;
                for _ in 0..plan.iters {
                    // Long enough for the reader to finish its spin and sleep.
                    std::thread::sleep(plan.gap);
                    if s == 0 {
                        raw.post();
                    } else {
                        rec.timestamp = flexshm_bench::mono_ns() as f64;
                        shm.write(&rec)?;
                        shm.finalize()?;
                    }
                    // The child acknowledges every wake-up, so none coalesce.
                    acks += 1;
                    let ack = pair.ctl.word(C_RESULT);
                    if !spin_until(SETUP_LIMIT, || ack.load(Ordering::Acquire) == acks) {
                        return Err("the reader did not wake up".into());
                    }
                }
            }
        }
        // The child now measures idle waits on the segment nobody writes.
        pair.finish()?;
        drop(idle);
        let _ = flexshm_std::unlink(&seg_name(&tag));
        let _ = flexshm_std::unlink(&idle_name(&tag));
        let mut blocks = Blocks::new(&["raw futex wake", "flexshm FIFO read()"]);
        for b in 0..plan.blocks {
            for s in 0..2 {
                let v: Vec<f64> = (0..plan.iters)
                    .map(|k| {
                        slot(&res, (b * 2 + s) * plan.iters + k).load(Ordering::Relaxed) as f64
                    })
                    .collect();
                blocks.push(s, v);
            }
        }
        let mut t = Table::new(
            "Blocking wait: wake-up latency, commit to a sleeping reader's return",
            &["system", "p50", "p99", "ratio to raw futex"],
        );
        for s in 0..2 {
            t.row(vec![
                blocks.name(s).to_string(),
                fmt_ns(blocks.pooled(s, 50.0)),
                fmt_ns(blocks.pooled(s, 99.0)),
                blocks.ratio(s, 0).show(),
            ]);
        }
        t.note(format!(
            "{} blocks × {} wake-ups per system, interleaved; the writer waits {} µs before \
             each commit, so the reader has finished its adaptive spin and sleeps in the \
             kernel. Latency = CLOCK_MONOTONIC when read() returns − the timestamp the \
             writer stored just before committing. The baseline stores a counter and \
             calls FUTEX_WAKE; its reader sleeps in FUTEX_WAIT.{}",
            plan.blocks,
            plan.iters,
            plan.gap.as_micros(),
            if two {
                ""
            } else {
                " Only one CPU was available."
            }
        ));
        t.print();
        let base = MAX_SAMPLES;
        let mut t = Table::new(
            "Blocking wait: reader CPU time while idle",
            &[
                "system",
                "wall time",
                "CPU time (user + sys)",
                "CPU share of one core",
            ],
        );
        for (s, name) in [
            (0usize, "raw FUTEX_WAIT (1 s timeout)"),
            (1, "flexshm FIFO read(timeout = 1 s), nothing written"),
        ] {
            let mut cpu = Vec::new();
            let mut wall = Vec::new();
            for r in 0..plan.idle_runs {
                cpu.push(
                    slot(&res, base + (s * plan.idle_runs + r) * 2).load(Ordering::Relaxed) as f64,
                );
                wall.push(
                    slot(&res, base + (s * plan.idle_runs + r) * 2 + 1).load(Ordering::Relaxed)
                        as f64,
                );
            }
            let c = flexshm_bench::stats::median(&mut cpu);
            let w = flexshm_bench::stats::median(&mut wall);
            t.row(vec![
                name.to_string(),
                fmt_ns(w),
                fmt_ns(c),
                format!("{:.3} %", 100.0 * c / w),
            ]);
        }
        t.note(format!(
            "Median of {} runs; CPU time from getrusage(RUSAGE_THREAD) around the call \
             (its resolution is the kernel's accounting tick).",
            plan.idle_runs
        ));
        t.print();
        Ok(())
    }

    pub fn child(args: &Args) -> Res {
        let tag = tag_for(args, "wake");
        pin_child(args);
        let ctl = Ctl::open(&tag)?;
        let plan = Plan::from(args);
        let setup = || -> Res<_> {
            Ok((
                results(&tag, false)?,
                RawFutex::new(&tag, false)?,
                SharedMemory::<SensorData>::open(&seg_name(&tag))?,
                SharedMemory::<SensorData>::open(&idle_name(&tag))?,
            ))
        };
        let (res, raw, mut shm, mut idle) = match setup() {
            Ok(s) => s,
            Err(e) => {
                ctl.word(C_FAILED).store(1, Ordering::Release);
                return Err(e);
            }
        };
        let mut last = raw.word().load(Ordering::Acquire);
        ctl.word(C_READY).store(1, Ordering::Release);
        let mut out = SensorData::default();
        let mut acks = 0u64;
        for b in 0..plan.blocks {
            for k in 0..2 {
                let s = (b + k) % 2;
                for i in 0..plan.iters {
                    let lat = if s == 0 {
                        let (v, stamp) = raw.wait(last);
                        last = v;
                        flexshm_bench::mono_ns().saturating_sub(stamp)
                    } else {
                        shm.read(&mut out, ReadOptions::default(), Duration::from_secs(10))?;
                        flexshm_bench::mono_ns().saturating_sub(out.timestamp as u64)
                    };
                    slot(&res, (b * 2 + s) * plan.iters + i).store(lat, Ordering::Relaxed);
                    acks += 1;
                    // Pairs with the parent's Acquire load before its next commit.
                    ctl.word(C_RESULT).store(acks, Ordering::Release);
                }
            }
        }
        let base = MAX_SAMPLES;
        for s in 0..2 {
            for r in 0..plan.idle_runs {
                let c0 = flexshm_bench::thread_cpu_time();
                let t0 = Instant::now();
                if s == 0 {
                    let ts = libc::timespec {
                        tv_sec: 1,
                        tv_nsec: 0,
                    };
                    let v = raw.word().load(Ordering::Acquire);
                    // SAFETY: FUTEX_WAIT on a valid, mapped, aligned u32 with a timeout.
                    unsafe {
                        libc::syscall(
                            libc::SYS_futex,
                            raw.word().as_ptr(),
                            libc::FUTEX_WAIT,
                            v,
                            &ts as *const libc::timespec,
                            0,
                            0,
                        );
                    }
                } else {
                    let r = idle.read(&mut out, ReadOptions::default(), Duration::from_secs(1));
                    if r.is_ok() {
                        return Err("a record appeared on the idle segment".into());
                    }
                }
                let wall = t0.elapsed();
                let cpu = flexshm_bench::thread_cpu_time() - c0;
                slot(&res, base + (s * plan.idle_runs + r) * 2)
                    .store(cpu.as_nanos() as u64, Ordering::Relaxed);
                slot(&res, base + (s * plan.idle_runs + r) * 2 + 1)
                    .store(wall.as_nanos() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
