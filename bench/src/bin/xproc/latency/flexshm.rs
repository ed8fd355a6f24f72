//! flexshm in the ping-pong: typed records through flexshm-core on raw mappings, the same
//! records through flexshm-std's named segments, and the image through a run-time
//! schema. One single-slot segment per direction; the receiver busy-polls `head`, then
//! takes a snapshot and decodes it.

use flexshm_bench::{
    segment_size, Blob64, Pose, ShmFile, IMAGE_FIELDS, IMG_BYTES, IMG_C, IMG_H, IMG_W,
};
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, FieldDef, Mode, ReadOptions, Reader, Record, Region, Value, Writer,
};

use super::PingPong;
use crate::Res;

/// A typed record with a sequence number in it.
pub trait SeqRecord: Record + Default + 'static {
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

fn debug() -> bool {
    std::env::var_os("XPROC_DEBUG").is_some()
}

/// The two one-way segments of a flexshm ping-pong, `{tag}-{kind}-ab` (side A writes)
/// and `-ba` (side B writes): the files of [`raw::file_pair`](super::raw::file_pair)
/// (the caller keeps them for the run), this side's outgoing region, mapped read-write,
/// and the other side's, mapped read-only as a flexshm-std reader maps it. The parent
/// (`create`) also initialises the other side's segment with `init_theirs`; the child
/// attaches to its own.
fn segment_pair(
    tag: &str,
    kind: &str,
    size: usize,
    create: bool,
    side_a: bool,
    init_theirs: impl FnOnce(Region<'static>) -> Res,
) -> Res<(Vec<ShmFile>, Region<'static>, Region<'static>)> {
    let name = |dir: &str| format!("flexshm-bench-{tag}-{kind}-{dir}");
    let (files, _, _) = super::raw::file_pair(name, size, create, side_a)?;
    // `file_pair`'s files: the other side's, read-write (parent only), then this side's
    // outgoing one and the other side's read-only mapping.
    let n = files.len();
    if create {
        init_theirs(files[0].region())?;
    }
    let (w, r) = (files[n - 2].region(), files[n - 1].region());
    Ok((files, w, r))
}

/// flexshm-core's typed `Writer<R>` / `Reader<R>` on `/dev/shm` files mapped by the
/// benchmark. The parent initialises both segments; the child attaches as the writer of
/// its own.
pub struct CoreTyped<R: SeqRecord> {
    _files: Vec<ShmFile>,
    w: Writer<'static, R>,
    r: Reader<'static, R>,
    rec: R,
    out: R,
    buf: Vec<u8>,
    last: u32,
}

impl<R: SeqRecord> CoreTyped<R> {
    pub fn new(tag: &str, kind: &str, create: bool, side_a: bool) -> Res<Self> {
        let size = segment_size(R::FIELDS, Mode::Single);
        let (files, region_w, region_r) = segment_pair(tag, kind, size, create, side_a, |r| {
            Writer::<R>::create(r, Mode::Single)?;
            Ok(())
        })?;
        let w = if create {
            Writer::<R>::create(region_w, Mode::Single)?
        } else {
            Writer::<R>::attach(region_w)?
        };
        let r = Reader::<R>::open(region_r)?;
        let last = r.head();
        Ok(CoreTyped {
            _files: files,
            w,
            r,
            rec: R::default(),
            out: R::default(),
            buf: vec![0; R::SNAPSHOT_LEN],
            last,
        })
    }
}

impl<R: SeqRecord> PingPong for CoreTyped<R> {
    fn send(&mut self, i: u64) {
        self.rec.set_seq(i);
        self.w.write(&self.rec).expect("flexshm write");
    }

    fn recv(&mut self, i: u64) {
        typed_recv(&mut self.r, &mut self.buf, &mut self.out, &mut self.last, i);
    }
}

/// The receiving side of a flexshm-core typed ping-pong: busy-polls `head()` past
/// `last`, then reads and decodes into `out`, until the record carries message `i`.
pub fn typed_recv<R: SeqRecord>(
    r: &mut Reader<'static, R>,
    buf: &mut [u8],
    out: &mut R,
    last: &mut u32,
    i: u64,
) {
    loop {
        while r.head() == *last {
            std::hint::spin_loop();
        }
        let info = r
            .try_read(buf, ReadOptions::default())
            .and_then(|snap| snap.decode(out))
            .expect("flexshm read");
        *last = info.commit;
        if out.seq() == i {
            return;
        }
        if debug() {
            eprintln!("want {i} got {} commit {}", out.seq(), info.commit);
        }
    }
}

/// flexshm-std's `Writer<R>` / `Reader<R>` (named POSIX segments, what a Linux program
/// uses): each side creates the segment it writes and opens the other side's on first
/// use (the child's does not exist yet when the parent sets up).
pub struct StdTyped<R: SeqRecord> {
    w: flexshm_std::Writer<R>,
    r: Option<flexshm_std::Reader<R>>,
    theirs: String,
    rec: R,
    out: R,
    last: u32,
}

impl<R: SeqRecord> StdTyped<R> {
    pub fn new(tag: &str, kind: &str, side_a: bool) -> Res<Self> {
        let names = [
            format!("flexshm-bench-{tag}-{kind}-ab"),
            format!("flexshm-bench-{tag}-{kind}-ba"),
        ];
        let (mine, theirs) = if side_a { (0, 1) } else { (1, 0) };
        let w = flexshm_std::Writer::<R>::create(&names[mine], &Default::default())?;
        Ok(StdTyped {
            w,
            r: None,
            theirs: names[theirs].clone(),
            rec: R::default(),
            out: R::default(),
            last: 0,
        })
    }
}

impl<R: SeqRecord> PingPong for StdTyped<R> {
    fn send(&mut self, i: u64) {
        self.rec.set_seq(i);
        self.w.write(&self.rec).expect("flexshm-std write");
    }

    fn recv(&mut self, i: u64) {
        if self.r.is_none() {
            // The other side may have sent already: `last` stays 0 (no commit), so a
            // record committed before this open is read.
            let r = flexshm_std::Reader::<R>::open(&self.theirs).expect("open peer segment");
            self.r = Some(r);
        }
        let r = self.r.as_mut().expect("opened above");
        loop {
            while r.head() == self.last {
                std::hint::spin_loop();
            }
            let info = r
                .try_read(ReadOptions::default())
                .expect("flexshm-std read")
                .decode(&mut self.out)
                .expect("flexshm-std decode");
            self.last = info.commit;
            if self.out.seq() == i {
                return;
            }
            if debug() {
                eprintln!("want {i} got {} commit {}", self.out.seq(), info.commit);
            }
        }
    }
}

impl<R: SeqRecord> Drop for StdTyped<R> {
    fn drop(&mut self) {
        let _ = flexshm_std::unlink(self.w.name());
    }
}

/// flexshm with the image record, a run-time schema (`Dynamic`): the reader's snapshot
/// holds the pixels.
pub struct CoreImage {
    _files: Vec<ShmFile>,
    w: Writer<'static, Dynamic<&'static [FieldDef]>>,
    r: Reader<'static, Dynamic<&'static [FieldDef]>>,
    img: Vec<u8>,
    buf: Vec<u8>,
    last: u32,
}

impl CoreImage {
    pub fn new(tag: &str, create: bool, side_a: bool) -> Res<Self> {
        let size = segment_size(IMAGE_FIELDS, Mode::Single);
        type Image = Dynamic<&'static [FieldDef]>;
        let (files, region_w, region_r) = segment_pair(tag, "img", size, create, side_a, |r| {
            Writer::<Image>::create(r, IMAGE_FIELDS, Mode::Single)?;
            Ok(())
        })?;
        let w = if create {
            Writer::<Image>::create(region_w, IMAGE_FIELDS, Mode::Single)?
        } else {
            Writer::<Image>::attach(region_w, IMAGE_FIELDS)?
        };
        let r = Reader::<Image>::open_with(region_r, IMAGE_FIELDS)?;
        let buf = vec![0; r.snapshot_len()];
        let last = r.head();
        Ok(CoreImage {
            _files: files,
            w,
            r,
            img: (0..IMG_BYTES).map(|i| (i % 251) as u8).collect(),
            buf,
            last,
        })
    }
}

impl PingPong for CoreImage {
    fn send(&mut self, i: u64) {
        self.img[..8].copy_from_slice(&i.to_le_bytes());
        let a = ArrayRef::new(Dtype::U8, &[IMG_H, IMG_W, IMG_C], &self.img).unwrap();
        self.w
            .write_fields(&[(0, Value::Array(a))])
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
            let px = snap.raw(0).expect("image");
            let seq = u64::from_le_bytes(px[..8].try_into().unwrap());
            self.last = snap.commit();
            if seq == i {
                return;
            }
        }
    }
}
