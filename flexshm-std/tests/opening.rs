//! Opening and creating segments: every error case, and segments truncated or
//! overwritten by another program give clear errors and are left intact.

#![allow(missing_docs)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::SegGuard;
use flexshm_std::{
    record, CreateOptions, Dtype, Dynamic, Error, FieldDef, Kind, Mode, OpenOptions, ReadOptions,
    Reader, Record, Value, Writer, WriterStatus,
};

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct SensorData {
        pub temperature: f64,
        pub pressure: f64,
        pub timestamp: f64,
        pub status_msg: str[32],
    }
}

fn sensor_fields() -> Vec<FieldDef> {
    SensorData::FIELDS.to_vec()
}

/// A segment with one SensorData record and no writer (the writer was dropped).
fn written_segment(test: &str) -> SegGuard {
    let seg = SegGuard::new(test);
    let mut w = Writer::<SensorData>::create(&seg.name, &CreateOptions::default()).unwrap();
    w.write(&SensorData {
        temperature: 23.5,
        ..Default::default()
    })
    .unwrap();
    seg
}

/// Opens `seg` every way there is (reader with and without schema, typed reader, writer)
/// and checks each fails with `check`, leaving the bytes as they were.
fn all_opens_fail(seg: &SegGuard, check: impl Fn(&Error)) {
    let before = seg.bytes();
    let errs = [
        Reader::<Dynamic>::open(&seg.name).unwrap_err(),
        Reader::<Dynamic>::open_expecting(&seg.name, &sensor_fields(), &OpenOptions::default())
            .unwrap_err(),
        Reader::<SensorData>::open(&seg.name).unwrap_err(),
        Writer::<Dynamic>::create_with_fields(
            &seg.name,
            &sensor_fields(),
            &CreateOptions::default(),
        )
        .unwrap_err(),
        Writer::<SensorData>::create(&seg.name, &CreateOptions::default()).unwrap_err(),
    ];
    for e in &errs {
        check(e);
        assert!(
            e.to_string().contains(&seg.name),
            "message names the segment: {e}"
        );
    }
    assert_eq!(seg.bytes(), before, "the segment was left intact");
}

#[test]
fn not_found() {
    let seg = SegGuard::new("missing");
    for e in [
        Reader::<Dynamic>::open(&seg.name).unwrap_err(),
        Reader::<SensorData>::open(&seg.name).unwrap_err(),
        flexshm_std::unlink(&seg.name).unwrap_err(),
    ] {
        match &e {
            Error::NotFound { name } => assert_eq!(name, &seg.name),
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert!(e.to_string().contains("does not exist"));
    }
    assert!(!flexshm_std::exists(&seg.name));
}

#[test]
fn invalid_names() {
    let long = "n".repeat(256);
    for bad in ["", "/", "a/b", "sensors/", "a\0b", "..", long.as_str()] {
        let errs = [
            Reader::<Dynamic>::open(bad).unwrap_err(),
            Writer::<Dynamic>::create_with_fields(bad, &sensor_fields(), &CreateOptions::default())
                .unwrap_err(),
            flexshm_std::unlink(bad).unwrap_err(),
        ];
        for e in errs {
            match &e {
                Error::InvalidName { name, reason } => {
                    assert_eq!(name, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: expected InvalidName, got {other:?}"),
            }
        }
        assert!(!flexshm_std::exists(bad));
    }
}

#[test]
fn leading_slash_names_the_same_segment() {
    let seg = written_segment("slash");
    let r = Reader::<Dynamic>::open(&format!("/{}", seg.name)).unwrap();
    assert_eq!(r.name(), seg.name);
    assert!(std::path::Path::new(&seg.path()).exists(), "/dev/shm/NAME");
}

#[test]
fn not_flexshm() {
    let seg = SegGuard::new("foreign");
    // Another program's shared memory: text, then all zeros (never initialised).
    std::fs::write(seg.path(), b"hello from another program".repeat(100)).unwrap();
    all_opens_fail(&seg, |e| {
        assert!(matches!(e, Error::NotFlexshm { .. }), "{e:?}")
    });
    // Never initialised, and not the size a flexshm creator of this record would have
    // made it: left alone by writers too.
    std::fs::write(seg.path(), vec![0u8; 4096]).unwrap();
    all_opens_fail(&seg, |e| {
        assert!(matches!(e, Error::Uninitialised { .. }), "{e:?}")
    });
    // Too short even for a header.
    std::fs::write(seg.path(), b"tiny").unwrap();
    all_opens_fail(&seg, |e| {
        assert!(matches!(e, Error::TooSmall { size: 4, .. }), "{e:?}")
    });
}

#[test]
fn unsupported_version() {
    let seg = written_segment("version");
    seg.poke(4, &99u32.to_le_bytes());
    all_opens_fail(&seg, |e| {
        assert!(
            matches!(
                e,
                Error::UnsupportedVersion {
                    found: 99,
                    supported: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("version 99"));
    });
}

#[test]
fn layout_mismatch_names_the_field() {
    let seg = written_segment("layout");
    let before = seg.bytes();
    let mut other = sensor_fields();
    other[1] = FieldDef::new("pressure", Kind::Scalar(Dtype::I32));
    let check = |e: Error, field: &str, words: &[&str]| match &e {
        Error::LayoutMismatch { field: f, .. } => {
            assert_eq!(f, field);
            let msg = e.to_string();
            for w in words {
                assert!(msg.contains(w), "{msg} lacks {w}");
            }
        }
        other => panic!("expected LayoutMismatch, got {other:?}"),
    };
    check(
        Reader::<Dynamic>::open_expecting(&seg.name, &other.clone(), &OpenOptions::default())
            .unwrap_err(),
        "pressure",
        &["int32", "float64"],
    );
    check(
        Writer::<Dynamic>::create_with_fields(&seg.name, &other, &CreateOptions::default())
            .unwrap_err(),
        "pressure",
        &["int32"],
    );
    let mut renamed = sensor_fields();
    renamed[2] = FieldDef::new("time", Kind::Scalar(Dtype::F64));
    check(
        Reader::<Dynamic>::open_expecting(&seg.name, &renamed, &OpenOptions::default())
            .unwrap_err(),
        "time",
        &["'timestamp'"],
    );
    let mut longer = sensor_fields();
    longer.push(FieldDef::new("humidity", Kind::Scalar(Dtype::F64)));
    check(
        Reader::<Dynamic>::open_expecting(&seg.name, &longer, &OpenOptions::default()).unwrap_err(),
        "humidity",
        &["only 4 fields"],
    );
    check(
        Reader::<Dynamic>::open_expecting(
            &seg.name,
            &sensor_fields()[..3],
            &OpenOptions::default(),
        )
        .unwrap_err(),
        "status_msg",
        &["only 3"],
    );
    assert_eq!(seg.bytes(), before);
}

#[test]
fn mode_mismatch() {
    let seg = written_segment("mode");
    let before = seg.bytes();
    let e =
        Writer::<Dynamic>::create_with_fields(&seg.name, &sensor_fields(), &CreateOptions::fifo(4))
            .unwrap_err();
    assert!(
        matches!(
            e,
            Error::ModeMismatch {
                expected: Mode::Fifo { slots: 4 },
                found: Mode::Single,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("FIFO with 4 slots"));
    assert_eq!(seg.bytes(), before);
}

#[test]
fn truncated_segment() {
    let seg = written_segment("trunc");
    let full = seg.bytes().len();
    seg.set_len(full as u64 - 64);
    all_opens_fail(&seg, |e| match e {
        Error::TooSmall { needed, size, .. } => {
            assert_eq!((*needed, *size), (full, full - 64));
        }
        other => panic!("expected TooSmall, got {other:?}"),
    });
    // Cut inside the header.
    seg.set_len(100);
    all_opens_fail(&seg, |e| {
        assert!(matches!(e, Error::TooSmall { size: 100, .. }), "{e:?}")
    });
    assert!(std::fs::metadata(seg.path()).unwrap().len() == 100);
}

#[test]
fn corrupt_header_words() {
    let seg = written_segment("corrupt");
    // slot_size (header byte 32) no longer matches the schema.
    let w = seg.word(32);
    seg.poke(32, &(w + 8).to_le_bytes());
    all_opens_fail(&seg, |e| {
        assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("slot size"), "{e}");
    });
    seg.poke(32, &w.to_le_bytes());
    // A schema descriptor entry overwritten with garbage (descriptor at 128, 4-byte
    // count, then 64 bytes per field).
    seg.poke(132 + 64, &[0xFF; 64]);
    all_opens_fail(&seg, |e| {
        assert!(matches!(e, Error::Corrupt { .. }), "{e:?}")
    });
}

#[test]
fn second_writer_in_the_same_process() {
    let seg = SegGuard::new("second");
    let _w = Writer::<Dynamic>::create_with_fields(
        &seg.name,
        &sensor_fields(),
        &CreateOptions::default(),
    )
    .unwrap();
    let before = seg.bytes();
    match Writer::<Dynamic>::create_with_fields(
        &seg.name,
        &sensor_fields(),
        &CreateOptions::default(),
    ) {
        Err(Error::WriterAlive { pid }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected WriterAlive, got {other:?}"),
    }
    assert_eq!(seg.bytes(), before);
}

#[test]
fn permissions() {
    let seg = SegGuard::new("perm");
    let _w = Writer::<Dynamic>::create_with_fields(
        &seg.name,
        &sensor_fields(),
        &CreateOptions::default(),
    )
    .unwrap();
    let mode = std::fs::metadata(seg.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let seg2 = SegGuard::new("perm");
    let opts = CreateOptions {
        permissions: 0o666,
        ..Default::default()
    };
    let _w2 = Writer::<Dynamic>::create_with_fields(&seg2.name, &sensor_fields(), &opts).unwrap();
    let mode = std::fs::metadata(seg2.path()).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o666,
        "exactly what was asked, whatever the umask"
    );

    let bad = CreateOptions {
        permissions: 0o4755,
        ..Default::default()
    };
    assert!(matches!(
        Writer::<Dynamic>::create_with_fields(&SegGuard::new("perm").name, &sensor_fields(), &bad),
        Err(Error::InvalidOptions { .. })
    ));
}

#[test]
fn bad_options_and_fields_create_nothing() {
    let seg = SegGuard::new("badopts");
    let e =
        Writer::<Dynamic>::create_with_fields(&seg.name, &sensor_fields(), &CreateOptions::fifo(0))
            .unwrap_err();
    assert!(matches!(e, Error::InvalidOptions { .. }), "{e:?}");
    let dup = vec![
        FieldDef::new("x", Kind::Scalar(Dtype::F64)),
        FieldDef::new("x", Kind::Scalar(Dtype::F64)),
    ];
    let e = Writer::<Dynamic>::create_with_fields(&seg.name, &dup, &CreateOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("'x'"), "{e}");
    assert!(!flexshm_std::exists(&seg.name));
}

#[test]
fn bad_writes_change_nothing() {
    let seg = SegGuard::new("badwrite");
    let mut w = Writer::<Dynamic>::create_with_fields(
        &seg.name,
        &sensor_fields(),
        &CreateOptions::default(),
    )
    .unwrap();
    w.write_fields(&[(0, Value::Float(1.0))]).unwrap();
    let before = seg.bytes();
    for (vals, word) in [
        (vec![(0, Value::Str("hot"))], "temperature"),
        (
            vec![(0, Value::Float(2.0)), (9, Value::Float(2.0))],
            "unknown",
        ),
        (
            vec![(0, Value::Float(2.0)), (0, Value::Float(3.0))],
            "twice",
        ),
    ] {
        let e = w.write_fields(&vals).unwrap_err();
        assert!(e.to_string().contains(word), "{e}");
    }
    assert!(w.write_named(&[("nope", Value::Float(1.0))]).is_err());
    assert_eq!(seg.bytes(), before, "a rejected write writes nothing");
    assert_eq!(w.head(), 1);
}

#[test]
fn closing_never_unlinks() {
    let seg = written_segment("close");
    let r = Reader::<Dynamic>::open(&seg.name).unwrap();
    drop(r);
    assert!(flexshm_std::exists(&seg.name));
    let mut r =
        Reader::<Dynamic>::open_expecting(&seg.name, &sensor_fields(), &OpenOptions::default())
            .unwrap();
    // Single-slot reads return the latest record at once, even with an endless timeout.
    let snap = r.read(ReadOptions::default(), Duration::MAX).unwrap();
    assert!(snap.status(0).valid());
    assert_eq!(
        r.writer(),
        WriterStatus::None,
        "the dropped writer released its claim"
    );
    assert!(!r.is_replaced());
    flexshm_std::unlink(&seg.name).unwrap();
    assert!(!flexshm_std::exists(&seg.name));
    assert!(r.is_replaced(), "unlinked");
    // A new segment under the same name is not the one this reader maps.
    let _w = Writer::<Dynamic>::create_with_fields(
        &seg.name,
        &sensor_fields(),
        &CreateOptions::default(),
    )
    .unwrap();
    assert!(r.is_replaced(), "recreated");
    assert!(!Reader::<Dynamic>::open(&seg.name).unwrap().is_replaced());
}

#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<Writer<Dynamic>>();
    send::<Reader<Dynamic>>();
    send::<Writer<SensorData>>();
    send::<Reader<SensorData>>();
}

/// Runs a Python snippet with the segment name as `sys.argv[1]`.
fn python(script: &str, name: &str) -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", script, name])
        .output()
        .expect("python3 runs (the project's machines have Python 3.11)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Python's `multiprocessing.shared_memory` and flexshm name the same segment the same
/// way, in both directions.
#[test]
fn names_match_python_multiprocessing() {
    let seg = written_segment("python");
    // Python < 3.13 also registers segments it merely attaches to for deletion at exit;
    // unregister so it leaves ours alone.
    let out = python(
        "import sys\n\
         from multiprocessing import shared_memory, resource_tracker\n\
         s = shared_memory.SharedMemory(name=sys.argv[1])\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         print(bytes(s.buf[:4]).decode(), s.size)\n\
         s.close()\n",
        &seg.name,
    );
    assert_eq!(out, format!("FXSM {}", seg.bytes().len()));
    assert!(flexshm_std::exists(&seg.name));

    // A segment Python created is found by flexshm under the same name (and is not one
    // of ours).
    let other = SegGuard::new("python");
    python(
        "import sys\n\
         from multiprocessing import shared_memory, resource_tracker\n\
         s = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=4096)\n\
         s.buf[:5] = b'hello'\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         s.close()\n",
        &other.name,
    );
    assert!(flexshm_std::exists(&other.name));
    all_opens_fail(&other, |e| {
        assert!(matches!(e, Error::NotFlexshm { .. }), "{e:?}")
    });
}
