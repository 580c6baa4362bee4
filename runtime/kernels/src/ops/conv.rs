//! 1-D and 2-D convolutions (PyTorch `Conv1d` / `Conv2d` semantics, cross-correlation) by im2col + matmul.
//!
//! Weights are PyTorch's layout, `[c_out, c_in / groups, k]` or `[c_out, c_in / groups, kh, kw]`, which is the
//! row-major matrix `[c_out, (c_in / groups) * kh * kw]` that [`crate::matmul`] takes as `WeightRef::F32`.
//! Per group, im2col rows (one per output pixel, `(channel, ky, kx)` order) go through the matmul kernels in
//! chunks of at most [`CHUNK_VALUES`] values, so scratch stays bounded for long audio. The results differ from
//! [`conv2d_reference`] only in summation order (bound in tests/ops/: `1e-5 * sum |w x|`).

use super::im2col::Geom;
use crate::WeightRef;

/// Upper bound on the im2col scratch per chunk (f32 values; 4 MiB).
const CHUNK_VALUES: usize = 1 << 20;

/// A 1-D convolution over `[c_in, t]`. Causal: `pad_left = dilation * (kernel - 1)`, `pad_right = 0`.
/// Depthwise: `groups == c_in == c_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1d {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad_left: usize,
    pub pad_right: usize,
    pub dilation: usize,
    pub groups: usize,
}

/// A 2-D convolution over `[c_in, h, w]`, symmetric zero padding per axis (PyTorch `padding=(ph, pw)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub c_in: usize,
    pub c_out: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Conv1d {
    fn geom(&self, t: usize) -> (Conv2d, Geom) {
        let c = Conv2d {
            c_in: self.c_in,
            c_out: self.c_out,
            kernel: [1, self.kernel],
            stride: [1, self.stride],
            padding: [0, 0],
            dilation: [1, self.dilation],
            groups: self.groups,
        };
        let g = Geom {
            input: [1, t],
            kernel: c.kernel,
            stride: c.stride,
            dilation: c.dilation,
            pad_before: [0, self.pad_left],
            pad_after: [0, self.pad_right],
        };
        (c, g)
    }

    /// Output length for an input of `t` steps: `(t + pads - dilation * (kernel - 1) - 1) / stride + 1`, or 0.
    pub fn out_len(&self, t: usize) -> usize {
        self.geom(t).1.output()[1]
    }
}

impl Conv2d {
    fn geom(&self, h: usize, w: usize) -> Geom {
        Geom {
            input: [h, w],
            kernel: self.kernel,
            stride: self.stride,
            dilation: self.dilation,
            pad_before: self.padding,
            pad_after: self.padding,
        }
    }

    /// Output `[oh, ow]` for an `h x w` input (0 where the padded input is shorter than the dilated kernel).
    pub fn out_hw(&self, h: usize, w: usize) -> [usize; 2] {
        self.geom(h, w).output()
    }

    fn check(&self, g: &Geom, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &[f32]) {
        let (gs, [h, w], [kh, kw]) = (self.groups, g.input, self.kernel);
        assert!(
            gs > 0 && self.c_in.is_multiple_of(gs) && self.c_out.is_multiple_of(gs),
            "{self:?}: groups do not divide channels"
        );
        assert!(
            self.stride
                .iter()
                .chain(&self.dilation)
                .chain(&self.kernel)
                .all(|&v| v > 0),
            "{self:?}: zero size"
        );
        assert!(
            x.len() == self.c_in * h * w,
            "input of {} for {}x{h}x{w}",
            x.len(),
            self.c_in
        );
        assert!(
            weight.len() == self.c_out * self.c_in / gs * kh * kw,
            "weight of {} for {self:?}",
            weight.len()
        );
        assert!(
            bias.is_none_or(|b| b.len() == self.c_out),
            "bias of {:?} for {} outputs",
            bias.map(|b| b.len()),
            self.c_out
        );
        let [oh, ow] = g.output();
        assert!(
            out.len() == self.c_out * oh * ow,
            "out of {} for {}x{oh}x{ow}",
            out.len(),
            self.c_out
        );
    }
}

/// `out[o, t'] = bias[o] + sum_{i, k} w[o, i, k] * x[g * c_in/groups + i, t' * stride + k * dilation - pad_left]`
/// over `x` `[c_in, t]` into `out` `[c_out, out_len(t)]`, where `g` is output channel `o`'s group.
///
/// # Panics
/// If a length does not fit the shape, `groups` does not divide both channel counts, or a size is 0.
pub fn conv1d(
    s: &Conv1d,
    x: &[f32],
    t: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let (c, g) = s.geom(t);
    run(&c, &g, x, weight, bias, out)
}

/// The 2-D form of [`conv1d`]: `x` `[c_in, h, w]`, `out` `[c_out, oh, ow]` with `[oh, ow] = s.out_hw(h, w)`.
///
/// # Panics
/// As [`conv1d`].
pub fn conv2d(
    s: &Conv2d,
    x: &[f32],
    h: usize,
    w: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    run(s, &s.geom(h, w), x, weight, bias, out)
}

fn run(s: &Conv2d, g: &Geom, x: &[f32], weight: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    s.check(g, x, weight, bias, out);
    let [oh, ow] = g.output();
    let npix = oh * ow;
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    let width = cig * s.kernel[0] * s.kernel[1];
    let chunk = (CHUNK_VALUES / width).clamp(1, npix.max(1));
    let mut cols = vec![0f32; chunk * width];
    let mut res = vec![0f32; chunk * cog];
    for grp in 0..s.groups {
        let wg = WeightRef::F32(&weight[grp * cog * width..(grp + 1) * cog * width]);
        for p0 in (0..npix).step_by(chunk) {
            let np = chunk.min(npix - p0);
            g.im2col(
                x,
                grp * cig..(grp + 1) * cig,
                p0..p0 + np,
                &mut cols[..np * width],
            );
            crate::matmul(wg, &cols[..np * width], np, &mut res[..np * cog]);
            // res is [pixel, channel]; out is [channel, pixel].
            for o in 0..cog {
                let oc = grp * cog + o;
                let b = bias.map_or(0.0, |b| b[oc]);
                for (p, v) in out[oc * npix + p0..oc * npix + p0 + np]
                    .iter_mut()
                    .enumerate()
                {
                    *v = res[p * cog + o] + b;
                }
            }
        }
    }
}

/// The direct definition of [`conv1d`] (nested loops, f32 accumulation), returning `[c_out, out_len(t)]`: the
/// test reference, not for use.
pub fn conv1d_reference(
    s: &Conv1d,
    x: &[f32],
    t: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let (c, g) = s.geom(t);
    reference(&c, &g, x, weight, bias)
}

/// The direct definition of [`conv2d`], returning `[c_out, oh, ow]`: the test reference, not for use.
pub fn conv2d_reference(
    s: &Conv2d,
    x: &[f32],
    hw: [usize; 2],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    reference(s, &s.geom(hw[0], hw[1]), x, weight, bias)
}

fn reference(s: &Conv2d, g: &Geom, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let ([h, w], [oh, ow], [kh, kw]) = (g.input, g.output(), s.kernel);
    let mut out = vec![0f32; s.c_out * oh * ow];
    s.check(g, x, weight, bias, &out);
    let (cig, cog) = (s.c_in / s.groups, s.c_out / s.groups);
    for o in 0..s.c_out {
        let grp = o / cog;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias.map_or(0.0, |b| b[o]);
                for i in 0..cig {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let y = (oy * s.stride[0] + ky * s.dilation[0]) as isize
                                - g.pad_before[0] as isize;
                            let xx = (ox * s.stride[1] + kx * s.dilation[1]) as isize
                                - g.pad_before[1] as isize;
                            if (0..h as isize).contains(&y) && (0..w as isize).contains(&xx) {
                                let xv = x[((grp * cig + i) * h + y as usize) * w + xx as usize];
                                acc += weight[((o * cig + i) * kh + ky) * kw + kx] * xv;
                            }
                        }
                    }
                }
                out[(o * oh + oy) * ow + ox] = acc;
            }
        }
    }
    out
}
