//! The `flexshm` tool against real segments: written in this process, by writer
//! processes that are alive, killed or finished, by Python, and copied from the golden
//! vectors. Every segment is named `flexshm-cli-test-<pid>-*` and removed at the end,
//! and every listing is restricted to that prefix with `--match`.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{json, ls_entry, run, Name};
use flexshm_std::{Mode, Value as V};
use serde_json::{json, Value};

/// Not a test: the body of the fixture writer processes (see `common::spawn_fixture`).
#[test]
fn fixture_writer() {
    if let Ok(spec) = std::env::var(common::FIXTURE_ENV) {
        common::fixture_main(&spec);
    }
}

fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Every segment of this test process. Only for listings: tests run in parallel, so a
/// removal must match the calling test's own names (`only("rm-")`).
fn pattern() -> String {
    format!("{}*", common::prefix())
}

/// The names of this test process that start with `tag`.
fn only(tag: &str) -> String {
    format!("{}{tag}*", common::prefix())
}

fn listing() -> Value {
    json(&["ls", "--json", "--match", &pattern()])
}

/// A file that starts like a flexshm segment but whose header is damaged.
fn write_corrupt(name: &Name) {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut bytes = std::fs::read(vectors.join("sensor_single.bin")).expect("vector");
    // flags (offset 8): only bit 0 may be set.
    bytes[8..12].copy_from_slice(&0x80u32.to_le_bytes());
    std::fs::write(name.path(), bytes).expect("write the corrupt segment");
    // Whatever the umask: the listing shows these bits.
    std::fs::set_permissions(
        name.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .expect("chmod");
}

#[test]
fn ls_lists_every_flexshm_segment_with_its_state() {
    let single = Name::new("ls-single");
    let fifo = Name::new("ls-fifo");
    let dead = Name::new("ls-dead");
    let finished = Name::new("ls-finished");
    let corrupt = Name::new("ls-corrupt");
    let truncated = Name::new("ls-truncated");
    let foreign = Name::new("ls-foreign");

    let mut w1 = common::create(single.as_str(), common::all_kinds(), Mode::Single);
    common::write_all_kinds(&mut w1);
    common::write_all_kinds(&mut w1);
    let mut w2 = common::create(fifo.as_str(), common::all_kinds(), Mode::Fifo { slots: 8 });
    for i in 0..5 {
        w2.write_fields(&[(3, V::Int(i))]).unwrap();
        w2.finalize().unwrap();
    }
    let mut crashed = common::spawn_fixture(&format!("fifo:{}", dead.as_str()));
    let dead_pid = crashed.pid();
    crashed.kill();
    let mut done = common::spawn_fixture(&format!("single:{}", finished.as_str()));
    assert!(done.finish().success());
    write_corrupt(&corrupt);
    std::fs::write(
        truncated.path(),
        &flexshm_core::internal::MAGIC.to_le_bytes()[..],
    )
    .unwrap();
    std::fs::write(foreign.path(), b"some other program's shared memory").unwrap();

    let l = listing();
    let me = std::process::id();
    let size = |n: &Name| std::fs::metadata(n.path()).unwrap().len();

    let e = ls_entry(&l, single.as_str()).expect("single listed");
    assert_eq!(e["mode"], "single");
    assert_eq!(e["slots"], 1);
    assert_eq!(e["fields"], 17);
    assert_eq!(e["size"], size(&single));
    assert_eq!(e["record_size"], w1.layout().slot_size());
    assert_eq!(e["writer"], json!({"state": "alive", "pid": me}));
    assert_eq!(e["commit"], 2);
    assert_eq!(e["owner"]["uid"], uid());
    assert_eq!(e["owner"]["permissions"], "0600");
    assert_eq!(e["error"], Value::Null);

    let e = ls_entry(&l, fifo.as_str()).expect("fifo listed");
    assert_eq!(
        (e["mode"].as_str(), e["slots"].as_u64()),
        (Some("fifo"), Some(8))
    );
    assert_eq!(e["commit"], 5);
    assert_eq!(e["writer"]["state"], "alive");

    let e = ls_entry(&l, dead.as_str()).expect("dead listed");
    assert_eq!(e["writer"], json!({"state": "dead", "pid": dead_pid}));
    assert_eq!(e["commit"], 3);
    let e = ls_entry(&l, finished.as_str()).expect("finished listed");
    assert_eq!(e["writer"], json!({"state": "none", "pid": null}));
    assert_eq!(e["commit"], 1);

    let e = ls_entry(&l, corrupt.as_str()).expect("corrupt listed");
    assert_eq!(e["mode"], Value::Null);
    assert_eq!(e["size"], size(&corrupt));
    let err = e["error"].as_str().expect("an error");
    assert!(err.contains("corrupt"), "{err}");
    let e = ls_entry(&l, truncated.as_str()).expect("truncated listed");
    assert!(e["error"].as_str().unwrap().contains("4 bytes"), "{e}");
    assert!(
        ls_entry(&l, foreign.as_str()).is_none(),
        "foreign file skipped"
    );

    // The table: one row per segment, the corrupt one followed by its error.
    let t = run(&["ls", "--match", &pattern()]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let row = |n: &Name| {
        t.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(n.as_str()))
            .unwrap_or_else(|| panic!("no row for {} in\n{}", n.0, t.stdout))
            .to_string()
    };
    let cols: Vec<_> = row(&single).split_whitespace().map(String::from).collect();
    let want = [
        single.0.clone(),
        "single".into(),
        size(&single).to_string(),
        "17".into(),
        me.to_string(),
        "alive".into(),
        "2".into(),
    ];
    assert_eq!(cols[..7], want, "{}", t.stdout);
    assert!(cols[8] == "rw-------", "{}", t.stdout);
    assert!(row(&fifo).contains(" fifo 8 "), "{}", t.stdout);
    assert!(row(&dead).contains(&format!("{dead_pid} dead")));
    let cols: Vec<_> = row(&corrupt).split_whitespace().map(String::from).collect();
    assert_eq!(
        cols[1..],
        [
            "-",
            &size(&corrupt).to_string(),
            "-",
            "-",
            "-",
            &cols[6],
            "rw-r--r--"
        ]
    );
    assert!(!t.stdout.contains(foreign.as_str()));
    let after = t.stdout.split(corrupt.as_str()).nth(1).unwrap();
    assert!(after
        .lines()
        .nth(1)
        .unwrap()
        .trim_start()
        .starts_with("error: corrupt"));
    drop((w1, w2));
}

#[test]
fn show_gives_the_schema_and_every_kind_of_value() {
    let name = Name::new("show");
    let mut w = common::create(name.as_str(), common::all_kinds(), Mode::Single);
    let before = json(&["show", "--json", name.as_str()]);
    assert_eq!(before["commit"], 0);
    assert_eq!(before["record"]["fields"]["flag"]["status"], "unwritten");
    common::write_all_kinds(&mut w);
    let d = json(&["show", "--json", name.as_str()]);
    assert_eq!(d["name"], name.as_str());
    assert_eq!(d["mode"], "single");
    assert_eq!(
        d["writer"],
        json!({"state": "alive", "pid": std::process::id()})
    );
    assert_eq!(d["commit"], 1);

    let layout = w.layout();
    let schema = d["schema"].as_array().unwrap();
    assert_eq!(schema.len(), layout.len());
    for (i, (s, f)) in schema.iter().zip(layout.fields()).enumerate() {
        assert_eq!(s["name"], f.name.as_str());
        assert_eq!(s["type"], f.kind.to_string());
        assert_eq!(s["offset"], layout.offset(i), "{}", f.name);
        assert_eq!(s["size"], layout.size(i), "{}", f.name);
    }
    assert_eq!(schema[15]["type"], "uint8[2,2,3]");

    let r = &d["record"];
    assert_eq!(
        (r["commit"].as_u64(), r["lost"].as_u64()),
        (Some(1), Some(0))
    );
    let f = &r["fields"];
    let valid = |x: Value| json!({"status": "valid", "modified": true, "value": x});
    assert_eq!(f["flag"], valid(json!(true)));
    assert_eq!(f["i8"], valid(json!(-128)));
    assert_eq!(f["i16"], valid(json!(-32768)));
    assert_eq!(f["i32"], valid(json!(-42)));
    assert_eq!(f["i64"], valid(json!(i64::MIN)));
    assert_eq!(f["u8"], valid(json!(255)));
    assert_eq!(f["u16"], valid(json!(65535)));
    assert_eq!(f["u32"], valid(json!(u32::MAX)));
    assert_eq!(f["u64"], valid(json!(u64::MAX)));
    // A float32 prints as the shortest decimal that reads back to the same float32.
    assert_eq!(f["f32"], valid(json!(0.1)));
    assert_eq!(f["f64"], valid(json!(-40.0625)));
    assert_eq!(
        f["label"],
        json!({"status": "truncated", "modified": true, "value": "much t"})
    );
    assert_eq!(f["note"], valid(json!("Grüße 🌍")));
    assert_eq!(
        f["never"],
        json!({"status": "unwritten", "modified": false, "value": null})
    );
    let vec = &f["vec"]["value"];
    assert_eq!(vec["dtype"], "float32");
    assert_eq!(
        (vec["shape"].clone(), vec["capacity"].clone()),
        (json!([3]), json!([4]))
    );
    assert_eq!(
        (vec["min"].clone(), vec["max"].clone()),
        (json!(-2.0), json!(1.5))
    );
    let mean = vec["mean"].as_f64().unwrap();
    assert!(
        (mean - (1.5 - 2.0 + 0.1f32 as f64) / 3.0).abs() < 1e-12,
        "{mean}"
    );
    assert_eq!(vec["first"], json!([1.5, -2.0, 0.1]));
    assert!(vec.get("values").is_none(), "summary only without --full");
    let mat = &f["mat"]["value"];
    assert_eq!(
        (mat["shape"].clone(), mat["capacity"].clone()),
        (json!([2, 2]), json!([3, 2]))
    );
    assert_eq!(
        (mat["min"].clone(), mat["max"].clone()),
        (json!(-32768), json!(300))
    );
    let cube = &f["cube"]["value"];
    assert_eq!(cube["first"], json!([1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(cube["mean"], json!(6.5));

    let full = json(&["show", "--json", "--full", name.as_str()]);
    let ff = &full["record"]["fields"];
    assert_eq!(
        ff["mat"]["value"]["values"],
        json!([[1, -2], [300, -32768]])
    );
    assert_eq!(
        ff["cube"]["value"]["values"],
        json!([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]])
    );

    // Text: a row per field, strings quoted, arrays summarised; --full adds them whole.
    let t = run(&["show", name.as_str()]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    let row = |field: &str| {
        t.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(field))
            .unwrap_or_else(|| panic!("no row {field} in\n{}", t.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let off = |i: usize| layout.offset(i);
    assert_eq!(
        row("f64"),
        format!("f64 float64 {} 8 valid, modified -40.0625", off(10))
    );
    assert_eq!(
        row("label"),
        format!("label str[6] {} 24 truncated, modified \"much t\"", off(11))
    );
    assert_eq!(
        row("never"),
        format!("never uint32 {} 4 unwritten -", off(16))
    );
    assert!(
        row("vec")
            .ends_with("float32 [3] of [4] min -2.0 max 1.5 mean -0.133333 first [1.5, -2.0, 0.1]"),
        "{}",
        row("vec")
    );
    assert!(t
        .stdout
        .contains(&format!("writer   {} alive", std::process::id())));
    let full = run(&["show", "--full", name.as_str()]);
    assert!(
        full.stdout
            .contains("cube (uint8[2,2,3], stored shape [2,2,3]) =\n[[[1, 2, 3],\n  [4, 5, 6]],\n [[7, 8, 9],\n  [10, 11, 12]]]"),
        "{}",
        full.stdout
    );
}

#[test]
fn show_fifo_gives_the_newest_record_and_an_empty_fifo_none() {
    let name = Name::new("show-fifo");
    let mut w = common::create(name.as_str(), common::all_kinds(), Mode::Fifo { slots: 4 });
    let empty = json(&["show", "--json", name.as_str()]);
    assert_eq!(empty["record"], Value::Null);
    assert_eq!(
        (empty["mode"].as_str(), empty["slots"].as_u64()),
        (Some("fifo"), Some(4))
    );
    let t = run(&["show", name.as_str()]);
    assert!(t.stdout.contains("no record committed yet"), "{}", t.stdout);
    for i in 1..=6 {
        w.write_fields(&[(3, V::Int(i * 10))]).unwrap();
        w.finalize().unwrap();
    }
    w.write_fields(&[(3, V::Int(-1))]).unwrap(); // staged, never committed
    let d = json(&["show", "--json", name.as_str()]);
    assert_eq!(d["commit"], 6);
    assert_eq!(d["record"]["commit"], 6);
    assert_eq!(d["record"]["fields"]["i32"]["value"], 60);
    assert_eq!(d["record"]["fields"]["i8"]["status"], "unwritten");
}

/// The golden vectors, copied into /dev/shm as another program would leave them.
#[test]
fn the_golden_vectors_read_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let names: Vec<Name> = ["sensor_single", "all_types", "sensor_fifo"]
        .iter()
        .map(|v| {
            let n = Name::new(&format!("vec-{v}"));
            std::fs::copy(dir.join(format!("{v}.bin")), n.path()).expect("copy the vector");
            n
        })
        .collect();
    let l = listing();
    for n in &names {
        let e = ls_entry(&l, n.as_str()).expect("listed");
        assert_eq!(e["error"], Value::Null, "{e}");
        assert_eq!(e["writer"]["state"], "none", "a core writer claims nothing");
    }

    let s = json(&["show", "--json", names[0].as_str()]);
    assert_eq!(s["commit"], 5);
    let f = &s["record"]["fields"];
    assert_eq!(
        f["temperature"],
        json!({"status": "valid", "modified": false, "value": -40.0625})
    );
    assert_eq!(
        f["pressure"],
        json!({"status": "valid", "modified": true, "value": 998.5})
    );
    assert_eq!(f["timestamp"]["value"], json!(1_700_000_001.0));
    assert_eq!(f["status_msg"]["value"], "Grüße 世界 Привет مرحبا 🌍 ok");

    let a = json(&["show", "--json", "--full", names[1].as_str()]);
    assert_eq!(a["commit"], 3);
    let f = &a["record"]["fields"];
    assert_eq!(f["flag"]["value"], false);
    assert_eq!(f["i64"]["value"], json!(i64::MAX));
    assert_eq!(f["u64"]["value"], json!(u64::MAX));
    assert_eq!(
        f["f32"],
        json!({"status": "valid", "modified": true, "value": -7.0})
    );
    assert_eq!(
        f["name"],
        json!({"status": "truncated", "modified": true, "value": "ñandú"})
    );
    assert_eq!(
        f["vec_f32"]["value"]["values"],
        json!([1.5, -0.25, 3.4028235e38, 1.1754944e-38])
    );
    assert_eq!(f["mat_i16"]["value"]["values"], json!([[10, 11]]));
    assert_eq!(f["mat_i16"]["value"]["capacity"], json!([3, 2]));
    assert_eq!(
        f["cube_u8"]["value"]["values"],
        json!([[[160, 161, 162], [163, 164, 165]]])
    );
    assert_eq!(f["pair_u64"]["status"], "truncated");
    assert_eq!(f["pair_u64"]["value"]["values"], json!([1, 2]));
    assert_eq!(f["bits"]["value"]["shape"], json!([0]));
    assert_eq!(f["bits"]["value"]["min"], Value::Null);
    assert_eq!(f["grid_i8"]["value"]["values"], json!([[-1, 2], [-3, 4]]));

    // The FIFO vector: 7 commits in a ring of 4, the 8th staged and never committed.
    let q = json(&["show", "--json", names[2].as_str()]);
    assert_eq!(
        (q["mode"].as_str(), q["slots"].as_u64()),
        (Some("fifo"), Some(4))
    );
    assert_eq!(q["record"]["commit"], 7);
    assert_eq!(q["record"]["fields"]["temperature"]["value"], 23.0);
    let w = run(&[
        "watch",
        "--json",
        "--from-oldest",
        "--count",
        "4",
        names[2].as_str(),
    ]);
    assert_eq!(w.code, 0, "{}", w.stderr);
    let lines: Vec<Value> = w
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let commits: Vec<_> = lines
        .iter()
        .map(|l| l["commit"].as_u64().unwrap())
        .collect();
    assert_eq!(commits, [4, 5, 6, 7]);
    assert_eq!(
        lines[2]["fields"]["status_msg"],
        json!({"status": "valid", "modified": true, "value": "vent ✓"})
    );
    assert_eq!(
        lines[0]["fields"]["temperature"]["modified"], false,
        "commit 4 wrote nothing"
    );
}

#[test]
fn errors_and_exit_codes() {
    let corrupt = Name::new("err-corrupt");
    write_corrupt(&corrupt);
    let foreign = Name::new("err-foreign");
    std::fs::write(foreign.path(), b"not flexshm").unwrap();
    let missing = Name::new("err-missing");

    let one_line = |r: &common::Run, name: &str, reason: &str| {
        assert_eq!(r.code, 1, "{r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        assert!(
            r.stderr
                .starts_with(&format!("flexshm: segment '{name}': ")),
            "{r:?}"
        );
        assert!(r.stderr.contains(reason), "{r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
    };
    for sub in ["show", "watch", "hz"] {
        let r = run(&[sub, missing.as_str()]);
        one_line(&r, missing.as_str(), "no such segment");
        let r = run(&[sub, foreign.as_str()]);
        one_line(&r, foreign.as_str(), "not a flexshm segment");
        let r = run(&[sub, corrupt.as_str()]);
        one_line(&r, corrupt.as_str(), "corrupt");
    }
    // `/name` and `/dev/shm/name` name the same segment.
    let r = run(&["show", &format!("/dev/shm/{}", missing.as_str())]);
    one_line(&r, missing.as_str(), "no such segment");

    for (args, why) in [
        (vec!["show"], "a missing argument"),
        (vec!["frobnicate"], "an unknown subcommand"),
        (vec!["ls", "--bogus"], "an unknown option"),
        (vec!["rm"], "rm without names or --stale"),
        (vec!["rm", "--stale", "x"], "names with --stale"),
        (vec!["hz", "x", "--window", "0"], "a zero window"),
        (vec!["watch", "x", "--count", "3"], "--count without --json"),
        (vec!["show", "a/b"], "an invalid segment name"),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{why}: {r:?}");
        assert!(!r.stderr.is_empty(), "{why}: says why");
    }
    // The live view needs a terminal.
    let r = run(&["watch", corrupt.as_str()]);
    assert_eq!(r.code, 1);
    let mut w = common::create(&missing.0, common::all_kinds(), Mode::Single);
    common::write_all_kinds(&mut w);
    let r = run(&["watch", missing.as_str()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("needs a terminal"), "{r:?}");
    for sub in ["ls", "show", "watch", "hz", "rm"] {
        let r = run(&[sub, "--help"]);
        assert_eq!(r.code, 0);
        assert!(
            r.stdout.starts_with(char::is_uppercase),
            "{sub}: {}",
            r.stdout
        );
    }
}

#[test]
fn rm_stale_removes_exactly_the_segments_whose_writer_died() {
    let dead1 = Name::new("rm-dead1");
    let dead2 = Name::new("rm-dead2");
    let alive = Name::new("rm-alive");
    let finished = Name::new("rm-finished");
    let corrupt = Name::new("rm-corrupt");
    let mut k1 = common::spawn_fixture(&format!("single:{}", dead1.as_str()));
    let mut k2 = common::spawn_fixture(&format!("fifo:{}", dead2.as_str()));
    let (p1, p2) = (k1.pid(), k2.pid());
    k1.kill();
    k2.kill();
    let mut f = common::spawn_fixture(&format!("single:{}", finished.as_str()));
    assert!(f.finish().success());
    let w = common::create(alive.as_str(), common::all_kinds(), Mode::Single);
    write_corrupt(&corrupt);
    let all = [&dead1, &dead2, &alive, &finished, &corrupt];

    let dry = run(&["rm", "--stale", "-n", "--match", &only("rm-")]);
    assert_eq!(dry.code, 0, "{dry:?}");
    let mut lines: Vec<_> = dry.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("would remove {} (writer {p1} dead)", dead1.0),
            format!("would remove {} (writer {p2} dead)", dead2.0),
        ]
    );
    assert!(all.iter().all(|n| n.exists()), "a dry run removes nothing");

    let r = run(&["rm", "--stale", "--match", &only("rm-")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r
        .stdout
        .contains(&format!("removed {} (writer {p1} dead)", dead1.0)));
    assert!(!dead1.exists() && !dead2.exists());
    assert!(alive.exists() && finished.exists() && corrupt.exists());
    let again = run(&["rm", "--stale", "--match", &only("rm-")]);
    assert_eq!(
        (again.code, again.stdout.trim()),
        (0, "no segment with a dead writer")
    );

    // By name: a live writer is refused (exit 1, nothing removed) unless --force.
    let r = run(&["rm", alive.as_str()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "its writer, process {}, is alive",
            std::process::id()
        )),
        "{r:?}"
    );
    assert!(alive.exists());
    let r = run(&[
        "rm",
        "--force",
        alive.as_str(),
        finished.as_str(),
        corrupt.as_str(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!alive.exists() && !finished.exists() && !corrupt.exists());
    assert!(r
        .stdout
        .contains(&format!("removed {} (writer none)", finished.0)));
    // Missing names: exit 1, the others still go.
    let other = Name::new("rm-other");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sensor_single.bin"),
        other.path(),
    )
    .unwrap();
    let r = run(&["rm", "flexshm-cli-test-no-such-segment", other.as_str()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r
        .stderr
        .contains("'flexshm-cli-test-no-such-segment': no such segment"));
    assert!(!other.exists());
    // Not flexshm: refused without --force.
    let foreign = Name::new("rm-foreign");
    std::fs::write(foreign.path(), b"x").unwrap();
    assert_eq!(run(&["rm", foreign.as_str()]).code, 1);
    assert!(foreign.exists());
    assert_eq!(run(&["rm", "-f", foreign.as_str()]).code, 0);
    assert!(!foreign.exists());
    drop(w);
}

/// Lines of `watch --json` from a running child.
fn watch_child(args: &[&str]) -> (std::process::Child, common::Lines) {
    let mut c = common::command(args).spawn().expect("start watch");
    let lines = common::Lines::new(c.stdout.take().unwrap());
    (c, lines)
}

#[test]
fn watch_json_follows_a_fifo_in_order_and_single_slot_commits() {
    let name = Name::new("watch-fifo");
    let mut w = common::create(name.as_str(), common::all_kinds(), Mode::Fifo { slots: 16 });
    let commit = |w: &mut flexshm_std::Writer<flexshm_std::Dynamic>, i: i64| {
        w.write_fields(&[(3, V::Int(i)), (11, V::Str("ok"))])
            .unwrap();
        w.finalize().unwrap();
    };
    for i in 1..=3 {
        commit(&mut w, i);
    }
    // From the oldest record, with the ring large enough, the result does not depend on
    // when the watcher opens the segment.
    let (child, lines) = watch_child(&[
        "watch",
        "--json",
        "--from-oldest",
        "--count",
        "6",
        name.as_str(),
    ]);
    for i in 4..=6 {
        commit(&mut w, i);
    }
    let got: Vec<Value> = (0..6)
        .map(|_| serde_json::from_str(&lines.next("watch")).unwrap())
        .collect();
    let r = common::finish(child, &["watch"]);
    assert_eq!(r.code, 0, "{r:?}");
    for (k, l) in got.iter().enumerate() {
        assert_eq!(l["name"], name.as_str());
        assert_eq!(l["commit"], k as u64 + 1);
        assert_eq!(l["lost"], 0);
        assert_eq!(
            l["fields"]["i32"],
            json!({"status": "valid", "modified": true, "value": k + 1})
        );
        assert_eq!(l["fields"]["label"]["value"], "ok");
        assert!(l["received"].as_f64().unwrap() > 1.6e9);
    }

    // Single slot: the current record first, then each new one.
    let single = Name::new("watch-single");
    let mut s = common::create(single.as_str(), common::all_kinds(), Mode::Single);
    s.write_fields(&[(11, V::Str("first"))]).unwrap();
    let (child, lines) = watch_child(&["watch", "--json", "--count", "2", single.as_str()]);
    let first: Value = serde_json::from_str(&lines.next("watch")).unwrap();
    assert_eq!(
        (
            first["commit"].as_u64(),
            first["fields"]["label"]["value"].as_str()
        ),
        (Some(1), Some("first"))
    );
    // The watcher has read commit 1: the next write is the one it waits for.
    s.write_fields(&[(11, V::Str("second"))]).unwrap();
    let second: Value = serde_json::from_str(&lines.next("watch")).unwrap();
    assert_eq!(second["commit"], 2);
    assert_eq!(
        second["fields"]["label"],
        json!({"status": "valid", "modified": true, "value": "second"})
    );
    assert_eq!(second["fields"]["i8"]["status"], "unwritten");
    assert_eq!(common::finish(child, &["watch"]).code, 0);
}

#[test]
fn watch_json_stops_quietly_when_the_pipe_closes() {
    use std::io::BufRead;
    let name = Name::new("watch-pipe");
    let mut w = common::create(name.as_str(), common::all_kinds(), Mode::Fifo { slots: 4 });
    w.write_fields(&[(3, V::Int(1))]).unwrap();
    w.finalize().unwrap();
    let mut child = common::command(&["watch", "--json", name.as_str()])
        .spawn()
        .expect("start watch");
    // Read the first line, then close the pipe (as `| head -n 1` does).
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send((line, r));
    });
    let (line, reader) = rx.recv_timeout(common::DEADLINE).expect("a first line");
    assert!(line.contains("\"commit\":1"), "{line}");
    drop(reader);
    // The next record's line meets the closed pipe: the watcher ends, quietly, with 0.
    for i in 0..3 {
        w.write_fields(&[(3, V::Int(i))]).unwrap();
        w.finalize().unwrap();
    }
    let r = common::finish(child, &["watch"]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn hz_measures_a_writer_committing_every_10_ms() {
    let name = Name::new("hz");
    let mut w = common::create(name.as_str(), common::all_kinds(), Mode::Single);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                w.write_fields(&[(3, V::Int(i))]).unwrap();
                // The writer's pace (what hz measures), not synchronisation.
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let r = run(&[
        "hz",
        "--json",
        "--count",
        "2",
        "--interval",
        "0.5",
        name.as_str(),
    ]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(r.code, 0, "{r:?}");
    let reports: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    let last = &reports[1];
    let rate = last["rate_hz"].as_f64().expect("a rate");
    // 100 Hz nominal: sleep overshoot and a loaded machine make it slower; a late first
    // wake-up can make the measured window look a little shorter (faster).
    assert!((20.0..=130.0).contains(&rate), "{last}");
    let (min, mean, max) = (
        last["period_min_s"].as_f64().unwrap(),
        last["period_mean_s"].as_f64().unwrap(),
        last["period_max_s"].as_f64().unwrap(),
    );
    assert!(min <= mean && mean <= max && min > 0.0, "{last}");
    assert!((mean - 1.0 / rate).abs() < 1e-9);
    assert!(last["jitter_s"].as_f64().unwrap() >= 0.0);
    assert!(last["new_commits"].as_u64().unwrap() > 5, "{last}");
    assert_eq!(last["writer"]["state"], "alive");
    let window = last["window"].as_u64().unwrap();
    assert!(window <= 100 && window + 1 >= last["commits"].as_u64().unwrap().min(100));
}

#[test]
fn hz_text_says_when_nothing_is_committed() {
    let name = Name::new("hz-idle");
    let _w = common::create(name.as_str(), common::all_kinds(), Mode::Single);
    let r = run(&["hz", "--count", "1", "--interval", "0.2", name.as_str()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout.trim(),
        format!("no new commits  writer {} alive", std::process::id())
    );
}

/// Segments written by the Python package: every annotation kind, single-slot and
/// FIFO, read while the Python writer runs and after it is killed.
#[test]
fn python_written_segments() {
    let py = match common::python() {
        Ok(p) => p,
        Err(why) if !common::required("FLEXSHM_CLI_REQUIRE_PY") => {
            common::say_skipped("python_written_segments", &why);
            return;
        }
        Err(why) => panic!("FLEXSHM_CLI_REQUIRE_PY=1 but {why}"),
    };
    let single = Name::new("py-single");
    let fifo = Name::new("py-fifo");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/writer.py");
    let mut child = std::process::Command::new(py)
        .arg(&script)
        .args([single.as_str(), fifo.as_str()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the Python writer");
    let lines = common::Lines::new(child.stdout.take().unwrap());
    let mut p = common::Proc(Some(child));
    lines.wait_for("READY", "the Python writer");

    let d = json(&["show", "--json", "--full", single.as_str()]);
    assert_eq!(d["writer"], json!({"state": "alive", "pid": p.pid()}));
    let types: Vec<_> = d["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "bool",
            "int32",
            "float64",
            "uint16",
            "float32",
            "str[8]",
            "float32[4]",
            "uint8[2,3]",
            "int64"
        ]
    );
    let f = &d["record"]["fields"];
    let valid = |x: Value| json!({"status": "valid", "modified": true, "value": x});
    assert_eq!(f["flag"], valid(json!(true)));
    assert_eq!(f["count"], valid(json!(-42)));
    assert_eq!(f["temperature"], valid(json!(21.5)));
    assert_eq!(f["small"], valid(json!(65535)));
    assert_eq!(f["ratio"], valid(json!(0.25)));
    assert_eq!(
        f["label"],
        json!({"status": "truncated", "modified": true, "value": "a long l"})
    );
    assert_eq!(f["samples"]["value"]["shape"], json!([3]));
    assert_eq!(f["samples"]["value"]["values"], json!([1.5, -2.0, 3.25]));
    assert_eq!(f["image"]["value"]["values"], json!([[0, 1, 2], [3, 4, 5]]));
    assert_eq!(
        f["never"],
        json!({"status": "unwritten", "modified": false, "value": null})
    );

    let q = json(&["show", "--json", fifo.as_str()]);
    assert_eq!(
        (
            q["mode"].as_str(),
            q["slots"].as_u64(),
            q["commit"].as_u64()
        ),
        (Some("fifo"), Some(4), Some(6))
    );
    assert_eq!(q["record"]["fields"]["count"]["value"], 5);
    let w = run(&[
        "watch",
        "--json",
        "--from-oldest",
        "--count",
        "4",
        fifo.as_str(),
    ]);
    let counts: Vec<_> = w
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["fields"]["count"]["value"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(counts, [2, 3, 4, 5]);

    // Killed: both segments have a dead writer, and rm --stale takes exactly them.
    let pid = p.pid();
    p.kill();
    let l = listing();
    for n in [&single, &fifo] {
        assert_eq!(
            ls_entry(&l, n.as_str()).unwrap()["writer"],
            json!({"state": "dead", "pid": pid})
        );
    }
    let r = run(&["rm", "--stale", "--match", &only("py-")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!single.exists() && !fifo.exists());
}

/// Segment and field names are anyone's bytes: terminal escape sequences and newlines
/// in them are printed escaped, never raw.
#[test]
fn hostile_names_are_escaped_in_text_output() {
    use flexshm_std::{Dtype, FieldDef, Kind};
    let name = Name::new("esc\u{1b}[2J\nfake-row");
    let field = "f\u{1b}]0;owned\u{7}";
    let mut w = common::create(
        name.as_str(),
        vec![
            FieldDef::new(field, Kind::Scalar(Dtype::U8)),
            FieldDef::new("text", Kind::str(8)),
        ],
        Mode::Single,
    );
    w.write_fields(&[(0, V::UInt(1)), (1, V::Str("\u{1b}[31mred"))])
        .unwrap();
    let raw = |s: &str| s.contains('\u{1b}') || s.contains('\u{7}');
    let l = run(&["ls", "--match", &pattern()]);
    assert_eq!(l.code, 0, "{l:?}");
    assert!(!raw(&l.stdout), "{:?}", l.stdout);
    assert!(
        l.stdout.contains("esc\\u{1b}[2J\\nfake-row"),
        "{:?}",
        l.stdout
    );
    assert!(!l.stdout.lines().any(|x| x.starts_with("fake-row")));
    let s = run(&["show", name.as_str()]);
    assert_eq!(s.code, 0, "{s:?}");
    assert!(!raw(&s.stdout), "{:?}", s.stdout);
    assert!(s.stdout.contains("\"\\u{1b}[31mred\""), "{:?}", s.stdout);
    // JSON carries the names exactly (JSON escapes control characters itself).
    let j = json(&["show", "--json", name.as_str()]);
    assert_eq!(j["name"], name.as_str());
    assert_eq!(j["schema"][0]["name"], field);
    let r = run(&["rm", name.as_str()]);
    assert_eq!(r.code, 1);
    assert!(
        !raw(&r.stderr) && r.stderr.lines().count() == 1,
        "{:?}",
        r.stderr
    );
    drop(w);
}

/// Damaged segments never crash the tool: the golden vectors with bytes of the header,
/// the frontend words, the schema descriptor and the records overwritten at random
/// (a fixed seed). `show` answers 0 or 1, `ls` lists all of them with 0.
#[test]
fn damaged_segments_never_crash_the_tool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |n: usize| {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    };
    let mut names = Vec::new();
    for v in ["sensor_single", "all_types", "sensor_fifo"] {
        let clean = std::fs::read(dir.join(format!("{v}.bin"))).unwrap();
        for k in 0..40 {
            let mut b = clean.clone();
            for _ in 0..1 + rand(6) {
                // Mostly the header and the descriptor, where validation decides.
                let i = match rand(4) {
                    0 => 4 + rand(124),
                    1 | 2 => 128 + rand(b.len().min(1300) - 128),
                    _ => 4 + rand(b.len() - 4),
                };
                b[i] = rand(256) as u8;
            }
            let n = Name::new(&format!("fuzz-{v}-{k}"));
            std::fs::write(n.path(), &b).unwrap();
            names.push(n);
        }
    }
    let mut outcomes = [0; 2];
    for n in &names {
        let r = run(&["show", "--json", "--full", n.as_str()]);
        assert!(
            (r.code == 0 || r.code == 1) && !r.stderr.contains("panicked"),
            "show {}: {r:?}",
            n.0
        );
        outcomes[r.code as usize] += 1;
        if r.code == 1 {
            assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
        }
    }
    // Both kinds of outcome happened: the damage was neither always fatal nor harmless.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
    let l = listing();
    for n in &names {
        assert!(ls_entry(&l, n.as_str()).is_some(), "{} not listed", n.0);
    }
}

/// A string field whose stored bytes are not UTF-8 (damaged after it was written) is
/// shown with the reason; the other fields are still shown.
#[test]
fn an_undecodable_field_is_reported_not_fatal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut b = std::fs::read(dir.join("sensor_single.bin")).unwrap();
    let text = "Grüße".as_bytes();
    let at = b
        .windows(text.len())
        .rposition(|w| w == text)
        .expect("the latest status_msg in the vector");
    b[at + 2] = 0xFF; // the first byte of 'ü'
    let n = Name::new("bad-utf8");
    std::fs::write(n.path(), &b).unwrap();
    let d = json(&["show", "--json", n.as_str()]);
    let f = &d["record"]["fields"];
    assert_eq!(f["status_msg"]["value"], Value::Null);
    assert_eq!(f["status_msg"]["status"], "valid");
    let err = f["status_msg"]["error"].as_str().expect("an error");
    assert!(err.contains("UTF-8"), "{err}");
    assert_eq!(f["pressure"]["value"], 998.5);
    let t = run(&["show", n.as_str()]);
    assert_eq!(t.code, 0, "{t:?}");
    assert!(
        t.stdout
            .contains("<corrupt: the string is not valid UTF-8>"),
        "{}",
        t.stdout
    );
}
