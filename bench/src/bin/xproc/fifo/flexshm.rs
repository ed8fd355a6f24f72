//! flexshm FIFOs: SensorData through the typed writer and reader, images through a
//! run-time schema. The producer never waits; records the consumer could not keep up
//! with are lost and counted.

use flexshm_bench::{
    sample_sensor, segment_size, SensorData, ShmFile, IMAGE_FIELDS, IMG_BYTES, IMG_C, IMG_H, IMG_W,
};
use flexshm_core::{
    ArrayRef, Dtype, Dynamic, Error, FieldDef, Mode, ReadOptions, Reader, Record, Value, Writer,
};

use super::Fifo;
use crate::Res;

/// The producer's writer or the consumer's reader of one segment.
enum Side<W, R> {
    Producer(W),
    Consumer(R),
}

impl<W, R> Side<W, R> {
    fn writer(&mut self) -> &mut W {
        match self {
            Side::Producer(w) => w,
            Side::Consumer(_) => panic!("the consumer does not produce"),
        }
    }
    fn reader(&mut self) -> &mut R {
        match self {
            Side::Consumer(r) => r,
            Side::Producer(_) => panic!("the producer does not consume"),
        }
    }
}

/// FIFO of SensorData, `Writer<SensorData>` / `Reader<SensorData>`. The producer numbers
/// its records (in `timestamp`) and the consumer checks their order.
pub struct SensorFifo {
    _file: ShmFile,
    side: Side<Writer<'static, SensorData>, Reader<'static, SensorData>>,
    rec: SensorData,
    out: SensorData,
    buf: Vec<u8>,
    /// Producer: the number of the last record produced. Consumer: of the last one read.
    seq: u64,
    /// Consumer: reads whose record did not follow the previous one by exactly the
    /// reported loss (a duplicate, a reordering or a miscounted loss).
    misordered: u64,
}

impl SensorFifo {
    pub fn new(tag: &str, slots: u32, producer: bool) -> Res<Self> {
        let mode = Mode::Fifo { slots };
        let name = format!("flexshm-bench-{tag}-fifo-sensor");
        let (file, side) = if producer {
            let f = ShmFile::create(&name, segment_size(SensorData::FIELDS, mode))?;
            let w = Writer::<SensorData>::create(f.region(), mode)?;
            (f, Side::Producer(w))
        } else {
            let f = ShmFile::open_read_only(&name)?;
            let r = Reader::<SensorData>::open(f.region())?;
            (f, Side::Consumer(r))
        };
        Ok(SensorFifo {
            _file: file,
            side,
            rec: sample_sensor(0),
            out: SensorData::default(),
            buf: vec![0; SensorData::SNAPSHOT_LEN],
            seq: 0,
            misordered: 0,
        })
    }
}

impl Fifo for SensorFifo {
    fn produce(&mut self, _i: u64) {
        self.seq += 1;
        self.rec.timestamp = self.seq as f64;
        let w = self.side.writer();
        w.write(&self.rec).expect("flexshm write");
        w.finalize();
    }

    fn consume(&mut self) -> (u64, u64) {
        let r = self.side.reader();
        let (mut n, mut lost) = (0, 0);
        loop {
            let read = r
                .try_read(&mut self.buf, ReadOptions::default())
                .and_then(|snap| snap.decode(&mut self.out));
            match read {
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

type Image = Dynamic<&'static [FieldDef]>;

/// FIFO of images, a run-time schema (`Dynamic`).
pub struct ImageFifo {
    _file: ShmFile,
    side: Side<Writer<'static, Image>, Reader<'static, Image>>,
    img: Vec<u8>,
    buf: Vec<u8>,
}

impl ImageFifo {
    pub fn new(tag: &str, slots: u32, producer: bool) -> Res<Self> {
        let mode = Mode::Fifo { slots };
        let name = format!("flexshm-bench-{tag}-fifo-image");
        let (file, side) = if producer {
            let f = ShmFile::create(&name, segment_size(IMAGE_FIELDS, mode))?;
            let w = Writer::<Image>::create(f.region(), IMAGE_FIELDS, mode)?;
            (f, Side::Producer(w))
        } else {
            let f = ShmFile::open_read_only(&name)?;
            let r = Reader::<Image>::open_with(f.region(), IMAGE_FIELDS)?;
            (f, Side::Consumer(r))
        };
        let len = match &side {
            Side::Consumer(r) => r.snapshot_len(),
            Side::Producer(_) => 0,
        };
        Ok(ImageFifo {
            _file: file,
            side,
            img: (0..IMG_BYTES).map(|i| (i % 251) as u8).collect(),
            buf: vec![0; len],
        })
    }
}

impl Fifo for ImageFifo {
    fn produce(&mut self, i: u64) {
        self.img[..8].copy_from_slice(&i.to_le_bytes());
        let a = ArrayRef::new(Dtype::U8, &[IMG_H, IMG_W, IMG_C], &self.img).unwrap();
        let w = self.side.writer();
        w.write_fields(&[(0, Value::Array(a))])
            .expect("flexshm write");
        w.finalize();
    }

    fn consume(&mut self) -> (u64, u64) {
        let r = self.side.reader();
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
