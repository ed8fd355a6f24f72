//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use flexshm_std::{
    Dtype, Dynamic, FieldDef, FieldStatus, FieldValue, Kind, ReadInfo, ReadOptions, Reader,
    Snapshot,
};

/// A segment name unique to this process and call; unlinked on drop.
pub struct Name(pub String);

impl Name {
    pub fn new(tag: &str) -> Name {
        static N: AtomicU32 = AtomicU32::new(0);
        Name(format!(
            "flexshm-zenoh-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = flexshm_std::unlink(&self.0);
    }
}

/// SensorData plus an array field.
pub fn fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("temperature", Kind::Scalar(Dtype::F64)),
        FieldDef::new("pressure", Kind::Scalar(Dtype::F64)),
        FieldDef::new("timestamp", Kind::Scalar(Dtype::F64)),
        FieldDef::new("status_msg", Kind::str(32)),
        FieldDef::new("seq", Kind::Scalar(Dtype::U32)),
        FieldDef::new("samples", Kind::array(Dtype::I16, &[4, 2])),
    ]
}

/// An owned copy of one record as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub values: Vec<Option<String>>,
    pub status: Vec<FieldStatus>,
}

pub fn seen(buf: &[u8], r: &Reader<Dynamic>, info: &ReadInfo) -> Seen {
    let n = r.layout().fields().len();
    let mut values = Vec::new();
    let mut status = Vec::new();
    for i in 0..n {
        let st = info.status(i);
        status.push(st);
        values.push(if st.written {
            let v = Snapshot::<Dynamic>::new(buf, r.layout(), *info)
                .get(i)
                .unwrap();
            Some(match v {
                FieldValue::Float(x) => format!("f{:x}", x.to_bits()),
                other => format!("{other:?}"),
            })
        } else {
            None
        });
    }
    Seen { values, status }
}

/// Opens `name` once it exists.
pub fn open_when_there(name: &str, timeout: Duration) -> Reader<Dynamic> {
    let t0 = Instant::now();
    loop {
        match Reader::<Dynamic>::open(name) {
            Ok(r) => return r,
            Err(e) if t0.elapsed() > timeout => panic!("{name} did not appear: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads every record of a FIFO reader until `n` were read or `timeout` passes.
pub fn read_fifo(
    r: &mut Reader<Dynamic>,
    n: usize,
    timeout: Duration,
) -> (Vec<Seen>, Vec<ReadInfo>) {
    let mut buf = vec![0u8; r.snapshot_len()];
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut infos = Vec::new();
    while out.len() < n && t0.elapsed() < timeout {
        match r.read_into(&mut buf, ReadOptions::default(), Duration::from_millis(50)) {
            Ok(info) => {
                out.push(seen(&buf, r, &info));
                infos.push(info);
            }
            Err(flexshm_std::Error::Timeout { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    (out, infos)
}
