//! Quantizers, block layout, threads and dispatch.

mod common;

use common::Rng;
use flint_kernels::*;
use half::f16;

fn zeroed<T: bytemuck::Zeroable + Clone>(n: usize) -> Vec<T> {
    vec![T::zeroed(); n]
}

#[test]
fn block_sizes_and_ids() {
    let want = [
        (0u8, 1usize, 4usize),
        (1, 1, 2),
        (2, 1, 2),
        (16, 32, 34),
        (17, 32, 18),
        (18, 32, 20),
        (19, 32, 272),
        (20, 32, 144),
        (21, 32, 12),
    ];
    for (t, (id, elems, bytes)) in WeightType::ALL.into_iter().zip(want) {
        assert_eq!(
            (t.id(), t.block_elems(), t.block_bytes()),
            (id, elems, bytes),
            "{t:?}"
        );
    }
    assert_eq!(WeightType::Q4.bits_per_weight(), 4.5);
    assert_eq!(WeightType::Q4M.bits_per_weight(), 5.0);
    assert_eq!(WeightType::Q2M.bits_per_weight(), 3.0);
}

#[test]
fn q2m_layout_and_levels() {
    // Four levels 0, 1, 2, 3 at d = 0.5, m = -1: element i holds level i % 4 ... exactly representable.
    let x: Vec<f32> = (0..32)
        .map(|i| -1.0 + 0.5 * ((i / 8 + i) % 4) as f32)
        .collect();
    let mut b = zeroed::<BlockQ2M>(1);
    quantize_row_q2m(&x, None, &mut b);
    let mut y = vec![0.0; 32];
    dequantize_row_q2m(&b, &mut y);
    assert_eq!(x, y, "exactly representable values come back exactly");
    for j in 0..8 {
        for k in 0..4 {
            let want = ((j + 8 * k) / 8 + j + 8 * k) % 4;
            assert_eq!(
                (b[0].qs[j] >> (2 * k)) & 3,
                want as u8,
                "byte {j} bits {} hold element {}",
                2 * k,
                j + 8 * k
            );
        }
    }
    // A constant block: d = 0, every value the offset.
    quantize_row_q2m(&[0.75; 32], None, &mut b);
    dequantize_row_q2m(&b, &mut y);
    assert!(y.iter().all(|&v| v == 0.75));
}

#[test]
fn q2m_search_beats_min_max_and_follows_importance() {
    let mut rng = Rng(11);
    let x = rng.vec(32 * 64, 1.0);
    let mut b = zeroed::<BlockQ2M>(64);
    let mut y = vec![0.0; x.len()];
    // Plain min/max levels, the search's first candidate.
    let minmax_err: f32 = x
        .chunks(32)
        .map(|xb| {
            let lo = xb.iter().fold(f32::MAX, |a, &v| a.min(v));
            let hi = xb.iter().fold(f32::MIN, |a, &v| a.max(v));
            let (d, m) = (
                f16::from_f32((hi - lo) / 3.0).to_f32(),
                f16::from_f32(lo).to_f32(),
            );
            xb.iter()
                .map(|&v| (v - (d * ((v - m) / d).round().clamp(0.0, 3.0) + m)).powi(2))
                .sum::<f32>()
        })
        .sum();
    quantize_row_q2m(&x, None, &mut b);
    dequantize_row_q2m(&b, &mut y);
    let err: f32 = x.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum();
    assert!(
        err < 0.9 * minmax_err,
        "search {err} against min/max {minmax_err}"
    );
    // Importance on the first half of each block: that half's error drops.
    let imp: Vec<f32> = (0..x.len())
        .map(|i| if i % 32 < 16 { 100.0 } else { 1.0 })
        .collect();
    let mut bw = zeroed::<BlockQ2M>(64);
    let mut yw = vec![0.0; x.len()];
    quantize_row_q2m(&x, Some(&imp), &mut bw);
    dequantize_row_q2m(&bw, &mut yw);
    let half_err = |y: &[f32]| -> f32 {
        x.iter()
            .zip(y)
            .enumerate()
            .filter(|(i, _)| i % 32 < 16)
            .map(|(_, (a, b))| (a - b).powi(2))
            .sum()
    };
    assert!(
        half_err(&yw) < 0.97 * half_err(&y),
        "weighted {} against unweighted {}",
        half_err(&yw),
        half_err(&y)
    );
}

#[test]
fn q4_layout_is_ggml_q4_0() {
    // Element i = i - 16 + ... : pick values whose nibbles we know. max |x| = -8 * d with d = 1.
    let x: Vec<f32> = (0..32).map(|i| (i % 16) as f32 - 8.0).collect();
    let mut b = zeroed::<BlockQ4>(1);
    quantize_row_q4(&x, &mut b);
    assert_eq!(b[0].d.to_f32(), 1.0);
    for j in 0..16 {
        assert_eq!(b[0].qs[j] & 15, j as u8, "low nibble holds element j");
        assert_eq!(b[0].qs[j] >> 4, j as u8, "high nibble holds element j + 16");
    }
    let mut y = vec![0.0; 32];
    dequantize_row_q4(&b, &mut y);
    assert_eq!(x, y);
}

#[test]
fn roundtrip_errors_are_bounded() {
    let mut rng = Rng(3);
    let x = rng.vec(32 * 50, 4.0);
    let (mut b8, mut b4, mut b4m) = (
        zeroed::<BlockQ8>(50),
        zeroed::<BlockQ4>(50),
        zeroed::<BlockQ4M>(50),
    );
    quantize_row_q8(&x, &mut b8);
    quantize_row_q4(&x, &mut b4);
    quantize_row_q4m(&x, &mut b4m);
    let mut y = vec![0.0; x.len()];
    for (i, xb) in x.chunks(32).enumerate() {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (lo, hi) = xb
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        dequantize_row_q8(&b8[i..i + 1], &mut y[..32]);
        for (a, b) in xb.iter().zip(&y[..32]) {
            assert!(
                (a - b).abs() <= amax / 127.0 * 0.51 + amax * 1e-3,
                "q8 {a} {b}"
            );
        }
        dequantize_row_q4(&b4[i..i + 1], &mut y[..32]);
        // The scale search keeps ggml's round-to-nearest block as a candidate: never a larger squared error.
        let max = xb
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let d = half::f16::from_f32(max / -8.0).to_f32();
        let rtn: f32 = xb
            .iter()
            .map(|&v| (v - d * ((v / d).round().clamp(-8.0, 7.0))).powi(2))
            .sum();
        let ours: f32 = xb.iter().zip(&y[..32]).map(|(a, b)| (a - b).powi(2)).sum();
        assert!(
            ours <= rtn * 1.0001 + 1e-12,
            "q4 block {i}: error {ours} > round-to-nearest {rtn}"
        );
        for (a, b) in xb.iter().zip(&y[..32]) {
            assert!((a - b).abs() <= amax / 4.0, "q4 {a} {b}");
        }
        dequantize_row_q4m(&b4m[i..i + 1], &mut y[..32]);
        for (a, b) in xb.iter().zip(&y[..32]) {
            assert!(
                (a - b).abs() <= (hi - lo) / 15.0 * 0.51 + amax * 2e-3,
                "q4m {a} {b}"
            );
        }
    }
}

#[test]
fn acts_quantize_in_range_with_sum() {
    let mut rng = Rng(5);
    let mut x = rng.vec(32 * 4, 100.0);
    x[0..32].fill(0.0);
    x[40] = f32::MAX / 2.0;
    let mut a = zeroed::<BlockQ8A>(4);
    quantize_acts(&x, &mut a);
    assert_eq!(a[0].d, 0.0);
    for b in &a {
        assert!(b.qs.iter().all(|&q| q != -128));
        assert_eq!(b.s, b.qs.iter().map(|&q| q as i32).sum::<i32>());
    }
    assert_eq!(a[1].qs[8], 127);
}

#[test]
fn zero_and_extreme_scales() {
    // Largest finite f16 scale with extreme ints must stay finite and agree across paths.
    let w = vec![
        BlockQ8 {
            d: f16::MAX,
            qs: [-128; 32]
        };
        3
    ];
    let x = vec![1.0f32; 32];
    let mut want = [0f32; 3];
    Exec::single(Isa::Scalar)
        .unwrap()
        .matvec(WeightRef::Q8(&w), &x, &mut want);
    assert!(want.iter().all(|v| v.is_finite() && *v < 0.0));
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let mut out = [1f32; 3];
        Exec::single(isa)
            .unwrap()
            .matvec(WeightRef::Q8(&w), &x, &mut out);
        for (g, e) in out.iter().zip(&want) {
            assert!((g - e).abs() <= e.abs() * 1e-6, "{isa}: {g} vs {e}");
        }
        Exec::single(isa)
            .unwrap()
            .matvec(WeightRef::Q8(&w), &[0.0; 32], &mut out);
        assert_eq!(out, [0.0; 3], "{isa}: zero input");
    }
}

#[test]
fn threads_give_identical_results() {
    let mut rng = Rng(11);
    let (rows, cols) = (1000, 576);
    let wf = rng.vec(rows * cols, 0.5);
    let mut q = zeroed::<BlockQ4>(rows * cols / 32);
    quantize_row_q4(&wf, &mut q);
    let x = rng.vec(cols * 3, 1.0);
    let isa = Isa::detect();
    let mut one = vec![0.0; rows * 3];
    Exec::single(isa)
        .unwrap()
        .matmul(WeightRef::Q4(&q), &x, 3, &mut one);
    set_threads(2);
    assert_eq!(threads(), 2);
    let mut par = vec![0.0; rows * 3];
    for _ in 0..50 {
        Exec::global().matmul(WeightRef::Q4(&q), &x, 3, &mut par);
        if Exec::global().isa() == isa {
            assert_eq!(one, par);
        }
    }
    let mut mv = vec![0.0; rows];
    matvec(WeightRef::Q4(&q), &x[..cols], &mut mv);
    if active_isa() == isa {
        assert_eq!(mv.as_slice(), &one[..rows]);
    }
}

#[test]
fn slice_rows_selects_an_expert() {
    let w: Vec<f32> = (0..6 * 4).map(|v| v as f32).collect();
    let e1 = WeightRef::F32(&w).slice_rows(4, 2..4);
    let mut out = [0f32; 2];
    Exec::single(Isa::Scalar)
        .unwrap()
        .matvec(e1, &[1.0, 0.0, 0.0, 0.0], &mut out);
    assert_eq!(out, [8.0, 12.0]);
}

#[test]
fn isa_names_and_unavailable() {
    for i in Isa::ALL {
        assert_eq!(Isa::from_name(i.name()), Some(i));
    }
    assert!(Isa::Scalar.available());
    #[cfg(target_arch = "x86_64")]
    assert!(matches!(
        Exec::single(Isa::Neon),
        Err(SelectError::Unavailable(Isa::Neon))
    ));
    assert!(cpu_report().contains("active kernel path"));
}

#[test]
#[should_panic(expected = "multiple of the block size")]
fn bad_cols_panics_with_message() {
    let w = vec![BlockQ8 {
        d: f16::ONE,
        qs: [0; 32],
    }];
    let mut out = [0f32; 1];
    matvec(WeightRef::Q8(&w), &[0.0; 33], &mut out);
}

#[test]
fn act_rounding_is_ties_to_even() {
    // Values landing exactly on .5 after scaling by 127 / amax = 1: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2.
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    let ties = [0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5];
    x[1..9].copy_from_slice(&ties);
    let mut a = zeroed::<BlockQ8A>(1);
    quantize_acts(&x, &mut a);
    assert_eq!(a[0].d, 1.0);
    for (i, t) in ties.iter().enumerate() {
        assert_eq!(a[0].qs[i + 1] as f32, t.round_ties_even(), "{t}");
    }
    let mut rng = Rng(9);
    let x = rng.vec(32 * 64, 10.0);
    let mut a = zeroed::<BlockQ8A>(64);
    quantize_acts(&x, &mut a);
    for (xb, b) in x.chunks(32).zip(&a) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (v, q) in xb.iter().zip(b.qs) {
            assert_eq!(q as f32, (v * (127.0 / amax)).round_ties_even());
        }
    }
}

/// The kernels' view of every tensor type agrees with the format's table: a matrix of each type reads the bytes
/// the format sizes it at, in blocks of the format's shape.
#[test]
fn weight_refs_agree_with_the_format_table() {
    use flint_kernels::{BlockQ2M, BlockQ4, BlockQ4M, BlockQ4x8, BlockQ8, BlockQ8x8};
    let (rows, cols) = (16usize, 64usize);
    let n = rows * cols;
    let (f, h, b) = (
        vec![0f32; n],
        vec![half::f16::ZERO; n],
        vec![half::bf16::ZERO; n],
    );
    let q8: Vec<BlockQ8> = (0..n / 32).map(|_| bytemuck::Zeroable::zeroed()).collect();
    let q4: Vec<BlockQ4> = (0..n / 32).map(|_| bytemuck::Zeroable::zeroed()).collect();
    let q4m: Vec<BlockQ4M> = (0..n / 32).map(|_| bytemuck::Zeroable::zeroed()).collect();
    let q8x8: Vec<BlockQ8x8> = (0..n / 256).map(|_| bytemuck::Zeroable::zeroed()).collect();
    let q4x8: Vec<BlockQ4x8> = (0..n / 256).map(|_| bytemuck::Zeroable::zeroed()).collect();
    let q2m: Vec<BlockQ2M> = (0..n / 32).map(|_| bytemuck::Zeroable::zeroed()).collect();
    let refs = [
        WeightRef::F32(&f),
        WeightRef::F16(&h),
        WeightRef::BF16(&b),
        WeightRef::Q8(&q8),
        WeightRef::Q4(&q4),
        WeightRef::Q4M(&q4m),
        WeightRef::Q8x8(&q8x8),
        WeightRef::Q4x8(&q4x8),
        WeightRef::Q2M(&q2m),
    ];
    let mut seen = Vec::new();
    for w in refs {
        let t = w.weight_type();
        assert_eq!(w.elems(), n, "{t}");
        assert_eq!(
            Some(w.bytes() as u64),
            t.byte_size(&[rows as u64, cols as u64]),
            "{t}: bytes"
        );
        assert_eq!(flint_kernels::WeightType::from_id(t.id()), Some(t));
        seen.push(t);
    }
    assert_eq!(
        seen,
        flint_kernels::WeightType::ALL.to_vec(),
        "every type has a WeightRef"
    );
}
