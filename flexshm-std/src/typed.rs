//! The typed API: a struct declared with [`record!`](crate::record) maps straight to a
//! named segment.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use flexshm_core::{decode_field, Mode, ReadInfo, ReadOptions, Record, Value};

use crate::dynamic::{DynReader, DynWriter};
use crate::error::Error;
use crate::CreateOptions;

/// A named segment of `R` records: the handle that creates it writes (and can read);
/// handles that open it read.
///
/// ```
/// use flexshm_std::{record, CreateOptions, ReadOptions, SharedMemory};
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
/// let name = format!("flexshm-doc-typed-{}", std::process::id());
/// // Writer process
/// let mut shm = SharedMemory::<SensorData>::create(&name, &CreateOptions::default())?;
/// let mut rec = SensorData { temperature: 23.5, pressure: 1013.25, ..Default::default() };
/// rec.status_msg.push_str("OK").unwrap();
/// shm.write(&rec)?;
///
/// // Reader process
/// let mut reader = SharedMemory::<SensorData>::open(&name)?;
/// let mut data = SensorData::default();
/// let info = reader.read(&mut data, ReadOptions::default(), Duration::from_secs(1))?;
/// let temp = info.field(SensorData::temperature);
/// if temp.valid() && temp.modified {
///     println!("Temperature: {}°C", data.temperature);
/// }
/// assert_eq!(data, rec);
/// flexshm_std::unlink(&name)?;
/// # Ok::<(), flexshm_std::Error>(())
/// ```
pub struct SharedMemory<R: Record> {
    writer: Option<DynWriter>,
    reader: DynReader,
    buf: Vec<u8>,
    _r: PhantomData<fn() -> R>,
}

impl<R: Record> std::fmt::Debug for SharedMemory<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.reader.name())
            .field("writer", &self.writer.is_some())
            .field("mode", &self.reader.mode())
            .finish()
    }
}

impl<R: Record> SharedMemory<R> {
    /// Creates segment `name` for `R` records and becomes its writer, or takes over an
    /// existing one of the same layout and mode whose writer is dead (see
    /// [`DynWriter::create`] for the errors).
    ///
    /// ```
    /// use flexshm_std::{record, CreateOptions, Mode, SharedMemory};
    /// record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tcreate-{}", std::process::id());
    /// let fifo = SharedMemory::<Tick>::create(&name, &CreateOptions::fifo(10))?;
    /// assert_eq!(fifo.mode(), Mode::Fifo { slots: 10 });
    /// assert!(fifo.is_writer());
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn create(name: &str, opts: &CreateOptions) -> Result<Self, Error> {
        let writer = DynWriter::create(name, R::FIELDS.to_vec(), opts)?;
        let reader = DynReader::on_segment(Arc::clone(writer.segment()), R::FIELDS.to_vec())?;
        Ok(SharedMemory {
            writer: Some(writer),
            buf: vec![0; reader.snapshot_len()],
            reader,
            _r: PhantomData,
        })
    }

    /// Opens segment `name` for reading; it must hold `R` records
    /// ([`Error::LayoutMismatch`] names the first differing field).
    ///
    /// ```
    /// use flexshm_std::{record, Error, SharedMemory};
    /// record! { pub struct Tick { pub n: u64 } }
    /// let err = SharedMemory::<Tick>::open("flexshm-doc-topen-missing").unwrap_err();
    /// assert!(matches!(err, Error::NotFound { .. }));
    /// ```
    pub fn open(name: &str) -> Result<Self, Error> {
        let reader = DynReader::open(name, Some(R::FIELDS.to_vec()))?;
        Ok(SharedMemory {
            writer: None,
            buf: vec![0; reader.snapshot_len()],
            reader,
            _r: PhantomData,
        })
    }

    /// The segment name, without a leading `/`.
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tname-{}", std::process::id());
    /// let shm = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// assert_eq!(shm.name(), name);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.reader.name()
    }

    /// Single-slot or FIFO (with its slot count).
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory, Mode};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tmode-{}", std::process::id());
    /// let shm = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// assert_eq!(shm.mode(), Mode::Single);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn mode(&self) -> Mode {
        self.reader.mode()
    }

    /// True if this handle created the segment and writes it.
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tiswriter-{}", std::process::id());
    /// let w = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// let r = SharedMemory::<Tick>::open(&name)?;
    /// assert!(w.is_writer() && !r.is_writer());
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn is_writer(&self) -> bool {
        self.writer.is_some()
    }

    fn writer(&mut self) -> Result<&mut DynWriter, Error> {
        match &mut self.writer {
            Some(w) => Ok(w),
            None => Err(Error::NotWriter {
                name: self.reader.name().to_string(),
            }),
        }
    }

    /// Writes every field of `record`: single-slot mode commits it, FIFO mode stages it
    /// (commit with [`finalize`](Self::finalize)). All-or-nothing: on error nothing is
    /// written. [`Error::NotWriter`] on a handle opened for reading.
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory, Error};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-twrite-{}", std::process::id());
    /// let mut w = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// w.write(&Tick { n: 1 })?;
    /// let mut r = SharedMemory::<Tick>::open(&name)?;
    /// assert!(matches!(r.write(&Tick { n: 2 }), Err(Error::NotWriter { .. })));
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn write(&mut self, record: &R) -> Result<(), Error> {
        self.writer()?
            .write_iter((0..R::FIELDS.len()).map(|i| (i, record.value(i))))
    }

    /// Writes some fields by index (e.g. `SensorData::temperature.index()`); the others
    /// keep their values. Same rules as [`write`](Self::write).
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory, Value};
    /// record! { pub struct Pair { pub a: f64, pub b: f64 } }
    /// # let name = format!("flexshm-doc-tfields-{}", std::process::id());
    /// let mut w = SharedMemory::<Pair>::create(&name, &Default::default())?;
    /// w.write_fields(&[(Pair::b.index(), Value::Float(2.0))])?;
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn write_fields(&mut self, values: &[(usize, Value<'_>)]) -> Result<(), Error> {
        self.writer()?.write(values)
    }

    /// FIFO mode: commits the staged record and returns its commit number.
    ///
    /// ```
    /// # use flexshm_std::{record, CreateOptions, SharedMemory};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tfinalize-{}", std::process::id());
    /// let mut fifo = SharedMemory::<Tick>::create(&name, &CreateOptions::fifo(4))?;
    /// fifo.write(&Tick { n: 1 })?;
    /// assert_eq!(fifo.finalize()?, 1);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn finalize(&mut self) -> Result<u32, Error> {
        self.writer()?.finalize()
    }

    /// Reads a record into `out`, waiting up to `timeout` (see [`DynReader::read`]);
    /// returns per-field status, the commit number and (FIFO) the records lost since
    /// the previous read.
    ///
    /// ```
    /// # use flexshm_std::{record, CreateOptions, ReadOptions, SharedMemory};
    /// # use std::time::Duration;
    /// # record! { #[derive(Default)] pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tread-{}", std::process::id());
    /// let mut fifo = SharedMemory::<Tick>::create(&name, &CreateOptions::fifo(4))?;
    /// let mut r = SharedMemory::<Tick>::open(&name)?;
    /// for n in 1..=3 {
    ///     fifo.write(&Tick { n })?;
    ///     fifo.finalize()?;
    /// }
    /// let mut t = Tick::default();
    /// r.read(&mut t, ReadOptions::default(), Duration::from_secs(1))?;
    /// assert_eq!(t.n, 1);
    /// r.read(&mut t, ReadOptions { latest: true, ..Default::default() }, Duration::from_secs(1))?;
    /// assert_eq!(t.n, 3);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn read(
        &mut self,
        out: &mut R,
        opts: ReadOptions,
        timeout: Duration,
    ) -> Result<ReadInfo, Error> {
        let info = self.reader.read(&mut self.buf, opts, timeout)?;
        self.decode(out)?;
        Ok(info)
    }

    /// Reads without waiting (see [`DynReader::try_read`]).
    ///
    /// ```
    /// # use flexshm_std::{record, ReadOptions, SharedMemory};
    /// # record! { #[derive(Default)] pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-ttry-{}", std::process::id());
    /// let mut w = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// let mut t = Tick::default();
    /// let info = w.try_read(&mut t, ReadOptions::default())?;
    /// assert!(info.field(Tick::n).unwritten());
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn try_read(&mut self, out: &mut R, opts: ReadOptions) -> Result<ReadInfo, Error> {
        let info = self.reader.try_read(&mut self.buf, opts)?;
        self.decode(out)?;
        Ok(info)
    }

    fn decode(&self, out: &mut R) -> Result<(), Error> {
        let layout = self.reader.layout();
        for (i, f) in R::FIELDS.iter().enumerate() {
            let v = decode_field(&self.buf, layout, i)?;
            out.set_field(i, v)
                .map_err(|what| flexshm_core::Error::CorruptRecord {
                    field: f.name,
                    what,
                })?;
        }
        Ok(())
    }

    /// Records this handle lost to a lapping FIFO writer since it was opened.
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-tlost-{}", std::process::id());
    /// let r = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// assert_eq!(r.lost_total(), 0);
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn lost_total(&self) -> u64 {
        self.reader.lost_total()
    }

    /// The reading side, for the dynamic calls (`writer_alive`, `wait_commit`, ...).
    ///
    /// ```
    /// # use flexshm_std::{record, SharedMemory};
    /// # record! { pub struct Tick { pub n: u64 } }
    /// # let name = format!("flexshm-doc-treader-{}", std::process::id());
    /// let mut shm = SharedMemory::<Tick>::create(&name, &Default::default())?;
    /// assert_eq!(shm.reader().writer_alive(), Some(true));
    /// # flexshm_std::unlink(&name)?;
    /// # Ok::<(), flexshm_std::Error>(())
    /// ```
    pub fn reader(&mut self) -> &mut DynReader {
        &mut self.reader
    }
}
