//! Opening that cannot be hijacked, and readers that cannot hurt anyone: read-only
//! mappings, another user's files, files others may write, symbolic links, a creator
//! killed half-way, the longest name, waiting for a segment to appear, a segment
//! replaced under its readers, and a corrupted live FIFO.
//!
//! Tests that need a second user run as root and play `nobody` in a child process; run as
//! another user they say so and stop (CI runs as root).

#![allow(missing_docs)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{child_role, hear, is_root, tell, ChildProc, SegGuard, OTHER_USER};
use flexshm_std::{
    record, CoreError, CreateOptions, Dynamic, Error, FieldValue, Layout, OpenOptions, ReadOptions,
    Reader, Record, Writer,
};

record! {
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct Counter {
        pub n: u64,
        pub tag: str[8],
    }
}

record! {
    /// A large record, so that creating a segment takes long enough to be killed in.
    pub struct Blob {
        pub data: [u8; 4_000_000],
    }
}

fn counter(n: u64) -> Counter {
    let mut c = Counter {
        n,
        ..Default::default()
    };
    c.tag.push_str("ok").unwrap();
    c
}

fn read_n(r: &mut Reader<Counter>) -> Result<u64, Error> {
    Ok(r.read(ReadOptions::default(), Duration::from_secs(5))?
        .record()?
        .n)
}

fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    println!("{test}: SKIPPED: needs root to play a second user (CI runs as root)");
    true
}

/// Runs this process's role if it is a child; true if it was one.
fn dispatch() -> bool {
    let Some((role, seg)) = child_role() else {
        return false;
    };
    match role.as_str() {
        // As another user: create a segment anyone may write, hold it.
        "foreign-writer" => {
            let opts = CreateOptions {
                permissions: 0o666,
                ..Default::default()
            };
            let mut w = Writer::<Counter>::create(&seg, &opts).unwrap();
            w.write(&counter(7)).unwrap();
            tell("READY");
            hear();
        }
        // As another user with read permission only: read, and fail to get more.
        "read-only-user" => {
            let mut r = Reader::<Counter>::open(&seg).unwrap();
            let n = read_n(&mut r).unwrap();
            let rw = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/dev/shm/{seg}"));
            let writer = Writer::<Counter>::create(&seg, &CreateOptions::default());
            tell(&format!(
                "n={n} rw={} writer={}",
                rw.map_or_else(|e| e.kind().to_string(), |_| "opened".into()),
                match writer {
                    Err(Error::PermissionDenied { .. }) => "denied".into(),
                    Err(e) => format!("error:{e}"),
                    Ok(_) => "adopted".into(),
                }
            ));
        }
        // Creates a 4 MB-record FIFO (about 20 MB to initialise) after saying it starts.
        "slow-creator" => {
            tell("START");
            let _w = Writer::<Blob>::create(&seg, &CreateOptions::fifo(4)).unwrap();
            tell("CREATED");
            hear();
        }
        other => panic!("unknown child role {other}"),
    }
    true
}

/// /proc/self/maps lines of the mappings of the file `/dev/shm/<name>` names now (by
/// inode: a writer maps its segment before the name is given to it, so its line shows
/// the temporary name).
fn maps_of(name: &str) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(format!("/dev/shm/{name}")).unwrap().ino();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some(ino.to_string().as_str()))
        .map(str::to_string)
        .collect()
}

/// A reader's mapping of the segment is read-only (and shared); the writer's is
/// read-write.
#[test]
fn a_readers_mapping_is_read_only() {
    if dispatch() {
        return;
    }
    let g = SegGuard::new("maps");
    let w = Writer::<Counter>::create(&g.name, &CreateOptions::default()).unwrap();
    let writer_maps = maps_of(&g.name);
    assert_eq!(writer_maps.len(), 1, "{writer_maps:?}");
    assert!(writer_maps[0].contains(" rw-s "), "{writer_maps:?}");
    let r = Reader::<Counter>::open(&g.name).unwrap();
    let all = maps_of(&g.name);
    let reader: Vec<_> = all.iter().filter(|l| !writer_maps.contains(l)).collect();
    assert_eq!(reader.len(), 1, "{all:?}");
    assert!(
        reader[0].contains(" r--s "),
        "reader mapping: {}",
        reader[0]
    );
    drop((r, w));
}

/// A writer never adopts a segment another user owns, even one anyone may write: the
/// error names the owner and the mode. A reader may still read it (readers trust the
/// owner of the name; `file_info` tells who that is).
#[test]
fn a_writer_refuses_another_users_segment() {
    if dispatch() || skip_unless_root("a_writer_refuses_another_users_segment") {
        return;
    }
    let g = SegGuard::new("foreign");
    let mut other = ChildProc::spawn_as(
        OTHER_USER,
        "a_writer_refuses_another_users_segment",
        "foreign-writer",
        &g.name,
    );
    assert_eq!(other.expect_msg(), "READY");
    let before = g.bytes();
    match Writer::<Counter>::create(&g.name, &CreateOptions::default()) {
        Err(
            e @ Error::ForeignOwner {
                owner_uid: OTHER_USER,
                permissions: 0o666,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(msg.contains("65534") && msg.contains("0666"), "{msg}");
        }
        other => panic!("expected ForeignOwner, got {other:?}"),
    }
    assert_eq!(g.bytes(), before, "nothing written");
    let mut r = Reader::<Counter>::open(&g.name).unwrap();
    assert_eq!(read_n(&mut r).unwrap(), 7);
    assert_eq!(r.file_info().uid, OTHER_USER);
    other.finish();
}

/// A reader needs only read permission: another user with read access reads, cannot
/// open the file for writing (so cannot truncate or change it), and cannot become its
/// writer.
#[test]
fn a_reader_needs_only_read_permission() {
    if dispatch() || skip_unless_root("a_reader_needs_only_read_permission") {
        return;
    }
    let g = SegGuard::new("readonly");
    let opts = CreateOptions {
        permissions: 0o644,
        ..Default::default()
    };
    let mut w = Writer::<Counter>::create(&g.name, &opts).unwrap();
    w.write(&counter(42)).unwrap();
    let mut child = ChildProc::spawn_as(
        OTHER_USER,
        "a_reader_needs_only_read_permission",
        "read-only-user",
        &g.name,
    );
    assert_eq!(
        child.expect_msg(),
        "n=42 rw=permission denied writer=denied"
    );
    child.finish();
}

/// A file other users may write is not adopted unless the writer asked for that mode.
#[test]
fn a_writer_refuses_a_file_others_may_write() {
    if dispatch() {
        return;
    }
    let g = SegGuard::new("insecure");
    let w = Writer::<Counter>::create(&g.name, &CreateOptions::default()).unwrap();
    drop(w);
    std::fs::set_permissions(g.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = g.bytes();
    match Writer::<Counter>::create(&g.name, &CreateOptions::default()) {
        Err(
            e @ Error::InsecurePermissions {
                permissions: 0o666,
                requested: 0o600,
                ..
            },
        ) => assert!(e.to_string().contains("0666"), "{e}"),
        other => panic!("expected InsecurePermissions, got {other:?}"),
    }
    assert_eq!(g.bytes(), before);
    // Asked for: adopted.
    let opts = CreateOptions {
        permissions: 0o666,
        ..Default::default()
    };
    Writer::<Counter>::create(&g.name, &opts).unwrap();
}

/// Symbolic links are never followed, dangling or not: a clear error, and the link's
/// target is left alone.
#[test]
fn symbolic_links_are_refused() {
    if dispatch() {
        return;
    }
    let target = SegGuard::new("linktarget");
    let link = SegGuard::new("link");
    let mut w = Writer::<Counter>::create(&target.name, &CreateOptions::default()).unwrap();
    w.write(&counter(1)).unwrap();
    std::os::unix::fs::symlink(target.path(), link.path()).unwrap();
    let before = target.bytes();
    for dangling in [false, true] {
        if dangling {
            drop(std::mem::replace(
                &mut w,
                Writer::<Counter>::create(&SegGuard::new("x").name, &Default::default()).unwrap(),
            ));
            std::fs::remove_file(target.path()).unwrap();
        }
        let errs = [
            Reader::<Counter>::open(&link.name).unwrap_err(),
            Reader::<Dynamic>::open(&link.name).unwrap_err(),
            Writer::<Counter>::create(&link.name, &CreateOptions::default()).unwrap_err(),
        ];
        for e in errs {
            assert!(
                matches!(&e, Error::Symlink { name } if name == &link.name),
                "dangling={dangling}: {e:?}"
            );
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
    }
    assert!(std::fs::symlink_metadata(link.path())
        .unwrap()
        .file_type()
        .is_symlink());
    drop(before);
}

/// Temporary files of creators whose process is gone, in /dev/shm.
fn temporaries_of(pid: u32) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!(".flexshm-new-{pid}-")))
        .collect()
}

/// A creator killed with SIGKILL at any moment of creation never leaves a name that
/// blocks the next creator: the name appears only once the segment is complete, and
/// what a killed creator leaves under a temporary name is removed by the next one.
#[test]
fn a_creator_killed_half_way_does_not_block_the_name() {
    if dispatch() {
        return;
    }
    let test = "a_creator_killed_half_way_does_not_block_the_name";
    // Kill points spread over the creation (a few to tens of milliseconds).
    for delay_us in [0, 200, 1_000, 3_000, 8_000, 20_000] {
        let g = SegGuard::new("killed");
        let mut c = ChildProc::spawn(test, "slow-creator", &g.name);
        assert_eq!(c.expect_msg(), "START");
        std::thread::sleep(Duration::from_micros(delay_us));
        let pid = c.pid();
        c.kill();
        // Either nothing under the name, or a complete segment: never a half one.
        match Reader::<Blob>::open(&g.name) {
            Ok(r) => assert_eq!(r.head(), 0),
            Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("after a kill at {delay_us} us: {e:?}"),
        }
        let w = Writer::<Blob>::create(&g.name, &CreateOptions::fifo(4))
            .unwrap_or_else(|e| panic!("after a kill at {delay_us} us: {e}"));
        assert!(
            temporaries_of(pid).is_empty(),
            "left behind: {:?}",
            temporaries_of(pid)
        );
        drop(w);
    }
}

/// A name left by a creator that worked under the real name and died before publishing
/// its header (magic still 0, the segment's exact size, no live writer) is replaced;
/// a zero file of another size is another program's and is left alone.
#[test]
fn an_abandoned_uninitialised_segment_is_replaced() {
    if dispatch() {
        return;
    }
    let g = SegGuard::new("abandoned");
    let size = Layout::new(Counter::FIELDS)
        .unwrap()
        .segment_size(1)
        .unwrap();
    std::fs::write(g.path(), vec![0u8; size]).unwrap();
    std::fs::set_permissions(g.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Reader::<Counter>::open(&g.name),
        Err(Error::Uninitialised { .. })
    ));
    let mut w = Writer::<Counter>::create(&g.name, &CreateOptions::default()).unwrap();
    w.write(&counter(3)).unwrap();
    assert_eq!(
        read_n(&mut Reader::<Counter>::open(&g.name).unwrap()).unwrap(),
        3
    );

    let other = SegGuard::new("abandoned");
    std::fs::write(other.path(), vec![0u8; size + 64]).unwrap();
    assert!(matches!(
        Writer::<Counter>::create(&other.name, &CreateOptions::default()),
        Err(Error::Uninitialised { .. })
    ));
    assert_eq!(other.bytes(), vec![0u8; size + 64]);
}

/// The documented limit is the real one: 255 bytes work end to end, 256 are a name
/// error.
#[test]
fn the_longest_name_works_and_one_more_byte_is_a_name_error() {
    if dispatch() {
        return;
    }
    let longest = format!("flexshm-test-long-{}-", std::process::id());
    let longest = format!("{longest}{}", "x".repeat(255 - longest.len()));
    assert_eq!(longest.len(), flexshm_std::MAX_NAME_BYTES);
    let mut w = Writer::<Counter>::create(&longest, &CreateOptions::default()).unwrap();
    w.write(&counter(9)).unwrap();
    assert_eq!(
        read_n(&mut Reader::<Counter>::open(&longest).unwrap()).unwrap(),
        9
    );
    flexshm_std::unlink(&longest).unwrap();
    let too_long = format!("{longest}y");
    for e in [
        Writer::<Counter>::create(&too_long, &CreateOptions::default()).unwrap_err(),
        Reader::<Counter>::open(&too_long).unwrap_err(),
        flexshm_std::unlink(&too_long).unwrap_err(),
    ] {
        assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
    }
}

/// Readers may start before their writer: opening waits for the segment to appear.
#[test]
fn opening_waits_for_the_writer_to_create_the_segment() {
    if dispatch() {
        return;
    }
    let g = SegGuard::new("later");
    let name = g.name.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        tx.send(()).unwrap();
        let opts = OpenOptions {
            timeout: Duration::from_secs(30),
        };
        let mut r = Reader::<Counter>::open_with(&name, &opts).unwrap();
        assert!(r.wait(Duration::from_secs(30)).unwrap());
        read_n(&mut r).unwrap()
    });
    rx.recv().unwrap();
    assert!(!flexshm_std::exists(&g.name));
    let mut w = Writer::<Counter>::create(&g.name, &CreateOptions::default()).unwrap();
    w.write(&counter(5)).unwrap();
    assert_eq!(reader.join().unwrap(), 5);

    // Without a writer the wait ends at its timeout with NotFound.
    let missing = SegGuard::new("never");
    let start = Instant::now();
    let opts = OpenOptions {
        timeout: Duration::from_millis(30),
    };
    assert!(matches!(
        Reader::<Counter>::open_with(&missing.name, &opts),
        Err(Error::NotFound { .. })
    ));
    assert!(start.elapsed() >= Duration::from_millis(30));
}

/// A segment unlinked and created anew under its readers: they learn it (once nothing
/// new arrived for about a second) instead of returning the stale record for ever.
#[test]
fn readers_of_a_replaced_segment_are_told() {
    if dispatch() {
        return;
    }
    for opts in [CreateOptions::default(), CreateOptions::fifo(4)] {
        let g = SegGuard::new("replaced");
        let mut w = Writer::<Counter>::create(&g.name, &opts).unwrap();
        w.write(&counter(1)).unwrap();
        w.finalize().unwrap();
        let mut r = Reader::<Counter>::open(&g.name).unwrap();
        assert_eq!(read_n(&mut r).unwrap(), 1);
        drop(w);
        flexshm_std::unlink(&g.name).unwrap();
        let mut new = Writer::<Counter>::create(&g.name, &opts).unwrap();
        new.write(&counter(2)).unwrap();
        new.finalize().unwrap();
        let start = Instant::now();
        let err = loop {
            match r.read(ReadOptions::default(), Duration::from_secs(10)) {
                // Single-slot: the old record until the check comes round.
                Ok(snap) => assert_eq!(snap.record().unwrap().n, 1),
                Err(e) => break e,
            }
            assert!(start.elapsed() < Duration::from_secs(10), "never told");
        };
        assert!(
            matches!(&err, Error::Replaced { name } if name == &g.name),
            "{opts:?}: {err:?}"
        );
        assert!(err.to_string().contains("open it again"), "{err}");
        // Liveness bound, not a speed check: told within a few seconds, not the 10 s
        // the read was willing to wait.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            read_n(&mut Reader::<Counter>::open(&g.name).unwrap()).unwrap(),
            2
        );
    }
}

/// A live FIFO whose next buffer lost its COMMITTED flag (a corrupting process, a bit
/// flip): a read with a 50 ms timeout returns a clear error at once. It used to spin at
/// full speed for ever, ignoring its timeout (the wait said a record was ready, the read
/// said there was none).
#[test]
fn a_corrupted_live_fifo_gives_an_error_within_the_timeout() {
    if dispatch() {
        return;
    }
    let g = SegGuard::new("corrupt");
    let mut w = Writer::<Counter>::create(&g.name, &CreateOptions::fifo(4)).unwrap();
    let mut r = Reader::<Counter>::open(&g.name).unwrap();
    for n in 1..=3 {
        w.write(&counter(n)).unwrap();
        w.finalize().unwrap();
    }
    assert_eq!(read_n(&mut r).unwrap(), 1);
    // Record 2's buffer (slots_offset at header byte 28, stride at 36): flags word.
    let buffer = g.word(28) as u64 + 2 * g.word(36) as u64;
    g.poke(buffer + 8, &0u32.to_le_bytes());
    let start = Instant::now();
    let err = r
        .read(ReadOptions::default(), Duration::from_millis(50))
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    match &err {
        Error::Core(CoreError::CorruptBuffer { commit: 2, .. }) => {}
        other => panic!("expected CorruptBuffer, got {other:?}"),
    }
    assert!(err.to_string().contains("commit 2"), "{err}");
    // The writer goes on; its next lap rewrites the buffer and the reader, lapped,
    // continues with the loss counted.
    for n in 4..=9 {
        w.write(&counter(n)).unwrap();
        w.finalize().unwrap();
    }
    let snap = r
        .read(ReadOptions::default(), Duration::from_secs(1))
        .unwrap();
    assert_eq!(snap.record().unwrap().n, 6);
    assert_eq!(snap.lost(), 4);
    assert_eq!(
        Reader::<Dynamic>::open(&g.name)
            .unwrap()
            .read(ReadOptions::default(), Duration::ZERO)
            .unwrap()
            .get(0)
            .unwrap(),
        FieldValue::UInt(6)
    );
}
