//! Shared pieces of the flexshm benchmarks: the records, shared-memory files, CPU
//! pinning, statistics and the markdown tables every benchmark prints.
//!
//! The benchmarks themselves are `benches/inprocess.rs` (criterion) and the programs in
//! `src/bin/`; `make bench` runs them all (see BENCHMARKS.md).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flexshm_core::record;

pub mod stats;
pub mod table;

record! {
    /// The seed README's record: three floats and a 32-character status string.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct SensorData {
        pub temperature: f64,
        pub pressure: f64,
        pub timestamp: f64,
        pub status_msg: str[32],
    }
}

record! {
    /// A 64-byte record of eight floats (a pose with a timestamp and a counter).
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Pose {
        pub x: f64,
        pub y: f64,
        pub z: f64,
        pub qx: f64,
        pub qy: f64,
        pub qz: f64,
        pub qw: f64,
        pub seq: f64,
    }
}

record! {
    /// A 64-byte record as one `uint8[64]` field.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Blob64 {
        pub data: [u8; 64],
    }
}

impl Default for Blob64 {
    fn default() -> Self {
        Blob64 { data: [0; 64] }
    }
}

/// Image height, width and channels: a 640×480 RGB frame.
pub const IMG_H: usize = 480;
/// Image width.
pub const IMG_W: usize = 640;
/// Image channels.
pub const IMG_C: usize = 3;
/// Bytes of one image.
pub const IMG_BYTES: usize = IMG_H * IMG_W * IMG_C;

/// Schema of the image record: one `uint8[480,640,3]` field.
pub const IMAGE_FIELDS: &[flexshm_core::FieldDef] = &[flexshm_core::FieldDef::new(
    "image",
    flexshm_core::Kind::array(
        flexshm_core::Dtype::U8,
        &[IMG_H as u32, IMG_W as u32, IMG_C as u32],
    ),
)];

/// A SensorData value with every field set, as the benchmarks write it.
pub fn sample_sensor(i: u64) -> SensorData {
    let mut s = SensorData {
        temperature: 23.5 + (i % 7) as f64,
        pressure: 1013.25,
        timestamp: i as f64,
        ..Default::default()
    };
    s.status_msg.push_str("OK, all sensors nominal").unwrap();
    s
}

/// Bytes of SensorData's values alone (3 × f64 + 128 bytes of string room): what a plain
/// copy of the record moves.
pub const SENSOR_PAYLOAD: usize = 3 * 8 + 128;

/// A file in /dev/shm, mapped read-write (the creator and writers) or read-only (readers:
/// the kind of mapping flexshm-std's readers make).
pub struct ShmFile {
    map: Mapping,
    path: PathBuf,
    owner: bool,
}

enum Mapping {
    ReadWrite(memmap2::MmapMut),
    ReadOnly(memmap2::Mmap),
}

impl ShmFile {
    /// Creates (or truncates) `/dev/shm/<name>` with `len` zero bytes and maps it
    /// read-write. The creator removes the file when dropped.
    pub fn create(name: &str, len: usize) -> std::io::Result<ShmFile> {
        let path = PathBuf::from("/dev/shm").join(name);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        f.set_len(len as u64)?;
        // SAFETY: the file is ours for the run; other processes map it only to access it
        // with atomics or under the benchmark's own hand-over protocol.
        let map = unsafe { memmap2::MmapMut::map_mut(&f)? };
        Ok(ShmFile {
            map: Mapping::ReadWrite(map),
            path,
            owner: true,
        })
    }

    /// Maps an existing `/dev/shm/<name>` created by the other process, read-write.
    pub fn open(name: &str) -> std::io::Result<ShmFile> {
        let path = PathBuf::from("/dev/shm").join(name);
        let f = OpenOptions::new().read(true).write(true).open(&path)?;
        // SAFETY: as in `create`.
        let map = unsafe { memmap2::MmapMut::map_mut(&f)? };
        Ok(ShmFile {
            map: Mapping::ReadWrite(map),
            path,
            owner: false,
        })
    }

    /// Maps an existing `/dev/shm/<name>` read-only (`PROT_READ`), as a reader that never
    /// stores into it.
    pub fn open_read_only(name: &str) -> std::io::Result<ShmFile> {
        let path = PathBuf::from("/dev/shm").join(name);
        let f = OpenOptions::new().read(true).open(&path)?;
        // SAFETY: as in `create`; nothing is ever stored through this mapping.
        let map = unsafe { memmap2::Mmap::map(&f)? };
        Ok(ShmFile {
            map: Mapping::ReadOnly(map),
            path,
            owner: false,
        })
    }

    /// True if the mapping is read-write.
    pub fn is_writable(&self) -> bool {
        matches!(self.map, Mapping::ReadWrite(_))
    }

    /// Start of the mapping. Through a read-only mapping only loads are allowed.
    pub fn ptr(&self) -> *mut u8 {
        match &self.map {
            Mapping::ReadWrite(m) => m.as_ptr() as *mut u8,
            Mapping::ReadOnly(m) => m.as_ptr() as *mut u8,
        }
    }

    /// Length of the mapping.
    pub fn len(&self) -> usize {
        match &self.map {
            Mapping::ReadWrite(m) => m.len(),
            Mapping::ReadOnly(m) => m.len(),
        }
    }

    /// True if the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A flexshm region over the whole mapping: read-only (writers refuse it) for a
    /// read-only mapping.
    pub fn region(&self) -> flexshm_core::Region<'static> {
        // SAFETY:
        // - the mapping is page-aligned and valid for its length; benchmark programs keep
        //   the ShmFile alive for as long as they use the region;
        // - every process touches these bytes only through flexshm, which uses 32-bit
        //   atomics, and a read-only region is only loaded from.
        unsafe {
            if self.is_writable() {
                flexshm_core::Region::from_raw_parts(self.ptr(), self.len())
            } else {
                flexshm_core::Region::from_raw_parts_read_only(self.ptr(), self.len())
            }
        }
        .expect("page-aligned mapping")
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Pins the calling thread to `cpu`. Returns false (and the benchmark says so) when the
/// CPU is not available.
pub fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data, zero is a valid empty set; CPU_SET writes inside
    // it (cpu < CPU_SETSIZE is checked); sched_setaffinity reads `size_of` bytes of it.
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return false;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as in `pin_to_cpu`; sched_getaffinity fills the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// CPU time (user + system) this thread has used so far.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes on one machine.
pub fn mono_ns() -> u64 {
    // SAFETY: timespec is plain data; clock_gettime fills it.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// Spins until `cond` holds or `limit` passes; false on time-out.
pub fn spin_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    let mut k = 0u32;
    while !cond() {
        k = k.wrapping_add(1);
        if k.is_multiple_of(4096) && t0.elapsed() > limit {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Command-line flags as `--key value` pairs (the programs take only a few).
pub struct Args(Vec<String>);

impl Args {
    /// The process's arguments after the program name.
    pub fn from_env() -> Args {
        Args(std::env::args().skip(1).collect())
    }

    /// The first positional argument.
    pub fn command(&self) -> Option<&str> {
        self.0.first().map(|s| s.as_str())
    }

    /// The value after `--key`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        let flag = format!("--{key}");
        self.0
            .iter()
            .position(|a| *a == flag)
            .and_then(|i| self.0.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// True if `--key` is present.
    pub fn flag(&self, key: &str) -> bool {
        let flag = format!("--{key}");
        self.0.contains(&flag)
    }

    /// All arguments, to pass on to a child process.
    pub fn all(&self) -> &[String] {
        &self.0
    }
}

/// A zeroed, 64-byte aligned heap region of `len` bytes that lives for the rest of the
/// program (benchmarks create a handful).
pub fn leaked_region(len: usize) -> flexshm_core::Region<'static> {
    let layout = std::alloc::Layout::from_size_align(len.max(64), 64).expect("layout");
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!ptr.is_null(), "out of memory");
    // SAFETY: `ptr` is valid for `len` bytes forever (never freed) and only flexshm
    // touches it, through 32-bit atomics.
    unsafe { flexshm_core::Region::from_raw_parts(ptr, len) }.expect("aligned")
}

/// Bytes a segment of `fields` with `slots` slots needs.
pub fn segment_size(fields: &[flexshm_core::FieldDef], mode: flexshm_core::Mode) -> usize {
    flexshm_core::Layout::new(fields)
        .and_then(|l| l.segment_size(mode.slots()))
        .expect("segment size")
}

/// The futex word a flexshm-std writer changes at every wake-up it makes (`wake_gen`,
/// a u32 at byte 72 of the segment: see flexshm-std/src/wake.rs), read through a mapping
/// of the segment's file. Each FUTEX_WAKE call of the writer follows one increment, so
/// the difference of two readings counts its wake-up calls.
pub struct WakeCounter<'f> {
    word: &'f std::sync::atomic::AtomicU32,
}

/// Byte offset of flexshm-std's `wake_gen` word in a segment.
pub const STD_WAKE_GEN: usize = 72;

impl<'f> WakeCounter<'f> {
    /// The counter of the segment mapped by `file`.
    pub fn new(file: &'f ShmFile) -> WakeCounter<'f> {
        assert!(file.len() >= STD_WAKE_GEN + 4, "not a flexshm segment");
        // SAFETY: in bounds (checked above) and 4-aligned in a page-aligned mapping that
        // lives as long as `'f`; the writer stores the word atomically and this only loads.
        let word =
            unsafe { &*(file.ptr().add(STD_WAKE_GEN) as *const std::sync::atomic::AtomicU32) };
        WakeCounter { word }
    }

    /// The current value (little-endian in the segment).
    pub fn get(&self) -> u32 {
        u32::from_le(self.word.load(std::sync::atomic::Ordering::Relaxed))
    }
}
