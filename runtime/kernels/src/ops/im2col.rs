//! Patch gathering: the im2col rows behind the convolutions, and patch embedding of images / videos.
//!
//! Patch rows follow the HF Qwen2-VL / Muse Spark processors' flat `pixel_values` layout, so a checkpoint's patch
//! weight (a `Linear` `[embed, c * tp * p * p]`, or a `Conv3d` `[embed, c, tp, p, p]` read as that matrix) applies
//! to a row directly:
//! - a row is one patch, values in `(channel, frame-in-patch, y, x)` order: `c * tp * p * p` values;
//! - rows are ordered `(t, block_y, block_x, y_in_block, x_in_block)` with `merge x merge` blocks of patches, so
//!   the rows a spatial merger folds together are adjacent (`merge = 1` gives plain raster order);
//! - frames are grouped by `tp`; a frame count that is not a multiple of `tp` is padded with copies of the last
//!   frame (an image is a 1-frame video: its `tp` copies, as the image processor's `expand`).

use crate::WeightRef;
use std::ops::Range;

/// The geometry of one 2-D convolution (a 1-D one has height 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geom {
    /// Input height and width.
    pub(crate) input: [usize; 2],
    pub(crate) kernel: [usize; 2],
    pub(crate) stride: [usize; 2],
    pub(crate) dilation: [usize; 2],
    /// Zero padding before (top, left) and after (bottom, right).
    pub(crate) pad_before: [usize; 2],
    pub(crate) pad_after: [usize; 2],
}

impl Geom {
    /// Output height and width (0 where the padded input is shorter than the dilated kernel).
    pub(crate) fn output(&self) -> [usize; 2] {
        core::array::from_fn(|a| {
            let span = self.dilation[a] * (self.kernel[a] - 1) + 1;
            (self.input[a] + self.pad_before[a] + self.pad_after[a])
                .checked_sub(span)
                .map_or(0, |r| r / self.stride[a] + 1)
        })
    }

    /// Writes the im2col rows of output pixels `pixels` (row-major over the output) for input channels
    /// `chans` of `x` (`[c, h, w]`): row `p` holds, in `(channel, ky, kx)` order, the inputs under the kernel at
    /// pixel `p`, zero where the kernel overhangs the padding.
    pub(crate) fn im2col(
        &self,
        x: &[f32],
        chans: Range<usize>,
        pixels: Range<usize>,
        cols: &mut [f32],
    ) {
        let [h, w] = self.input;
        let [kh, kw] = self.kernel;
        let ow = self.output()[1];
        let width = chans.len() * kh * kw;
        assert!(
            cols.len() == pixels.len() * width,
            "cols of {} for {} pixels",
            cols.len(),
            pixels.len()
        );
        for (row, p) in cols.chunks_exact_mut(width).zip(pixels) {
            let (oy, ox) = (p / ow, p % ow);
            let mut i = 0;
            for c in chans.clone() {
                for ky in 0..kh {
                    let y = (oy * self.stride[0] + ky * self.dilation[0])
                        .wrapping_sub(self.pad_before[0]);
                    for kx in 0..kw {
                        let xx = (ox * self.stride[1] + kx * self.dilation[1])
                            .wrapping_sub(self.pad_before[1]);
                        // Wrapped (negative) or past-the-end coordinates are padding.
                        row[i] = if y < h && xx < w {
                            x[(c * h + y) * w + xx]
                        } else {
                            0.0
                        };
                        i += 1;
                    }
                }
            }
        }
    }
}

/// Patch sizes for [`patchify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patchify {
    pub channels: usize,
    /// Frames per patch (`temporal_patch_size`, Muse Spark `patch_temporal`; 1 for images-only towers).
    pub temporal_patch: usize,
    /// Pixels per patch side.
    pub patch: usize,
    /// Patches per merge block side (`spatial_merge_size`; 1 for raster order).
    pub merge: usize,
}

impl Patchify {
    /// Values per patch row: `channels * temporal_patch * patch^2`.
    pub fn row_len(&self) -> usize {
        self.channels * self.temporal_patch * self.patch * self.patch
    }

    /// The patch grid `(grid_t, grid_h, grid_w)` of a `[t, c, h, w]` input (`grid_thw`).
    ///
    /// # Panics
    /// If `h` or `w` is not a multiple of `patch * merge`, or `t == 0`.
    pub fn grid(&self, t: usize, h: usize, w: usize) -> [usize; 3] {
        let b = self.patch * self.merge;
        assert!(
            t > 0 && h.is_multiple_of(b) && w.is_multiple_of(b),
            "{t}x{h}x{w} does not tile into {b}-pixel blocks"
        );
        [
            t.div_ceil(self.temporal_patch),
            h / self.patch,
            w / self.patch,
        ]
    }
}

/// Cuts `video` (`[t, c, h, w]`, an image has `t = 1`) into patch rows `out` (`[grid_t * grid_h * grid_w,
/// row_len]`) in the processor layout described in this module's doc.
///
/// # Panics
/// As [`Patchify::grid`], or if the lengths do not fit.
pub fn patchify(s: &Patchify, video: &[f32], t: usize, h: usize, w: usize, out: &mut [f32]) {
    let [gt, gh, gw] = s.grid(t, h, w);
    let (p, m, tp, c) = (s.patch, s.merge, s.temporal_patch, s.channels);
    assert!(
        video.len() == t * c * h * w,
        "video of {} for {t}x{c}x{h}x{w}",
        video.len()
    );
    assert!(
        out.len() == gt * gh * gw * s.row_len(),
        "out of {} for {gt}x{gh}x{gw} patches",
        out.len()
    );
    let mut rows = out.chunks_exact_mut(s.row_len());
    for ft in 0..gt {
        for by in 0..gh / m {
            for bx in 0..gw / m {
                for my in 0..m {
                    for mx in 0..m {
                        let row = rows.next().expect("row count checked above");
                        let (y0, x0) = ((by * m + my) * p, (bx * m + mx) * p);
                        let mut dst = row.chunks_exact_mut(p);
                        for ch in 0..c {
                            for f in 0..tp {
                                let frame = (ft * tp + f).min(t - 1);
                                for y in 0..p {
                                    let src = ((frame * c + ch) * h + y0 + y) * w + x0;
                                    dst.next().unwrap().copy_from_slice(&video[src..src + p]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Patch embedding: `out = rows · wᵀ (+ bias)`, `rows` `[n, row_len]` from [`patchify`] (or a processor's
/// `pixel_values`), `w` `[embed, row_len]`, `out` `[n, embed]`, through [`crate::matmul`].
///
/// # Panics
/// If the lengths do not fit (`out.len() % n != 0`, bias not `embed` long, or as [`crate::matmul`]).
pub fn patch_embed(
    rows: &[f32],
    n: usize,
    w: WeightRef<'_>,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    assert!(
        n > 0 && out.len().is_multiple_of(n),
        "out of {} for {n} rows",
        out.len()
    );
    crate::matmul(w, rows, n, out);
    if let Some(b) = bias {
        assert!(
            b.len() == out.len() / n,
            "bias of {} for {} outputs",
            b.len(),
            out.len() / n
        );
        for r in out.chunks_exact_mut(b.len()) {
            r.iter_mut().zip(b).for_each(|(o, b)| *o += b);
        }
    }
}
