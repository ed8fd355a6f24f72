//! How fast a 640×480×3 copy runs with the access widths a seqlock reader could use:
//! `cargo run --release --example copy_width`.
//!
//! flexshm copies payloads with relaxed 32-bit atomic loads (docs/PROTOCOL.md §11.4). This
//! compares that loop with `memcpy`, with relaxed 64-bit atomic loads, and (x86-64 only)
//! with a `rep movsb` copy in inline assembly, which the Rust memory model does not see.
//! The sources here are private memory nobody writes concurrently: this measures the
//! instructions, not a protocol. BENCHMARKS.md cites it for the image targets.
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

const N: usize = 640 * 480 * 3;

fn copy32(src: &[AtomicU32], dst: &mut [u8]) {
    for (d, w) in dst.chunks_exact_mut(4).zip(src) {
        d.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
    }
}

fn copy64(src: &[AtomicU64], dst: &mut [u8]) {
    for (d, w) in dst.chunks_exact_mut(8).zip(src) {
        d.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
fn copy_asm(src: &[AtomicU32], dst: &mut [u8]) {
    assert!(src.len() * 4 >= dst.len());
    // SAFETY: `rep movsb` copies `dst.len()` bytes from `src` (at least as long, checked
    // above) into `dst`, both valid for the whole call and not overlapping; it touches no
    // stack and keeps the direction flag clear (the ABI guarantees it is clear on entry).
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") dst.len() => _,
            inout("rsi") src.as_ptr() as *const u8 => _,
            inout("rdi") dst.as_mut_ptr() => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Median time of `f` over 300 calls, after 20 warm-up calls.
fn median_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f();
    }
    let mut v: Vec<f64> = (0..300)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let w32: Vec<AtomicU32> = (0..N / 4).map(|i| AtomicU32::new(i as u32)).collect();
    let w64: Vec<AtomicU64> = (0..N / 8).map(|i| AtomicU64::new(i as u64)).collect();
    let plain: Vec<u8> = (0..N).map(|i| i as u8).collect();
    let mut dst = vec![0u8; N];
    println!("| round | memcpy | 32-bit relaxed loads | 64-bit relaxed loads | rep movsb (asm) |");
    println!("| --- | --- | --- | --- | --- |");
    for round in 1..=3 {
        let m = median_ns(|| {
            dst.copy_from_slice(black_box(&plain));
            black_box(&mut dst);
        });
        let a = median_ns(|| {
            copy32(black_box(&w32), &mut dst);
            black_box(&mut dst);
        });
        let b = median_ns(|| {
            copy64(black_box(&w64), &mut dst);
            black_box(&mut dst);
        });
        #[cfg(target_arch = "x86_64")]
        let c = format!(
            "{:.2}×",
            median_ns(|| {
                copy_asm(black_box(&w32), &mut dst);
                black_box(&mut dst);
            }) / m
        );
        #[cfg(not(target_arch = "x86_64"))]
        let c = "–".to_string();
        println!(
            "| {round} | {:.1} µs | {:.2}× | {:.2}× | {c} |",
            m / 1e3,
            a / m,
            b / m
        );
    }
}
