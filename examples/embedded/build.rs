//! Picks the memory map for the target's QEMU machine and embeds the golden vectors.
//!
//! - `memory.x` (read by cortex-m-rt's `link.x`): the LM3S6965 map for thumbv7m, the
//!   nRF51822 map for thumbv6m.
//! - `vectors.rs`: one `(name, bytes)` entry per `tests/vectors/<name>.bin`, the bytes
//!   produced on x86_64, embedded with `include_bytes!` so the firmware can compare.
//!   `FLEXSHM_VECTORS_DIR` overrides the directory.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let target = env::var("TARGET").unwrap_or_default();

    println!("cargo::rustc-check-cfg=cfg(machine, values(\"lm3s6965evb\", \"microbit\"))");
    let (memory, machine) = match target.as_str() {
        "thumbv7m-none-eabi" => ("memory/lm3s6965.x", "lm3s6965evb"),
        "thumbv6m-none-eabi" => ("memory/nrf51822.x", "microbit"),
        other => panic!(
            "no memory map for target {other:?}: build with --target thumbv7m-none-eabi \
             (QEMU lm3s6965evb) or --target thumbv6m-none-eabi (QEMU microbit)"
        ),
    };
    println!("cargo:rustc-cfg=machine=\"{machine}\"");
    fs::copy(manifest.join(memory), out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");

    // FLEXSHM_VECTORS_DIR points at another copy of the vectors (e.g. a deliberately
    // broken one, to see the firmware fail).
    println!("cargo:rerun-if-env-changed=FLEXSHM_VECTORS_DIR");
    // defmt's linker script, for the one binary that logs with defmt.
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg-bin=defmt-demo=-Tdefmt.x");
    }

    let dir = env::var_os("FLEXSHM_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../tests/vectors"));
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "bin"))
                .filter_map(|p| {
                    let name = p.file_stem()?.to_str()?.to_owned();
                    Some((name, p.canonicalize().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut src = String::from(
        "/// Golden vectors from `tests/vectors/`: (case name, bytes produced on x86_64).\n\
         pub static EXPECTED: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &names {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(src, "    ({name:?}, include_bytes!({:?})),", path.display()).unwrap();
    }
    src.push_str("];\n");
    fs::write(out.join("vectors.rs"), src).expect("write vectors.rs");
}
