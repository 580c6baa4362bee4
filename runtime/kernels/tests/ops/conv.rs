//! Convolutions (im2col + matmul and the direct reference) and average pooling vs f64 definitions.

use crate::assert_close;
use crate::common::Rng;
use flint_kernels::ops::*;

/// `conv2d` by its definition in f64, and the sum of |w x| terms (for the rounding bound) per output.
#[allow(clippy::type_complexity)]
fn conv_f64(
    s: &Conv2d,
    pads: [[usize; 2]; 2],
    x: &[f32],
    hw: [usize; 2],
    w: &[f32],
    b: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let ([h, wi], [kh, kw]) = (hw, s.kernel);
    let out_dim = |a: usize| {
        let span = s.dilation[a] * (s.kernel[a] - 1) + 1;
        (hw[a] + pads[a][0] + pads[a][1])
            .checked_sub(span)
            .map_or(0, |r| r / s.stride[a] + 1)
    };
    let (oh, ow) = (out_dim(0), out_dim(1));
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let (mut out, mut mag) = (vec![0f32; s.c_out * oh * ow], vec![0f32; s.c_out * oh * ow]);
    for o in 0..s.c_out {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut acc, mut m) = (b[o] as f64, b[o].abs() as f64);
                for i in 0..cig {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let y =
                                (oy * s.stride[0] + ky * s.dilation[0]) as i64 - pads[0][0] as i64;
                            let xx =
                                (ox * s.stride[1] + kx * s.dilation[1]) as i64 - pads[1][0] as i64;
                            if y >= 0 && (y as usize) < h && xx >= 0 && (xx as usize) < wi {
                                let xv = x
                                    [((o / cog * cig + i) * h + y as usize) * wi + xx as usize]
                                    as f64;
                                let wv = w[((o * cig + i) * kh + ky) * kw + kx] as f64;
                                acc += wv * xv;
                                m += (wv * xv).abs();
                            }
                        }
                    }
                }
                out[(o * oh + oy) * ow + ox] = acc as f32;
                mag[(o * oh + oy) * ow + ox] = m as f32;
            }
        }
    }
    (out, mag)
}

/// A `Conv2d` from `[c_in, c_out]` and the per-axis sizes.
fn shape2(
    c: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2d {
    Conv2d {
        c_in: c[0],
        c_out: c[1],
        kernel,
        stride,
        padding,
        dilation,
        groups,
    }
}

/// The im2col result and the direct reference, both within `1e-5 * sum |w x|` of the f64 definition.
fn check(what: &str, got: &[f32], refr: &[f32], (want, mag): (Vec<f32>, Vec<f32>)) {
    for (name, v) in [("im2col", got), ("reference", refr)] {
        assert_close(&format!("{what} {name}"), v, &want, |i, _| {
            1e-5 * mag[i] + 1e-30
        });
    }
}

#[test]
fn conv1d_matches_reference_and_definition() {
    let mut rng = Rng(0xc01);
    // (c_in, c_out, kernel, stride, pad_left, pad_right, dilation, groups)
    let shapes = [
        (1, 1, 1, 1, 0, 0, 1, 1),
        (3, 5, 3, 1, 1, 1, 1, 1),  // Whisper conv1
        (8, 8, 3, 2, 1, 1, 1, 1),  // Whisper conv2: stride 2
        (4, 6, 5, 1, 4, 0, 1, 1),  // causal
        (4, 4, 3, 1, 4, 0, 2, 1),  // causal, dilated
        (6, 6, 5, 1, 2, 2, 1, 6),  // depthwise
        (6, 9, 3, 2, 1, 0, 1, 3),  // grouped, strided
        (64, 3, 3, 1, 1, 1, 1, 1), // wide rows: two im2col chunks at t = 5600
    ];
    for (c_in, c_out, kernel, stride, pad_left, pad_right, dilation, groups) in shapes {
        let s = Conv1d {
            c_in,
            c_out,
            kernel,
            stride,
            pad_left,
            pad_right,
            dilation,
            groups,
        };
        let ts: &[usize] = if c_in == 64 {
            &[5600]
        } else {
            &[1, 2, 3, 7, 16, 33]
        };
        for &t in ts {
            let x = rng.vec(c_in * t, 2.0);
            let w = rng.vec(c_out * c_in / groups * kernel, 0.5);
            let b = rng.vec(c_out, 1.0);
            let mut got = vec![f32::NAN; c_out * s.out_len(t)];
            conv1d(&s, &x, t, &w, Some(&b), &mut got);
            let refr = conv1d_reference(&s, &x, t, &w, Some(&b));
            let s2 = shape2(
                [c_in, c_out],
                [1, kernel],
                [1, stride],
                [0, 0],
                [1, dilation],
                groups,
            );
            let def = conv_f64(&s2, [[0, 0], [pad_left, pad_right]], &x, [1, t], &w, &b);
            check(&format!("{s:?} t={t}"), &got, &refr, def);
        }
    }
    // Zero input: the bias alone. Too short an input: an empty output.
    let s = Conv1d {
        c_in: 2,
        c_out: 3,
        kernel: 3,
        stride: 1,
        pad_left: 0,
        pad_right: 0,
        dilation: 2,
        groups: 1,
    };
    let mut out = vec![f32::NAN; 3 * 3];
    conv1d(
        &s,
        &[0.0; 14],
        7,
        &[0.5; 18],
        Some(&[1.0, 2.0, 3.0]),
        &mut out,
    );
    assert_eq!(out, [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
    assert_eq!(s.out_len(4), 0);
    conv1d(&s, &[1.0; 8], 4, &[0.5; 18], None, &mut []);
}

#[test]
fn conv2d_matches_reference_and_definition() {
    let mut rng = Rng(0xc02);
    let shapes = [
        // Qwen3-Omni audio stem: 3x3, stride 2, padding 1.
        shape2([1, 4], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        shape2([4, 6], [3, 3], [2, 2], [1, 1], [1, 1], 1),
        shape2([4, 6], [2, 3], [1, 2], [0, 1], [2, 1], 2),
        shape2([3, 5], [4, 4], [4, 4], [0, 0], [1, 1], 1),
    ];
    for s in shapes {
        for [h, w] in [[1, 1], [4, 4], [9, 13], [16, 7]] {
            let x = rng.vec(s.c_in * h * w, 2.0);
            let wt = rng.vec(s.c_out * s.c_in / s.groups * s.kernel[0] * s.kernel[1], 0.5);
            let b = rng.vec(s.c_out, 1.0);
            let [oh, ow] = s.out_hw(h, w);
            let mut got = vec![f32::NAN; s.c_out * oh * ow];
            conv2d(&s, &x, h, w, &wt, Some(&b), &mut got);
            let refr = conv2d_reference(&s, &x, [h, w], &wt, Some(&b));
            let p = s.padding;
            let def = conv_f64(&s, [[p[0], p[0]], [p[1], p[1]]], &x, [h, w], &wt, &b);
            check(&format!("{s:?} {h}x{w}"), &got, &refr, def);
        }
    }
}

#[test]
fn avg_pool1d_matches_definition() {
    let mut rng = Rng(0x9001);
    for (c, t, k, stride) in [
        (3, 8, 2, 2),
        (2, 9, 2, 2),
        (4, 10, 3, 1),
        (1, 7, 3, 2),
        (2, 1, 2, 2),
        (5, 2, 2, 2),
    ] {
        let x = rng.vec(c * t, 3.0);
        let to = if t < k { 0 } else { (t - k) / stride + 1 };
        let mut out = vec![f32::NAN; c * to];
        avg_pool1d(&x, c, k, stride, &mut out);
        let want: Vec<f32> = (0..c * to)
            .map(|i| {
                let (ch, j) = (i / to, i % to);
                ((0..k)
                    .map(|q| x[ch * t + j * stride + q] as f64)
                    .sum::<f64>()
                    / k as f64) as f32
            })
            .collect();
        assert_close(
            &format!("pool c={c} t={t} k={k} s={stride}"),
            &out,
            &want,
            |_, w| 1e-6 * w.abs().max(1.0),
        );
    }
}
