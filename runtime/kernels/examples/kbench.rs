//! Micro benchmark: matvec per weight type at SmolLM2-135M shapes, 1 thread, reported as GB/s of weights read;
//! prefill matmul throughput; and the 2-thread pool vs rayon latency comparison.
//!
//! Run: `cargo run --release -p flint-kernels --example kbench [-- quick]`.
//! Weights are rotated over copies totalling > 4x the L3 size so every matvec streams from DRAM, as in decode.

use flint_kernels::*;
use half::{bf16, f16};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Bytes of weight copies per case: far beyond the 32 MiB L3 here.
const WORKING_SET: usize = 160 << 20;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

enum Owned {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    Q8(Vec<BlockQ8>),
    Q4(Vec<BlockQ4>),
    Q4M(Vec<BlockQ4M>),
    Q2M(Vec<BlockQ2M>),
    Q8x8(Vec<BlockQ8x8>),
    Q4x8(Vec<BlockQ4x8>),
}

impl Owned {
    /// `n` values of a matrix with `cols` columns.
    fn make(t: WeightType, n: usize, cols: usize, rng: &mut Rng) -> Owned {
        let f: Vec<f32> = (0..n).map(|_| rng.f() * 0.1).collect();
        match t {
            WeightType::F32 => Owned::F32(f),
            WeightType::F16 => Owned::F16(f.iter().map(|&v| f16::from_f32(v)).collect()),
            WeightType::BF16 => Owned::BF16(f.iter().map(|&v| bf16::from_f32(v)).collect()),
            WeightType::Q8 => {
                let mut b: Vec<BlockQ8> = vec![bytemuck::Zeroable::zeroed(); n / 32];
                quantize_row_q8(&f, &mut b);
                Owned::Q8(b)
            }
            WeightType::Q4 => {
                let mut b: Vec<BlockQ4> = vec![bytemuck::Zeroable::zeroed(); n / 32];
                quantize_row_q4(&f, &mut b);
                Owned::Q4(b)
            }
            WeightType::Q4M => {
                let mut b: Vec<BlockQ4M> = vec![bytemuck::Zeroable::zeroed(); n / 32];
                quantize_row_q4m(&f, &mut b);
                Owned::Q4M(b)
            }
            WeightType::Q2M => {
                let mut b: Vec<BlockQ2M> = vec![bytemuck::Zeroable::zeroed(); n / 32];
                quantize_row_q2m(&f, None, &mut b);
                Owned::Q2M(b)
            }
            WeightType::Q8X8 => {
                let mut b: Vec<BlockQ8> = vec![bytemuck::Zeroable::zeroed(); n / 32];
                quantize_row_q8(&f, &mut b);
                let mut x = vec![bytemuck::Zeroable::zeroed(); n / 256];
                interleave_q8(&b, cols / 32, &mut x);
                Owned::Q8x8(x)
            }
            WeightType::Q4X8 => {
                let mut b: Vec<BlockQ4> = vec![bytemuck::Zeroable::zeroed(); n / 32];
                quantize_row_q4(&f, &mut b);
                let mut x = vec![bytemuck::Zeroable::zeroed(); n / 256];
                interleave_q4(&b, cols / 32, &mut x);
                Owned::Q4x8(x)
            }
            other => unreachable!("kbench lists no {other} matrices"),
        }
    }
    fn w(&self) -> WeightRef<'_> {
        match self {
            Owned::F32(v) => WeightRef::F32(v),
            Owned::F16(v) => WeightRef::F16(v),
            Owned::BF16(v) => WeightRef::BF16(v),
            Owned::Q8(v) => WeightRef::Q8(v),
            Owned::Q4(v) => WeightRef::Q4(v),
            Owned::Q4M(v) => WeightRef::Q4M(v),
            Owned::Q2M(v) => WeightRef::Q2M(v),
            Owned::Q8x8(v) => WeightRef::Q8x8(v),
            Owned::Q4x8(v) => WeightRef::Q4x8(v),
        }
    }
}

/// This thread's on-CPU nanoseconds (Linux schedstat), so figures survive a busy shared machine; None elsewhere.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Median seconds per call of `f(i)` over `reps` rounds, each round long enough to be timed. Uses this
/// thread's CPU time when `cpu` is set and available (single-thread cases), wall time otherwise.
fn time(mut f: impl FnMut(usize), min_round: Duration, reps: usize, cpu: bool) -> f64 {
    let mut i = 0;
    let mut samples = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        let c0 = cpu_ns().filter(|_| cpu);
        let mut calls = 0;
        while start.elapsed() < min_round {
            f(i);
            i += 1;
            calls += 1;
        }
        let secs = match (c0, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 * 1e-9,
            _ => start.elapsed().as_secs_f64(),
        };
        samples.push(secs / calls as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let active = match select_from_env() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("kbench: {e}");
            std::process::exit(2);
        }
    };
    println!("{}\n", cpu_report());
    let (round, reps) = if quick {
        (Duration::from_millis(60), 3)
    } else {
        (Duration::from_millis(200), 5)
    };
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let shapes = [(576usize, 1536usize), (1536, 576), (49152, 576)];
    let isas: Vec<Isa> = if active == Isa::Scalar {
        vec![Isa::Scalar]
    } else {
        vec![Isa::Scalar, active]
    };

    println!("## matvec, 1 thread, weights streamed from DRAM (GB/s of weights; us per call; thread CPU time)");
    println!(
        "{:<6} {:>12} {}",
        "type",
        "rows x cols",
        isas.iter()
            .map(|i| format!("{:>22}", i.name()))
            .collect::<String>()
    );
    for t in WeightType::ALL {
        for &(rows, cols) in &shapes {
            let one = Owned::make(t, rows * cols, cols, &mut rng);
            let bytes = one.w().bytes();
            let copies = (WORKING_SET / bytes).clamp(1, 64);
            let ws: Vec<Owned> = std::iter::once(one)
                .chain((1..copies).map(|_| Owned::make(t, rows * cols, cols, &mut rng)))
                .collect();
            let x: Vec<f32> = (0..cols).map(|_| rng.f()).collect();
            let mut out = vec![0f32; rows];
            let mut line = format!(
                "{:<6} {:>12}",
                format!("{t:?}").to_lowercase(),
                format!("{rows}x{cols}")
            );
            for &isa in &isas {
                let ex = Exec::single(isa).expect("listed isas are available");
                let s = time(
                    |i| ex.matvec(ws[i % ws.len()].w(), &x, &mut out),
                    round,
                    reps,
                    true,
                );
                line += &format!(
                    "{:>22}",
                    format!("{:.1} GB/s {:.0} us", bytes as f64 / s / 1e9, s * 1e6)
                );
            }
            println!("{line}");
        }
    }

    println!(
        "\n## matvec, 1 thread, one matrix hot in L2 (kernel compute ceiling, GB/s; {active})"
    );
    for t in WeightType::ALL {
        let (rows, cols) = (1536, 576);
        let w = Owned::make(t, rows * cols, cols, &mut rng);
        let x: Vec<f32> = (0..cols).map(|_| rng.f()).collect();
        let mut out = vec![0f32; rows];
        let ex = Exec::single(active).expect("active is available");
        let s = time(|_| ex.matvec(w.w(), &x, &mut out), round, reps, true);
        println!(
            "{:<5} {rows}x{cols}: {:>6.1} GB/s {:>6.0} us",
            format!("{t:?}").to_lowercase(),
            w.w().bytes() as f64 / s / 1e9,
            s * 1e6
        );
    }

    println!("\n## prefill matmul, 1 thread, n = 64 tokens ({active})");
    for t in [
        WeightType::Q8,
        WeightType::Q4,
        WeightType::Q4M,
        WeightType::Q2M,
        WeightType::Q8X8,
        WeightType::Q4X8,
        WeightType::F16,
    ] {
        for &(rows, cols) in &shapes[..2] {
            let w = Owned::make(t, rows * cols, cols, &mut rng);
            let n = 64;
            let x: Vec<f32> = (0..n * cols).map(|_| rng.f()).collect();
            let mut out = vec![0f32; n * rows];
            let ex = Exec::single(active).expect("active is available");
            let s = time(|_| ex.matmul(w.w(), &x, n, &mut out), round, reps, true);
            let s1 = time(
                |_| {
                    for j in 0..n {
                        ex.matvec(
                            w.w(),
                            &x[j * cols..(j + 1) * cols],
                            &mut out[j * rows..(j + 1) * rows],
                        );
                    }
                },
                round,
                reps,
                true,
            );
            println!(
                "{:<5} {:>10}: matmul {:>7.1} GMAC/s, {:>8.0} tok/s-per-matrix; 64 matvecs {:>7.1} GMAC/s",
                format!("{t:?}").to_lowercase(),
                format!("{rows}x{cols}"),
                (n * rows * cols) as f64 / s / 1e9,
                n as f64 / s,
                (n * rows * cols) as f64 / s1 / 1e9
            );
        }
    }

    println!("\n## small batches (decode of 1-4 sequences), 1 thread, weights streamed from DRAM: GB/s of weights, us per call ({active})");
    for t in [WeightType::Q4X8, WeightType::Q8X8] {
        for (rows, cols) in [(1024, 1024), (512, 1024), (1024, 512)] {
            let one = Owned::make(t, rows * cols, cols, &mut rng);
            let copies = (WORKING_SET / one.w().bytes()).clamp(1, 512);
            let ws: Vec<Owned> = std::iter::once(one)
                .chain((1..copies).map(|_| Owned::make(t, rows * cols, cols, &mut rng)))
                .collect();
            let ex = Exec::single(active).expect("active is available");
            let mut line = format!(
                "{:<5} {:>10}:",
                format!("{t:?}").to_lowercase(),
                format!("{rows}x{cols}")
            );
            for n in 1..=4 {
                let x: Vec<f32> = (0..n * cols).map(|_| rng.f()).collect();
                let mut out = vec![0f32; n * rows];
                let s = time(
                    |i| ex.matmul(ws[i % ws.len()].w(), &x, n, &mut out),
                    round,
                    reps,
                    true,
                );
                line += &format!(
                    "  n={n} {:>5.1} GB/s {:>5.0} us",
                    ws[0].w().bytes() as f64 / s / 1e9,
                    s * 1e6
                );
            }
            println!("{line}");
        }
    }

    println!("\n## 2 threads: persistent pool vs rayon vs 1 thread (q4 matvec latency, us per call, wall time, DRAM-streamed)");
    let pool_rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    set_threads(2);
    for &(rows, cols) in &shapes {
        let t = WeightType::Q4;
        let one = Owned::make(t, rows * cols, cols, &mut rng);
        let copies = (WORKING_SET / one.w().bytes()).clamp(1, 64);
        let ws: Vec<Owned> = std::iter::once(one)
            .chain((1..copies).map(|_| Owned::make(t, rows * cols, cols, &mut rng)))
            .collect();
        let x: Vec<f32> = (0..cols).map(|_| rng.f()).collect();
        let mut xq = vec![bytemuck::Zeroable::zeroed(); cols / QK];
        quantize_acts(&x, &mut xq);
        let mut out = vec![0f32; rows];
        let single = Exec::single(active).expect("active is available");
        let t1 = time(
            |i| single.matvec_quantized(ws[i % ws.len()].w(), &xq, &mut out),
            round,
            reps,
            false,
        );
        let tp = time(
            |i| matvec_quantized(ws[i % ws.len()].w(), &xq, &mut out),
            round,
            reps,
            false,
        );
        let chunk = rows.div_ceil(2).next_multiple_of(4);
        let tr = time(
            |i| {
                let w = ws[i % ws.len()].w();
                pool_rayon.install(|| {
                    out.par_chunks_mut(chunk).enumerate().for_each(|(k, o)| {
                        let r0 = k * chunk;
                        single.matvec_quantized(w.slice_rows(cols, r0..r0 + o.len()), &xq, o)
                    })
                })
            },
            round,
            reps,
            false,
        );
        println!(
            "q4 {:>10}: 1 thread {:>7.1}  pool(2) {:>7.1}  rayon(2) {:>7.1}",
            format!("{rows}x{cols}"),
            t1 * 1e6,
            tp * 1e6,
            tr * 1e6
        );
    }
}
