//! Memory read bandwidth probe: sums a buffer far larger than the last-level cache on 1 and 2 threads (each thread
//! its own half), the limit the decode figures are compared against ("% of limit" in BENCHMARKS.md).
//!
//! Run: `cargo run --release -p flint-kernels --example bandwidth [-- MIB [REPS]]` (default 1024 MiB, 5 reps).
//! Prints `bandwidth T threads: X GB/s` per thread count: the median over the reps of bytes / wall time.

use std::time::Instant;

/// Sums `x` in 8 independent u64 lanes (the compiler vectorizes it), so the loop is bound by the loads.
fn sum(x: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut c = x.chunks_exact(8);
    for b in &mut c {
        for i in 0..8 {
            acc[i] = acc[i].wrapping_add(b[i]);
        }
    }
    acc.iter()
        .chain(c.remainder())
        .fold(0u64, |a, &b| a.wrapping_add(b))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let n = mib << 17; // u64 values
    let buf: Vec<u64> = (0..n as u64).collect();
    println!("buffer: {mib} MiB, {reps} reps, median");
    for threads in [1usize, 2] {
        let mut gbs = Vec::with_capacity(reps);
        let mut check = 0u64;
        for _ in 0..reps {
            let t = Instant::now();
            let part = n.div_ceil(threads);
            let s: u64 = std::thread::scope(|sc| {
                let hs: Vec<_> = buf.chunks(part).map(|c| sc.spawn(move || sum(c))).collect();
                hs.into_iter()
                    .map(|h| h.join().expect("probe thread"))
                    .fold(0u64, u64::wrapping_add)
            });
            gbs.push((n * 8) as f64 / t.elapsed().as_secs_f64() / 1e9);
            check = check.wrapping_add(s);
        }
        gbs.sort_by(f64::total_cmp);
        println!(
            "bandwidth {threads} threads: {:.1} GB/s (checksum {})",
            gbs[gbs.len() / 2],
            check % 1000
        );
    }
}
