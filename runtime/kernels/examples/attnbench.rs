//! Micro benchmark of `attention` at the shapes Flint runs: an encoder's full attention over one image (Qwen3-Omni's
//! vision tower on a 640x480 frame: 1200 patches, 16 heads of 72; Muse's: 64-wide heads), causal prefill of a text
//! prompt (SmolLM2: 9 heads over 3 KV heads of 64) and decode after a long context. Reports the median time per call
//! and GFLOP/s counting 4 flops per query-key pair and head value (q·k and p·v), on 1 thread and on 2.
//!
//! Run: `cargo run --release -p flint-kernels --example attnbench`.

use flint_kernels::*;
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

struct Case {
    name: &'static str,
    s: AttnShape,
    /// Query rows, and slots before them.
    n: usize,
    p0: usize,
    full: bool,
}

fn main() {
    let shape = |heads, kv_heads, head_dim| AttnShape {
        heads,
        kv_heads,
        head_dim,
    };
    let cases = [
        Case {
            name: "qwen3 vision 1200 full",
            s: shape(16, 16, 72),
            n: 1200,
            p0: 0,
            full: true,
        },
        Case {
            name: "muse vision 1024 full",
            s: shape(16, 16, 64),
            n: 1024,
            p0: 0,
            full: true,
        },
        Case {
            name: "smollm2 prefill 1024",
            s: shape(9, 3, 64),
            n: 1024,
            p0: 0,
            full: false,
        },
        Case {
            name: "smollm2 decode @4096",
            s: shape(9, 3, 64),
            n: 1,
            p0: 4096,
            full: false,
        },
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    println!("{}", cpu_report());
    println!("{:<24} {:>22} {:>22}", "case", "1 thread", "2 threads");
    for c in &cases {
        let (qd, kvd) = (c.s.heads * c.s.head_dim, c.s.kv_heads * c.s.head_dim);
        let keys = c.p0 + c.n;
        let q = rng.vec(c.n * qd);
        let k = rng.vec(keys * kvd);
        let v = rng.vec(keys * kvd);
        let mut out = vec![0f32; c.n * qd];
        let chunk = [KvChunk {
            start: 0,
            k: KvRows::F32(&k),
            v: KvRows::F32(&v),
        }];
        let mask = if c.full { Mask::Full } else { Mask::Causal };
        let pairs: f64 = (0..c.n)
            .map(|t| mask.visible(c.p0 + t, keys).len() as f64)
            .sum();
        let flops = pairs * c.s.heads as f64 * c.s.head_dim as f64 * 4.0;
        let mut line = format!("{:<24}", c.name);
        for threads in [1, 2] {
            let ex = Exec::with_threads(threads);
            let scale = 1.0 / (c.s.head_dim as f32).sqrt();
            let mut run = || attention(&ex, c.s, &q, c.p0, keys, &chunk, mask, scale, &mut out);
            run();
            let reps = ((2e9 / flops) as usize).clamp(5, 2000);
            let mut t: Vec<f64> = (0..reps)
                .map(|_| {
                    let s = Instant::now();
                    run();
                    s.elapsed().as_secs_f64()
                })
                .collect();
            t.sort_by(f64::total_cmp);
            let med = t[t.len() / 2];
            line += &format!(
                "{:>22}",
                format!("{:.3} ms {:.1} GF/s", med * 1e3, flops / med / 1e9)
            );
        }
        println!("{line}");
    }
}
