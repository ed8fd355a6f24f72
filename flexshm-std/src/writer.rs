//! The one writer of a named segment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flexshm_core::{
    Dynamic, FieldDef, Layout, Mode, Record, Region, Schema, SchemaBuf, Value, MAX_SLOTS,
};

use crate::claim::{self, Claimant};
use crate::error::Error;
use crate::file::{remove_dead_temporaries, ShmFile, TempFile};
use crate::name::ShmName;
use crate::reader::Reader;
use crate::segment::{compare, Segment};
use crate::wake::Notifier;
use crate::CreateOptions;

/// How often creating starts over when the name appears and disappears under it.
const CREATE_ATTEMPTS: usize = 16;
/// How long a writer waits for a segment whose header is not yet published (a creator
/// that does not create under a temporary name may be in the middle of it) before it
/// treats the segment as abandoned and replaces it.
const INIT_WAIT: Duration = Duration::from_secs(2);
const INIT_POLL: Duration = Duration::from_millis(5);

/// The one writer of a named segment of `S` records: a [`record!`](crate::record) type
/// (`Writer<SensorData>`), or [`Dynamic`] for a schema known at run time.
///
/// Creating a segment makes this handle its writer; the claim is released when the
/// handle is dropped. Dropping never unlinks: use [`unlink`](crate::unlink). A handle
/// inherited by a forked child cannot write ([`Error::ForkedWriter`]).
///
/// ```
/// use flexshm_std::{record, CreateOptions, ReadOptions, Reader, Writer};
/// use std::time::Duration;
///
/// record! {
///     #[derive(Debug, Default, Clone, PartialEq)]
///     pub struct SensorData {
///         pub temperature: f64,
///         pub pressure: f64,
///         pub timestamp: f64,
///         pub status_msg: str[32],
///     }
/// }
///
/// # let name = format!("flexshm-doc-writer-{}", std::process::id());
/// let mut writer = Writer::<SensorData>::create(&name, &CreateOptions::default())?;
/// let mut rec = SensorData { temperature: 23.5, pressure: 1013.25, ..Default::default() };
/// rec.status_msg.push_str("OK").unwrap();
/// writer.write(&rec)?;
///
/// let mut reader = Reader::<SensorData>::open(&name)?;
/// let snap = reader.read(Default::default(), Duration::from_secs(1))?;
/// assert_eq!(snap.record()?, rec);
/// assert!(snap.status(SensorData::temperature).valid());
/// # flexshm_std::unlink(&name)?;
/// # Ok::<(), flexshm_std::Error>(())
/// ```
pub struct Writer<S: Schema = Dynamic> {
    inner: flexshm_core::Writer<'static, S>,
    me: Claimant,
    fork_generation: u64,
    notifier: Notifier,
    // Declared last: the core writer's region points into this mapping.
    seg: Arc<Segment>,
}

impl<S: Schema> std::fmt::Debug for Writer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("name", &self.seg.name())
            .field("mode", &self.inner.mode())
            .field("head", &self.inner.head())
            .finish()
    }
}

impl<R: Record> Writer<R> {
    /// Creates segment `name` for `R` records and becomes its writer, or takes over an
    /// existing one of the same layout and mode whose writer is dead (the last committed
    /// record is kept; a record the dead writer left half-written is repaired).
    ///
    /// Errors: [`Error::InvalidName`], [`Error::InvalidOptions`]; [`Error::WriterAlive`]
    /// if a running process writes the segment; [`Error::LayoutMismatch`] /
    /// [`Error::ModeMismatch`] if it holds other records; [`Error::ForeignOwner`],
    /// [`Error::InsecurePermissions`], [`Error::Symlink`] if the name is not a file this
    /// user can trust; [`Error::NotFlexshm`], [`Error::UnsupportedVersion`],
    /// [`Error::TooSmall`], [`Error::Corrupt`] if the name is taken by something that is
    /// not a usable flexshm segment (which is then left untouched).
    ///
    /// ```
    /// use flexshm_std::{record, CreateOptions, Error, Mode, Writer};
    /// record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tcreate-{}", std::process::id());
    /// let fifo = Writer::<Tick>::create(&name, &CreateOptions::fifo(10))?;
    /// assert_eq!(fifo.mode(), Mode::Fifo { slots: 10 });
    /// // A second writer while the first is alive is refused.
    /// let err = Writer::<Tick>::create(&name, &CreateOptions::fifo(10)).unwrap_err();
    /// assert!(matches!(err, Error::WriterAlive { pid } if pid == std::process::id()));
    /// drop(fifo);
    /// // The first writer is gone: the next one takes the segment over.
    /// let again = Writer::<Tick>::create(&name, &CreateOptions::fifo(10))?;
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn create(name: &str, opts: &CreateOptions) -> Result<Self, Error> {
        let layout = Layout::new(R::FIELDS)?;
        create(name, &layout, opts, |region, fresh| {
            if fresh {
                flexshm_core::Writer::<R>::create(region, opts.mode)
            } else {
                flexshm_core::Writer::<R>::attach(region)
            }
        })
    }

    /// Writes every field of `record`: single-slot mode commits it, FIFO mode stages it
    /// (commit with [`finalize`](Self::finalize)). All-or-nothing: on error nothing is
    /// written.
    pub fn write(&mut self, record: &R) -> Result<(), Error> {
        self.check_role()?;
        self.inner.write(record)?;
        self.after_write();
        Ok(())
    }
}

impl Writer<Dynamic> {
    /// Creates segment `name` for records of `fields`, a schema known at run time (see
    /// [`Writer::<R>::create`](Writer::create) for what happens when the name exists).
    ///
    /// ```
    /// use flexshm_std::{CreateOptions, Dtype, Dynamic, FieldDef, Kind, Value, Writer};
    ///
    /// # let name = format!("flexshm-doc-dyncreate-{}", std::process::id());
    /// let fields = [
    ///     FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
    ///     FieldDef::new("status_msg", Kind::str(32)),
    /// ];
    /// let mut w = Writer::<Dynamic>::create_with_fields(&name, &fields, &CreateOptions::default())?;
    /// w.write_fields(&[(0, Value::Float(23.5)), (1, Value::Str("OK"))])?;
    /// // Out of range for the field: an error naming it, nothing written.
    /// assert!(w.write_named(&[("temperature", Value::Str("hot"))]).is_err());
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn create_with_fields(
        name: &str,
        fields: &[FieldDef],
        opts: &CreateOptions,
    ) -> Result<Self, Error> {
        let fields: SchemaBuf =
            SchemaBuf::from_slice(fields).map_err(|_| flexshm_core::Error::TooManyFields {
                count: fields.len(),
            })?;
        let layout = Layout::new(fields.clone())?;
        create(name, &layout, opts, |region, fresh| {
            if fresh {
                flexshm_core::Writer::<Dynamic>::create(region, fields.clone(), opts.mode)
            } else {
                flexshm_core::Writer::<Dynamic>::attach(region, fields.clone())
            }
        })
    }
}

impl<S: Schema> Writer<S> {
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

    /// Commit number of the newest published record (0 before the first commit).
    pub fn head(&self) -> u32 {
        self.inner.head()
    }

    /// Writes fields given by index (e.g. `SensorData::temperature.index()`); the others
    /// keep their values. Single-slot mode: commits a record at once. FIFO mode: stages
    /// into the pending record. Every value is checked before anything is written: on
    /// error the segment is unchanged.
    pub fn write_fields(&mut self, values: &[(usize, Value<'_>)]) -> Result<(), Error> {
        self.check_role()?;
        self.inner.write_fields(values)?;
        self.after_write();
        Ok(())
    }

    /// Like [`write_fields`](Self::write_fields), storing the fields whose bit is set in
    /// `truncated` with the TRUNCATED status (for bridges and mirrors that copy records
    /// which were already cut at their source).
    pub fn write_fields_truncated(
        &mut self,
        values: &[(usize, Value<'_>)],
        truncated: u64,
    ) -> Result<(), Error> {
        self.check_role()?;
        self.inner.write_fields_truncated(values, truncated)?;
        self.after_write();
        Ok(())
    }

    /// Like [`write_fields`](Self::write_fields), with fields given by name.
    pub fn write_named(&mut self, values: &[(&str, Value<'_>)]) -> Result<(), Error> {
        self.check_role()?;
        self.inner.write_named(values)?;
        self.after_write();
        Ok(())
    }

    /// FIFO mode: commits the pending record (fields not written since the previous
    /// commit keep their values with `modified` cleared), wakes waiting readers and
    /// returns its commit number. Single-slot mode: every write has already committed
    /// itself; this changes nothing and returns the newest commit number.
    pub fn finalize(&mut self) -> Result<u32, Error> {
        self.check_role()?;
        if !self.inner.mode().is_fifo() {
            return Ok(self.inner.head());
        }
        let c = self.inner.finalize();
        self.notifier.committed(&self.seg);
        Ok(c)
    }

    /// A reader of the memory this writer writes: unlike opening the name, it keeps
    /// reading this segment after the name is unlinked or taken by a new segment.
    pub fn reader(&self) -> Result<Reader<S>, Error> {
        Reader::on_segment(Arc::clone(&self.seg), |region| {
            flexshm_core::Reader::<S>::open_layout(region, self.inner.layout().clone())
        })
    }

    fn check_role(&self) -> Result<(), Error> {
        if claim::fork_generation() != self.fork_generation {
            return Err(Error::ForkedWriter {
                name: self.seg.name().to_string(),
                owner_pid: self.me.pid,
            });
        }
        Ok(())
    }

    fn after_write(&mut self) {
        if !self.inner.mode().is_fifo() {
            self.notifier.committed(&self.seg);
        }
    }
}

impl<S: Schema> Drop for Writer<S> {
    fn drop(&mut self) {
        claim::release(&self.seg, self.me);
    }
}

/// Checks that a file an existing name refers to is one this writer may adopt: owned by
/// this user, and not writable by group or others beyond what `requested` grants.
fn check_trusted(shm: &ShmName, file: &ShmFile, requested: u32) -> Result<(), Error> {
    let me = rustix::process::geteuid().as_raw();
    if file.info.uid != me {
        return Err(Error::ForeignOwner {
            name: shm.bare().to_string(),
            owner_uid: file.info.uid,
            permissions: file.info.permissions,
        });
    }
    if file.info.permissions & 0o022 & !requested != 0 {
        return Err(Error::InsecurePermissions {
            name: shm.bare().to_string(),
            permissions: file.info.permissions,
            requested,
        });
    }
    Ok(())
}

/// True if the segment's header is not published: no magic yet (zero), or too small to
/// hold a header.
fn uninitialised(seg: &Segment) -> bool {
    // SAFETY: used only within this call, while `seg` is borrowed.
    let region = unsafe { seg.region_static() };
    matches!(
        flexshm_core::internal::read_schema(&region),
        Err(flexshm_core::Error::BadMagic { found: 0 })
    )
}

/// The creation procedure shared by typed and run-time-schema writers. `make(region,
/// fresh)` makes the core writer: `create` on a new segment, `attach` on an existing one.
fn create<S: Schema, F: AsRef<[FieldDef]>>(
    name: &str,
    layout: &Layout<F>,
    opts: &CreateOptions,
    make: impl Fn(
        Region<'static>,
        bool,
    ) -> Result<flexshm_core::Writer<'static, S>, flexshm_core::Error>,
) -> Result<Writer<S>, Error> {
    let shm = ShmName::parse(name)?;
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
    let total = layout.segment_size(slots)? as u64;
    let fork_generation = claim::fork_generation();
    let fresh = |replace: bool| -> Result<Option<Writer<S>>, Error> {
        // Built complete under a temporary name, then published: no process ever sees
        // the name on a segment that is not initialised and claimed.
        let mut tmp = TempFile::create(&shm, total, opts.permissions)?;
        let file = ShmFile {
            file: tmp.file.file.try_clone()?,
            info: tmp.file.info,
            id: tmp.file.id,
        };
        let seg = Arc::new(Segment::map(&shm, file, true)?);
        // SAFETY: the region is stored in the returned Writer next to the Arc that keeps
        // the mapping alive, and never given out with 'static.
        let region = unsafe { seg.region_static() };
        let inner = make(region, true)?;
        seg.word64(claim::SEGMENT_ID).store(
            claim::new_segment_id().to_le(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let me = claim::take(&seg)?;
        if replace {
            tmp.replace(&shm)?;
        } else if !tmp.publish(&shm)? {
            return Ok(None);
        }
        remove_dead_temporaries();
        Ok(Some(Writer {
            inner,
            me,
            fork_generation,
            notifier: Notifier::default(),
            seg,
        }))
    };
    for _ in 0..CREATE_ATTEMPTS {
        let file = match ShmFile::open(&shm, true) {
            Ok(f) => f,
            Err(Error::NotFound { .. }) => match fresh(false)? {
                Some(w) => return Ok(w),
                // Taken between our look and our link: look again.
                None => continue,
            },
            Err(e) => return Err(e),
        };
        check_trusted(&shm, &file, opts.permissions)?;
        // A name without a published header is replaced only if it looks like what a
        // flexshm creator that died half-way leaves: size 0 (created, never sized) or
        // exactly this segment's size, no live claimant, and no progress for INIT_WAIT.
        // Anything else is another program's and is left alone.
        let size = file.info.size;
        let abandoned_shape = size == 0 || size == total;
        let seg = match Segment::map(&shm, file, true) {
            Ok(s) => Arc::new(s),
            Err(Error::TooSmall { size: 0, .. }) => {
                if wait_for_initialisation(&shm)? {
                    continue;
                }
                return fresh(true)?.ok_or_else(|| unreachable_replace(&shm));
            }
            Err(e) => return Err(e),
        };
        if uninitialised(&seg) {
            if !abandoned_shape {
                return Err(Error::Uninitialised {
                    name: shm.bare().to_string(),
                });
            }
            let holder = claim::claimant(&seg).filter(|c| c.is_alive());
            drop(seg);
            if wait_for_initialisation(&shm)? {
                continue;
            }
            if let Some(c) = holder {
                return Err(Error::WriterAlive { pid: c.pid });
            }
            // Abandoned by a creator that died before publishing its header.
            return fresh(true)?.ok_or_else(|| unreachable_replace(&shm));
        }
        let (found, mode) = seg.schema()?;
        compare(shm.bare(), layout, &found)?;
        if mode != opts.mode {
            return Err(Error::ModeMismatch {
                name: shm.bare().to_string(),
                expected: opts.mode,
                found: mode,
            });
        }
        let me = claim::take(&seg)?;
        // SAFETY: as above: the region lives in the Writer with its mapping.
        let region = unsafe { seg.region_static() };
        return match make(region, false) {
            Ok(inner) => {
                let mut w = Writer {
                    inner,
                    me,
                    fork_generation,
                    notifier: Notifier::default(),
                    seg,
                };
                // Attaching may have published a record the previous writer closed but
                // did not publish (docs/PROTOCOL.md §12.3): wake readers waiting for it,
                // as after any commit (§18.6).
                w.notifier.committed(&w.seg);
                Ok(w)
            }
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

/// Waits up to [`INIT_WAIT`] for the segment `shm` names to get a published header (or to
/// disappear): true if it did.
fn wait_for_initialisation(shm: &ShmName) -> Result<bool, Error> {
    let deadline = Instant::now() + INIT_WAIT;
    while Instant::now() < deadline {
        std::thread::sleep(INIT_POLL);
        match ShmFile::open(shm, false) {
            Err(Error::NotFound { .. }) => return Ok(true),
            Err(e) => return Err(e),
            Ok(file) => match Segment::map(shm, file, false) {
                Ok(seg) if !uninitialised(&seg) => return Ok(true),
                Ok(_) | Err(Error::TooSmall { .. }) => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(false)
}

fn unreachable_replace(shm: &ShmName) -> Error {
    Error::Io(std::io::Error::other(format!(
        "could not replace the abandoned segment '{}'",
        shm.bare()
    )))
}
