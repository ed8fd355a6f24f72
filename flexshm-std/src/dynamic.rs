//! The dynamic API: schema known at run time (the Python frontend, tools).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flexshm_core::{
    FieldDef, Layout, Mode, ReadInfo, ReadOptions, Reader, Value, Writer, MAX_SLOTS,
};

use crate::claim::{self, Claimant};
use crate::error::Error;
use crate::name::ShmName;
use crate::segment::Segment;
use crate::wake::{self, Waiter};
use crate::CreateOptions;

/// `now + timeout`, capped at a year so that `Duration::MAX` means "wait for ever"
/// instead of overflowing.
fn deadline_after(timeout: Duration) -> Instant {
    const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
    Instant::now() + timeout.min(FOREVER)
}

/// How often creating retries when the name appears and disappears under it.
const CREATE_ATTEMPTS: usize = 16;

/// The one writer of a named segment, with the schema given at run time.
///
/// Creating a segment makes this handle its writer; the claim is released when the
/// handle is dropped. Dropping never unlinks: use [`unlink`](crate::unlink).
///
/// ```
/// use flexshm_std::{CreateOptions, DynWriter, Dtype, FieldDef, Kind, Value};
///
/// let name = format!("flexshm-doc-dynwriter-{}", std::process::id());
/// let fields = vec![
///     FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
///     FieldDef::new("status_msg", Kind::str(32)),
/// ];
/// let mut w = DynWriter::create(&name, fields, &CreateOptions::default())?;
/// w.write(&[(0, Value::Float(23.5)), (1, Value::Str("OK"))])?;
/// assert_eq!(w.name(), name);
/// drop(w);
/// flexshm_std::unlink(&name)?;
/// # Ok::<(), flexshm_std::Error>(())
/// ```
pub struct DynWriter {
    writer: Writer<'static, Vec<FieldDef>>,
    me: Claimant,
    // Declared last: the writer's region points into this mapping (see `new`).
    seg: Arc<Segment>,
}

impl std::fmt::Debug for DynWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynWriter")
            .field("name", &self.seg.name())
            .field("mode", &self.writer.mode())
            .field("head", &self.writer.head())
            .finish()
    }
}

impl DynWriter {
    /// Creates segment `name` for records of `fields`, or takes over an existing one with
    /// the same layout and mode whose writer is dead or gone (the last committed record
    /// is kept and a record its writer left half-written is repaired).
    ///
    /// Errors: [`Error::InvalidName`]; [`Error::Core`] for invalid field declarations;
    /// [`Error::WriterAlive`] if a running process writes the segment;
    /// [`Error::LayoutMismatch`] / [`Error::ModeMismatch`] if it holds other records;
    /// [`Error::NotFlexshm`], [`Error::UnsupportedVersion`], [`Error::TooSmall`],
    /// [`Error::Corrupt`] if the name is taken by something that is not a usable flexshm
    /// segment (which is then left untouched).
    ///
    /// ```
    /// use flexshm_std::{CreateOptions, DynWriter, Dtype, Error, FieldDef, Kind, Mode};
    ///
    /// let name = format!("flexshm-doc-create-{}", std::process::id());
    /// let fields = vec![FieldDef::new("x", Kind::Scalar(Dtype::I32))];
    /// let opts = CreateOptions { mode: Mode::Fifo { slots: 8 }, ..Default::default() };
    /// let w = DynWriter::create(&name, fields.clone(), &opts)?;
    /// // A second writer while the first is alive is refused.
    /// let err = DynWriter::create(&name, fields.clone(), &opts).unwrap_err();
    /// assert!(matches!(err, Error::WriterAlive { pid } if pid == std::process::id()));
    /// drop(w);
    /// // The first writer is gone: the next one takes the segment over.
    /// let w = DynWriter::create(&name, fields, &opts)?;
    /// flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn create(name: &str, fields: Vec<FieldDef>, opts: &CreateOptions) -> Result<Self, Error> {
        let shm = ShmName::parse(name)?;
        let layout = Layout::new(fields.as_slice())?;
        let slots = opts.mode.slots();
        if slots == 0 || slots > MAX_SLOTS {
            return Err(Error::InvalidOptions {
                reason: format!("FIFO slots must be 1..={MAX_SLOTS}, got {slots}"),
            });
        }
        if opts.permissions & !0o777 != 0 {
            return Err(Error::InvalidOptions {
                reason: format!(
                    "permissions must be file mode bits (0o000..=0o777), got {:#o}",
                    opts.permissions
                ),
            });
        }
        let total = layout.segment_size(slots)?;
        for _ in 0..CREATE_ATTEMPTS {
            if let Some(seg) = Segment::create_new(&shm, total, opts.permissions)? {
                let seg = Arc::new(seg);
                // SAFETY: the region is stored in the returned DynWriter next to the Arc
                // that keeps the mapping alive, and never given out with 'static.
                let region = unsafe { seg.region_static() };
                let writer = match Writer::create(region, fields, opts.mode) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = rustix::shm::unlink(shm.posix());
                        return Err(e.into());
                    }
                };
                // `Writer::create` zeroed the frontend area before publishing the header;
                // a process that saw the published header may have taken it over since.
                let me = claim::take(&seg)?;
                return Ok(DynWriter { writer, me, seg });
            }
            let seg = match Segment::open_existing(&shm) {
                Ok(s) => Arc::new(s),
                // Unlinked between our create attempt and this open: try again.
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let found = seg.check_layout(&fields)?;
            if found != opts.mode {
                return Err(Error::ModeMismatch {
                    name: shm.bare().to_string(),
                    expected: opts.mode,
                    found,
                });
            }
            let me = claim::take(&seg)?;
            // SAFETY: as above: the region lives in the DynWriter with its mapping.
            let region = unsafe { seg.region_static() };
            return match Writer::attach(region, fields) {
                Ok(writer) => Ok(DynWriter { writer, me, seg }),
                Err(e) => {
                    claim::release(&seg, me);
                    Err(Error::from_core_open(shm.bare(), e))
                }
            };
        }
        Err(Error::Io(std::io::Error::other(format!(
            "segment '{}' kept appearing and disappearing while it was being created",
            shm.bare()
        ))))
    }

    /// The segment name, without a leading `/`.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-wname-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// assert_eq!(w.name(), name);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// The record layout (field declarations, offsets, sizes).
    ///
    /// ```
    /// # let name = format!("flexshm-doc-wlayout-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// assert_eq!(w.layout().index_of("x"), Some(0));
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn layout(&self) -> &Layout<Vec<FieldDef>> {
        self.writer.layout()
    }

    /// Single-slot or FIFO (with its slot count).
    ///
    /// ```
    /// # let name = format!("flexshm-doc-wmode-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// assert_eq!(w.mode(), flexshm_std::Mode::Single);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn mode(&self) -> Mode {
        self.writer.mode()
    }

    /// Commit number of the newest published record (0 before the first commit).
    ///
    /// ```
    /// # let name = format!("flexshm-doc-whead-{}", std::process::id());
    /// # let mut w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// w.write(&[(0, flexshm_std::Value::UInt(7))])?;
    /// assert_eq!(w.head(), 1);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn head(&self) -> u32 {
        self.writer.head()
    }

    /// Writes fields given by index. Single-slot mode: commits a record at once. FIFO
    /// mode: stages into the pending record, committed by [`finalize`](Self::finalize).
    /// Every value is checked before anything is written: on error the segment is
    /// unchanged. A commit wakes readers blocked in [`DynReader::read`].
    ///
    /// ```
    /// use flexshm_std::{DynWriter, Dtype, FieldDef, Kind, Value};
    /// # let name = format!("flexshm-doc-wwrite-{}", std::process::id());
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::I32))], &Default::default())?;
    /// w.write(&[(0, Value::Int(-5))])?;
    /// // Out of range for i32: an error naming the field, nothing written.
    /// assert!(w.write(&[(0, Value::Int(1 << 40))]).unwrap_err().to_string().contains("'x'"));
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn write(&mut self, values: &[(usize, Value<'_>)]) -> Result<(), Error> {
        self.write_iter(values.iter().copied())
    }

    /// Like [`write`](Self::write), with fields given by name.
    ///
    /// ```
    /// use flexshm_std::{DynWriter, Dtype, FieldDef, Kind, Value};
    /// # let name = format!("flexshm-doc-wnamed-{}", std::process::id());
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::F32))], &Default::default())?;
    /// w.write_named(&[("x", Value::Float(1.5))])?;
    /// assert!(w.write_named(&[("y", Value::Float(1.5))]).is_err());
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn write_named(&mut self, values: &[(&str, Value<'_>)]) -> Result<(), Error> {
        self.writer.write_named(values)?;
        self.after_write();
        Ok(())
    }

    /// Like [`write`](Self::write), from an iterator of `(index, value)` pairs that can
    /// be walked twice (once to check, once to write); allocates nothing.
    ///
    /// ```
    /// use flexshm_std::{DynWriter, Dtype, FieldDef, Kind, Value};
    /// # let name = format!("flexshm-doc-witer-{}", std::process::id());
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::U16))], &Default::default())?;
    /// w.write_iter([(0, Value::UInt(9))].into_iter())?;
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn write_iter<'v, I>(&mut self, values: I) -> Result<(), Error>
    where
        I: Iterator<Item = (usize, Value<'v>)> + Clone,
    {
        self.writer.write_iter(values)?;
        self.after_write();
        Ok(())
    }

    /// Readers currently asleep in [`DynReader::read`] or [`DynReader::wait_commit`]
    /// (plus any that were killed while waiting): while it is 0 a commit makes no system
    /// call.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-wwaiters-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// assert_eq!(w.waiters(), 0);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn waiters(&self) -> u32 {
        wake::waiters(&self.seg)
    }

    pub(crate) fn segment(&self) -> &Arc<Segment> {
        &self.seg
    }

    /// A reader of the memory this writer writes: unlike [`DynReader::open`] by name, it
    /// keeps reading this segment after the name is unlinked or taken by a new segment.
    ///
    /// ```
    /// use flexshm_std::{DynWriter, Dtype, FieldDef, Kind, ReadOptions, Value};
    /// # let name = format!("flexshm-doc-wreader-{}", std::process::id());
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::U8))], &Default::default())?;
    /// w.write(&[(0, Value::UInt(4))])?;
    /// flexshm_std::unlink(&name)?;
    /// let mut r = w.reader()?;
    /// let mut buf = vec![0u8; r.snapshot_len()];
    /// assert_eq!(r.try_read(&mut buf, ReadOptions::default())?.commit, 1);
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn reader(&self) -> Result<DynReader, Error> {
        DynReader::on_segment(
            Arc::clone(&self.seg),
            self.writer.layout().fields().to_vec(),
        )
    }

    fn after_write(&mut self) {
        if !self.writer.mode().is_fifo() {
            wake::notify(&self.seg);
        }
    }

    /// Commits the pending record (FIFO mode; fields not written since the previous
    /// commit keep their values with `modified` cleared) and wakes waiting readers.
    /// Returns the record's commit number. In single-slot mode it commits a record that
    /// repeats the current values.
    ///
    /// ```
    /// use flexshm_std::{CreateOptions, DynWriter, Dtype, FieldDef, Kind, Mode, Value};
    /// # let name = format!("flexshm-doc-wfinal-{}", std::process::id());
    /// let opts = CreateOptions { mode: Mode::Fifo { slots: 4 }, ..Default::default() };
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::F64))], &opts)?;
    /// w.write(&[(0, Value::Float(1.0))])?;
    /// assert_eq!(w.finalize()?, 1);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn finalize(&mut self) -> Result<u32, Error> {
        let c = self.writer.finalize();
        wake::notify(&self.seg);
        Ok(c)
    }
}

impl Drop for DynWriter {
    fn drop(&mut self) {
        claim::release(&self.seg, self.me);
    }
}

/// A reader of a named segment, with the schema given at run time or read from the
/// segment itself.
///
/// Each reader keeps its own FIFO position, change tracking and loss count; open one per
/// consumer.
///
/// ```
/// use flexshm_std::{DynReader, DynWriter, Dtype, FieldDef, FieldValue, Kind, ReadOptions, Value};
/// use std::time::Duration;
///
/// let name = format!("flexshm-doc-dynreader-{}", std::process::id());
/// let fields = vec![FieldDef::new("temperature", Kind::Scalar(Dtype::F64))];
/// let mut w = DynWriter::create(&name, fields, &Default::default())?;
/// w.write(&[(0, Value::Float(23.5))])?;
///
/// let mut r = DynReader::open(&name, None)?; // schema from the segment's header
/// let mut buf = vec![0u8; r.snapshot_len()];
/// let info = r.read(&mut buf, ReadOptions::default(), Duration::from_secs(1))?;
/// let v = flexshm_std::decode_field(&buf, r.layout(), 0)?;
/// assert_eq!(v, FieldValue::Float(23.5));
/// assert!(info.status(0).valid() && info.status(0).modified);
/// # drop(w);
/// flexshm_std::unlink(&name)?;
/// # Ok::<(), flexshm_std::Error>(())
/// ```
pub struct DynReader {
    reader: Reader<'static, Vec<FieldDef>>,
    waiter: Waiter,
    // Declared last: the reader's region points into this mapping.
    seg: Arc<Segment>,
}

impl std::fmt::Debug for DynReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynReader")
            .field("name", &self.seg.name())
            .field("mode", &self.reader.mode())
            .finish()
    }
}

impl DynReader {
    /// Opens segment `name` for reading. With `Some(fields)` the segment must hold
    /// exactly these fields ([`Error::LayoutMismatch`] names the first difference); with
    /// `None` the schema is taken from the segment's header.
    ///
    /// Everything is validated before any record is read: [`Error::NotFound`],
    /// [`Error::NotFlexshm`], [`Error::UnsupportedVersion`], [`Error::LayoutMismatch`],
    /// [`Error::TooSmall`] (the segment is shorter than its header says), and
    /// [`Error::Corrupt`].
    ///
    /// ```
    /// use flexshm_std::{DynReader, Error};
    /// match DynReader::open("flexshm-doc-missing", None) {
    ///     Err(Error::NotFound { name }) => assert_eq!(name, "flexshm-doc-missing"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn open(name: &str, fields: Option<Vec<FieldDef>>) -> Result<Self, Error> {
        let shm = ShmName::parse(name)?;
        if let Some(f) = &fields {
            Layout::new(f.as_slice())?;
        }
        let seg = Arc::new(Segment::open_existing(&shm)?);
        let fields = match fields {
            Some(f) => {
                seg.check_layout(&f)?;
                f
            }
            None => seg.schema()?.0,
        };
        Self::on_segment(seg, fields)
    }

    pub(crate) fn on_segment(seg: Arc<Segment>, fields: Vec<FieldDef>) -> Result<Self, Error> {
        // SAFETY: the region is stored in the returned DynReader next to the Arc that
        // keeps the mapping alive, and never given out with 'static.
        let region = unsafe { seg.region_static() };
        let reader =
            Reader::open(region, fields).map_err(|e| Error::from_core_open(seg.name(), e))?;
        Ok(DynReader {
            reader,
            waiter: Waiter::default(),
            seg,
        })
    }

    /// The segment name, without a leading `/`.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rname-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&format!("/{name}"), None)?;
    /// assert_eq!(r.name(), name);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// The record layout; with [`decode_field`](crate::decode_field) it decodes fields
    /// from a snapshot buffer.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rlayout-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// assert_eq!(r.layout().fields()[0].name.as_str(), "x");
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn layout(&self) -> &Layout<Vec<FieldDef>> {
        self.reader.layout()
    }

    /// Single-slot or FIFO (with its slot count).
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rmode-{}", std::process::id());
    /// # let opts = flexshm_std::CreateOptions::fifo(3);
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &opts)?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// assert_eq!(r.mode(), flexshm_std::Mode::Fifo { slots: 3 });
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn mode(&self) -> Mode {
        self.reader.mode()
    }

    /// Bytes a snapshot buffer must have.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rlen-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// let buf = vec![0u8; r.snapshot_len()];
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn snapshot_len(&self) -> usize {
        self.reader.snapshot_len()
    }

    /// Records this reader lost to a lapping FIFO writer since it was opened.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rlost-{}", std::process::id());
    /// # let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// assert_eq!(r.lost_total(), 0);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn lost_total(&self) -> u64 {
        self.reader.lost_total()
    }

    /// Commit number of the newest record (0 before the first commit); copies nothing.
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rhead-{}", std::process::id());
    /// # let mut w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// w.write(&[(0, flexshm_std::Value::UInt(1))])?;
    /// assert_eq!(r.head(), 1);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn head(&self) -> u32 {
        self.reader.head()
    }

    /// Whether the process that claims the writer role is running: `None` if no writer
    /// holds the segment (it exited, or never started).
    ///
    /// ```
    /// # let name = format!("flexshm-doc-ralive-{}", std::process::id());
    /// let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// assert_eq!(r.writer_alive(), Some(true));
    /// drop(w);
    /// assert_eq!(r.writer_alive(), None);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn writer_alive(&self) -> Option<bool> {
        claim::writer_alive(&self.seg)
    }

    /// The process id of the segment's writer, if one holds it (alive or not).
    ///
    /// ```
    /// # let name = format!("flexshm-doc-rpid-{}", std::process::id());
    /// let w = flexshm_std::DynWriter::create(&name, vec![flexshm_std::FieldDef::new("x", flexshm_std::Kind::Scalar(flexshm_std::Dtype::U8))], &Default::default())?;
    /// let r = flexshm_std::DynReader::open(&name, None)?;
    /// assert_eq!(r.writer_pid(), Some(std::process::id()));
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn writer_pid(&self) -> Option<u32> {
        claim::claimant(&self.seg).map(|c| c.pid)
    }

    /// True if the segment's name no longer refers to the memory this reader maps: it was
    /// unlinked (and perhaps created anew by another writer). The reader keeps reading
    /// the old memory, which no writer will update; open the name again to follow the
    /// new segment. Makes a system call; check it when reads time out, not on every read.
    ///
    /// ```
    /// use flexshm_std::{DynReader, DynWriter, Dtype, FieldDef, Kind};
    /// # let name = format!("flexshm-doc-rreplaced-{}", std::process::id());
    /// let fields = vec![FieldDef::new("x", Kind::Scalar(Dtype::U8))];
    /// let w = DynWriter::create(&name, fields.clone(), &Default::default())?;
    /// let r = DynReader::open(&name, None)?;
    /// assert!(!r.is_replaced());
    /// flexshm_std::unlink(&name)?;
    /// assert!(r.is_replaced());
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn is_replaced(&self) -> bool {
        self.seg.replaced()
    }

    /// Takes a snapshot into `buf` without waiting. Single-slot mode: the newest record
    /// (every field unwritten before the first write). FIFO mode: this reader's next
    /// unread record, or the newest with `opts.latest`; `Error::Core(NoRecord)` if there
    /// is none. `Error::Core(Contended)` if the writer overtook every copy attempt.
    ///
    /// ```
    /// use flexshm_std::{DynReader, DynWriter, Dtype, FieldDef, Kind, ReadOptions};
    /// # let name = format!("flexshm-doc-rtry-{}", std::process::id());
    /// # let w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::U8))], &Default::default())?;
    /// let mut r = DynReader::open(&name, None)?;
    /// let mut buf = vec![0u8; r.snapshot_len()];
    /// let info = r.try_read(&mut buf, ReadOptions::default())?;
    /// assert!(info.status(0).unwritten());
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn try_read(&mut self, buf: &mut [u8], opts: ReadOptions) -> Result<ReadInfo, Error> {
        Ok(self.reader.try_read_info(buf, opts)?)
    }

    /// Reads a record, waiting up to `timeout`.
    ///
    /// Single-slot mode: the latest record now; `timeout` only bounds the retries while
    /// the writer keeps overtaking the copy. FIFO mode: the next unread record (or the
    /// newest with `opts.latest`), sleeping in the kernel until the writer commits one.
    /// Out of time: [`Error::Timeout`], which says what was waited for and whether the
    /// writer is alive (a dead writer that left a slot mid-write is reported as such).
    ///
    /// ```
    /// use flexshm_std::{CreateOptions, DynReader, DynWriter, Dtype, Error, FieldDef, Kind, ReadOptions, Value};
    /// use std::time::Duration;
    /// # let name = format!("flexshm-doc-rread-{}", std::process::id());
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::U8))], &CreateOptions::fifo(4))?;
    /// let mut r = DynReader::open(&name, None)?;
    /// let mut buf = vec![0u8; r.snapshot_len()];
    /// let err = r.read(&mut buf, ReadOptions::default(), Duration::from_millis(1)).unwrap_err();
    /// assert!(matches!(err, Error::Timeout { no_record: true, writer_alive: Some(true) }));
    /// w.write(&[(0, Value::UInt(3))])?;
    /// w.finalize()?;
    /// let info = r.read(&mut buf, ReadOptions::default(), Duration::from_secs(1))?;
    /// assert_eq!(info.commit, 1);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn read(
        &mut self,
        buf: &mut [u8],
        opts: ReadOptions,
        timeout: Duration,
    ) -> Result<ReadInfo, Error> {
        let deadline = deadline_after(timeout);
        loop {
            match self.reader.try_read_info(buf, opts) {
                Ok(info) => return Ok(info),
                Err(flexshm_core::Error::NoRecord) => {
                    let reader = &self.reader;
                    if !self.waiter.wait(&self.seg, deadline, || reader.has_new()) {
                        return Err(Error::Timeout {
                            no_record: true,
                            writer_alive: self.writer_alive(),
                        });
                    }
                }
                Err(flexshm_core::Error::Contended) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout {
                            no_record: false,
                            writer_alive: self.writer_alive(),
                        });
                    }
                    std::thread::yield_now();
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until the newest commit number differs from `last` (a single-slot reader's
    /// way to sleep until the next write), up to `timeout`; returns whether it changed.
    ///
    /// ```
    /// use flexshm_std::{DynReader, DynWriter, Dtype, FieldDef, Kind, Value};
    /// use std::time::Duration;
    /// # let name = format!("flexshm-doc-rwait-{}", std::process::id());
    /// let mut w = DynWriter::create(&name, vec![FieldDef::new("x", Kind::Scalar(Dtype::U8))], &Default::default())?;
    /// let mut r = DynReader::open(&name, None)?;
    /// assert!(!r.wait_commit(r.head(), Duration::from_millis(1)));
    /// w.write(&[(0, Value::UInt(1))])?;
    /// assert!(r.wait_commit(0, Duration::from_secs(1)));
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn wait_commit(&mut self, last: u32, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let reader = &self.reader;
        self.waiter
            .wait(&self.seg, deadline, || reader.head() != last)
    }
}
