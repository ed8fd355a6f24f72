//! A reader of a named segment: a read-only mapping, its own cursor and change tracking,
//! and waiting that sleeps in the kernel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flexshm_core::{
    Dynamic, FieldDef, Layout, Mode, ReadInfo, ReadOptions, Region, Schema, SchemaBuf, Snapshot,
};

use crate::claim;
use crate::error::Error;
use crate::file::{FileInfo, ShmFile};
use crate::name::ShmName;
use crate::segment::{compare, Segment};
use crate::wake::Waiter;
use crate::OpenOptions;

/// How often a reader that finds nothing new checks whether its segment's name was
/// unlinked (and perhaps created anew by another writer).
const REPLACED_CHECK: Duration = Duration::from_secs(1);
/// Pause between looks for a segment that does not exist yet.
const OPEN_POLL: Duration = Duration::from_millis(5);

/// `now + timeout`, capped at a year so that `Duration::MAX` means "wait for ever"
/// instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
    Instant::now() + timeout.min(FOREVER)
}

/// Who writes a segment, as its claim word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterStatus {
    /// No process claims the writer role (it exited, or none ever started).
    None,
    /// The process `pid` claims the role and is running.
    Alive {
        /// Its process id.
        pid: u32,
    },
    /// The process `pid` claims the role but has exited without releasing it (killed);
    /// the next writer takes the segment over.
    Dead {
        /// Its process id.
        pid: u32,
    },
}

/// A reader of a named segment of `S` records: a [`record!`](crate::record) type
/// (`Reader<SensorData>`), or [`Dynamic`] with the schema read from the segment.
///
/// A reader maps the segment read-only and never stores into it, so it needs only read
/// permission and cannot disturb the writer or other readers. Each reader keeps its own
/// FIFO position, change tracking and loss count; open one per consumer.
///
/// ```
/// use flexshm_std::{CreateOptions, Dtype, Dynamic, FieldDef, FieldValue, Kind, Reader};
/// use flexshm_std::{Value, Writer};
/// use std::time::Duration;
///
/// # let name = format!("flexshm-doc-dynreader-{}", std::process::id());
/// let fields = [FieldDef::new("temperature", Kind::Scalar(Dtype::F64))];
/// let mut w = Writer::<Dynamic>::create_with_fields(&name, &fields, &CreateOptions::default())?;
/// w.write_fields(&[(0, Value::Float(23.5))])?;
///
/// let mut r = Reader::<Dynamic>::open(&name)?; // schema from the segment's header
/// let snap = r.read(Default::default(), Duration::from_secs(1))?;
/// assert_eq!(snap.get(0)?, FieldValue::Float(23.5));
/// assert!(snap.status(0).valid() && snap.status(0).modified);
/// # flexshm_std::unlink(&name)?;
/// # Ok::<(), flexshm_std::Error>(())
/// ```
pub struct Reader<S: Schema = Dynamic> {
    inner: flexshm_core::Reader<'static, S>,
    buf: Vec<u8>,
    waiter: Waiter,
    /// The head seen by the previous read or wait, how many looks in a row found it
    /// unchanged, and since when (`None`: it changed at the last look).
    checked: (u32, u32, Option<Instant>),
    // Declared last: the core reader's region points into this mapping.
    seg: Arc<Segment>,
}

impl<S: Schema> std::fmt::Debug for Reader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("name", &self.seg.name())
            .field("mode", &self.inner.mode())
            .finish()
    }
}

impl<S: Schema> Reader<S> {
    /// Opens segment `name` for reading. A [`record!`](crate::record) reader checks that
    /// the segment holds its records ([`Error::LayoutMismatch`] names the first
    /// differing field); a `Reader<Dynamic>` takes the schema from the segment's header
    /// and opens any flexshm segment.
    ///
    /// ```
    /// use flexshm_std::{record, Dynamic, Error, Reader};
    /// record! { pub struct Tick { pub n: u64 } }
    /// let err = Reader::<Tick>::open("flexshm-doc-topen-missing").unwrap_err();
    /// assert!(matches!(err, Error::NotFound { .. }));
    /// match Reader::<Dynamic>::open("flexshm-doc-missing") {
    ///     Err(Error::NotFound { name }) => assert_eq!(name, "flexshm-doc-missing"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn open(name: &str) -> Result<Self, Error> {
        Self::open_with(name, &OpenOptions::default())
    }

    /// [`open`](Self::open) with options (e.g. wait for the segment to be created).
    pub fn open_with(name: &str, opts: &OpenOptions) -> Result<Self, Error> {
        open(name, opts, S::layout_for_segment)
    }
}

impl Reader<Dynamic> {
    /// Opens segment `name`, which must hold records of exactly `fields`
    /// ([`Error::LayoutMismatch`] names the first difference).
    pub fn open_expecting(
        name: &str,
        fields: &[FieldDef],
        opts: &OpenOptions,
    ) -> Result<Self, Error> {
        let fields: SchemaBuf =
            SchemaBuf::from_slice(fields).map_err(|_| flexshm_core::Error::TooManyFields {
                count: fields.len(),
            })?;
        Layout::new(fields.clone())?;
        open(name, opts, |_found| Layout::new(fields.clone()))
    }
}

/// What layout a reader uses, given the schema the segment describes.
type LayoutFor<'a, S> =
    dyn Fn(&[FieldDef]) -> Result<Layout<<S as Schema>::Fields>, flexshm_core::Error> + 'a;

/// Opens `name` read-only, waiting up to `opts.timeout` for it to exist and be
/// initialised, checks that the layout `layout_for` chooses is the segment's, and makes
/// the core reader.
fn open<S: Schema>(
    name: &str,
    opts: &OpenOptions,
    layout_for: impl Fn(&[FieldDef]) -> Result<Layout<S::Fields>, flexshm_core::Error>,
) -> Result<Reader<S>, Error> {
    let shm = ShmName::parse(name)?;
    let deadline = deadline_after(opts.timeout);
    loop {
        match try_open::<S>(&shm, &layout_for) {
            Ok(r) => return Ok(r),
            // Not created yet, or created by a program that has not finished it.
            Err(e @ (Error::NotFound { .. } | Error::Uninitialised { .. })) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(e);
                }
                std::thread::sleep(OPEN_POLL.min(deadline - now));
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_open<S: Schema>(shm: &ShmName, layout_for: &LayoutFor<'_, S>) -> Result<Reader<S>, Error> {
    let uninit = || Error::Uninitialised {
        name: shm.bare().to_string(),
    };
    let file = ShmFile::open(shm, false)?;
    let seg = match Segment::map(shm, file, false) {
        Ok(s) => Arc::new(s),
        Err(Error::TooSmall { size: 0, .. }) => return Err(uninit()),
        Err(e) => return Err(e),
    };
    let layout = {
        // SAFETY: used only within this block, while `seg` is alive.
        let region = unsafe { seg.region_static() };
        match flexshm_core::internal::read_schema(&region) {
            Err(flexshm_core::Error::BadMagic { found: 0 }) => return Err(uninit()),
            Err(e) => return Err(Error::from_core_open(shm.bare(), e)),
            Ok((fields, _)) => {
                let layout = layout_for(&fields)?;
                compare(shm.bare(), &layout, &fields)?;
                layout
            }
        }
    };
    Reader::on_segment(seg, |region| {
        flexshm_core::Reader::<S>::open_layout(region, layout)
    })
}

impl<S: Schema> Reader<S> {
    pub(crate) fn on_segment(
        seg: Arc<Segment>,
        make: impl FnOnce(
            Region<'static>,
        ) -> Result<flexshm_core::Reader<'static, S>, flexshm_core::Error>,
    ) -> Result<Self, Error> {
        // SAFETY: the region is stored in the returned Reader next to the Arc that keeps
        // the mapping alive, and never given out with 'static.
        let region = unsafe { seg.region_static() };
        let inner = make(region).map_err(|e| Error::from_core_open(seg.name(), e))?;
        let head = inner.head();
        Ok(Reader {
            buf: vec![0; inner.snapshot_len()],
            inner,
            waiter: Waiter::default(),
            checked: (head, 0, None),
            seg,
        })
    }

    /// Another reader of the memory this reader maps, as if just opened: its own FIFO
    /// position, change tracking and loss count, sharing this reader's mapping (no
    /// system call). Unlike opening the name again, it reads this same segment even
    /// after the name was unlinked or given to a new segment.
    ///
    /// ```
    /// use flexshm_std::{CreateOptions, Dtype, Dynamic, FieldDef, Kind, Reader, Value, Writer};
    ///
    /// # let name = format!("flexshm-doc-another-{}", std::process::id());
    /// let fields = [FieldDef::new("n", Kind::Scalar(Dtype::U32))];
    /// let mut w = Writer::<Dynamic>::create_with_fields(&name, &fields, &CreateOptions::fifo(4))?;
    /// w.write_fields(&[(0, Value::UInt(1))])?;
    /// w.finalize()?;
    /// let mut first = Reader::<Dynamic>::open(&name)?;
    /// first.try_read(Default::default())?;
    /// let second = first.another()?;
    /// assert!(!first.has_new() && second.has_new()); // each has its own position
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn another(&self) -> Result<Reader<S>, Error> {
        let layout = self.inner.layout().clone();
        Reader::on_segment(Arc::clone(&self.seg), |region| {
            flexshm_core::Reader::<S>::open_layout(region, layout)
        })
    }

    /// The segment name, without a leading `/`.
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// The record layout (field declarations, offsets, sizes).
    pub fn layout(&self) -> &Layout<S::Fields> {
        self.inner.layout()
    }

    /// Single-slot or FIFO (with its slot count).
    pub fn mode(&self) -> Mode {
        self.inner.mode()
    }

    /// Bytes of one record: what a buffer given to [`read_into`](Self::read_into) needs.
    pub fn snapshot_len(&self) -> usize {
        self.inner.snapshot_len()
    }

    /// Records this reader lost to a lapping FIFO writer since it was opened.
    pub fn lost_total(&self) -> u64 {
        self.inner.lost_total()
    }

    /// Commit number of the newest record (0 before the first commit); copies nothing.
    pub fn head(&self) -> u32 {
        self.inner.head()
    }

    /// True if a read now would return a record this reader has not returned yet
    /// (single-slot: a newer commit; FIFO: an unread record).
    pub fn has_new(&self) -> bool {
        self.inner.has_new()
    }

    /// Who writes the segment: no one, a running process, or a process that died
    /// holding the role.
    pub fn writer(&self) -> WriterStatus {
        match claim::claimant(&self.seg) {
            None => WriterStatus::None,
            Some(c) if c.is_alive() => WriterStatus::Alive { pid: c.pid },
            Some(c) => WriterStatus::Dead { pid: c.pid },
        }
    }

    fn writer_alive(&self) -> Option<bool> {
        claim::writer_alive(&self.seg)
    }

    /// A random number the segment's creator stored in it: two segments with the same
    /// name but different ids are different segments (a bridge uses it to tell a
    /// restarted writer, which keeps it, from a new segment). 0 for a segment whose
    /// creator stored none.
    pub fn segment_id(&self) -> u64 {
        claim::segment_id(&self.seg)
    }

    /// Owner, permissions and size of the segment file.
    pub fn file_info(&self) -> FileInfo {
        self.seg.file_info()
    }

    /// True if the segment's name no longer refers to the memory this reader maps: it was
    /// unlinked (and perhaps created anew by another writer). Makes a system call; reads
    /// and waits check it by themselves about once a second while nothing new arrives.
    pub fn is_replaced(&self) -> bool {
        self.seg.replaced()
    }

    /// Errors with [`Error::Replaced`] if nothing was committed for at least
    /// [`REPLACED_CHECK`] and the name no longer refers to this segment's file.
    fn check_replaced(&mut self) -> Result<(), Error> {
        let head = self.inner.head();
        if head != self.checked.0 {
            // Something was committed: the segment is alive. No clock read on this path.
            self.checked = (head, 0, None);
            return Ok(());
        }
        // A reader polling an unchanged record reads the clock only now and then: at the
        // 1st, 2nd, 4th, 8th... look and every 1024th (a rare reader still checks within
        // a few reads, a spinning one almost never pays for the clock).
        let looks = self.checked.1.wrapping_add(1);
        self.checked.1 = looks;
        if !(looks.is_power_of_two() || looks.is_multiple_of(1024)) {
            return Ok(());
        }
        let now = Instant::now();
        match self.checked.2 {
            None => {
                self.checked.2 = Some(now);
                return Ok(());
            }
            Some(since) if now.duration_since(since) < REPLACED_CHECK => return Ok(()),
            Some(_) => self.checked.2 = Some(now),
        }
        if self.seg.replaced() {
            return Err(Error::Replaced {
                name: self.seg.name().to_string(),
            });
        }
        Ok(())
    }

    /// Reads a record without waiting into this reader's own buffer. Single-slot mode:
    /// the newest record. FIFO mode: the next unread record, or the newest with
    /// `opts.latest`; `Error::Core(NoRecord)` if there is none.
    pub fn try_read(&mut self, opts: ReadOptions) -> Result<Snapshot<'_, '_, S>, Error> {
        let info = self.try_read_into_own(opts)?;
        Ok(self.inner.snapshot(&self.buf, info))
    }

    /// A view of a record that [`read_into`](Self::read_into) left in `bytes`, with the
    /// [`ReadInfo`] it returned (the same snapshot [`read`](Self::read) gives).
    /// Decoding checks every length again, so any bytes give errors, never
    /// out-of-bounds reads.
    ///
    /// ```
    /// use flexshm_std::{record, CreateOptions, Reader, Writer};
    /// use std::time::Duration;
    ///
    /// record! {
    ///     #[derive(Debug, Default, PartialEq)]
    ///     pub struct Pose { pub x: f64, pub seq: u32 }
    /// }
    /// # let name = format!("flexshm-doc-snapshot-{}", std::process::id());
    /// let mut w = Writer::<Pose>::create(&name, &CreateOptions::default())?;
    /// let mut r = Reader::<Pose>::open(&name)?;
    /// let mut kept = Vec::new();
    /// for seq in 1..=3 {
    ///     w.write(&Pose { x: 0.5 * seq as f64, seq })?;
    ///     let mut bytes = vec![0; r.snapshot_len()];
    ///     let info = r.read_into(&mut bytes, Default::default(), Duration::from_secs(1))?;
    ///     kept.push((bytes, info));
    /// }
    /// // Later: the second record, decoded from the bytes kept.
    /// let (bytes, info) = &kept[1];
    /// let mut p = Pose::default();
    /// r.snapshot(bytes, *info).decode(&mut p)?;
    /// assert_eq!(p, Pose { x: 1.0, seq: 2 });
    /// assert!(r.snapshot(bytes, *info).status(1).modified);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn snapshot<'b>(&self, bytes: &'b [u8], info: ReadInfo) -> Snapshot<'b, '_, S> {
        self.inner.snapshot(bytes, info)
    }

    fn try_read_into_own(&mut self, opts: ReadOptions) -> Result<ReadInfo, Error> {
        let info = self.inner.try_read(&mut self.buf, opts)?.info();
        if self.inner.mode() == Mode::Single {
            self.check_replaced()?;
        }
        Ok(info)
    }

    /// Reads a record, waiting up to `timeout`, into this reader's own buffer.
    ///
    /// Single-slot mode: the latest record now; `timeout` only bounds the retries while
    /// the writer keeps overtaking the copy. FIFO mode: the next unread record (or the
    /// newest with `opts.latest`), sleeping in the kernel until the writer commits one.
    /// Out of time: [`Error::Timeout`], which says what was waited for and whether the
    /// writer is alive. [`Error::Replaced`] if the segment's name was unlinked (and
    /// perhaps given to a new segment) while nothing new arrived.
    pub fn read(
        &mut self,
        opts: ReadOptions,
        timeout: Duration,
    ) -> Result<Snapshot<'_, '_, S>, Error> {
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.read_into(&mut buf, opts, timeout);
        self.buf = buf;
        let info = res?;
        Ok(self.inner.snapshot(&self.buf, info))
    }

    /// [`read`](Self::read) into a buffer the caller owns (at least
    /// [`snapshot_len`](Self::snapshot_len) bytes); returns what the read reports. For
    /// callers that keep records: [`snapshot`](Self::snapshot) views one.
    pub fn read_into(
        &mut self,
        buf: &mut [u8],
        opts: ReadOptions,
        timeout: Duration,
    ) -> Result<ReadInfo, Error> {
        // The deadline is computed only once a first attempt found nothing (a clock read).
        let mut deadline = None;
        loop {
            let e = match self.inner.try_read(buf, opts) {
                Ok(snap) => {
                    let info = snap.info();
                    if self.inner.mode() == Mode::Single {
                        self.check_replaced()?;
                    }
                    return Ok(info);
                }
                Err(e) => e,
            };
            let deadline = *deadline.get_or_insert_with(|| deadline_after(timeout));
            match e {
                flexshm_core::Error::NoRecord => {
                    if !self.wait_until(deadline)? {
                        return Err(Error::Timeout {
                            no_record: true,
                            writer_alive: self.writer_alive(),
                        });
                    }
                }
                flexshm_core::Error::Contended => {
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout {
                            no_record: false,
                            writer_alive: self.writer_alive(),
                        });
                    }
                    std::thread::yield_now();
                }
                e => return Err(e.into()),
            }
        }
    }

    /// Waits up to `timeout` until there is something this reader has not returned yet
    /// ([`has_new`](Self::has_new)): true if there is, false at the timeout. Sleeps in
    /// the kernel; [`Error::Replaced`] if the segment's name was unlinked meanwhile.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, Error> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits up to `timeout` until the newest commit number differs from `head`, without
    /// reading anything: for monitors that count commits (a commit-rate meter) and would
    /// otherwise copy every record. True if it changed, false at the timeout.
    pub fn wait_head_change(&mut self, head: u32, timeout: Duration) -> Result<bool, Error> {
        let deadline = deadline_after(timeout);
        loop {
            let inner = &self.inner;
            if self
                .waiter
                .wait(&self.seg, deadline, REPLACED_CHECK, || inner.head() != head)
            {
                return Ok(true);
            }
            self.check_replaced()?;
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    fn wait_until(&mut self, deadline: Instant) -> Result<bool, Error> {
        loop {
            let inner = &self.inner;
            if self
                .waiter
                .wait(&self.seg, deadline, REPLACED_CHECK, || inner.has_new())
            {
                return Ok(true);
            }
            self.check_replaced()?;
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }
}
