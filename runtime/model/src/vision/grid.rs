//! Index arithmetic of the vision tower, derived from the images' patch grids `(t, h, w)` alone (transformers'
//! `vision_utils`): the checks of a call's grids, the window permutation and its segments, the rotary positions,
//! the position-table resampling taps, and the pixel-shuffle gather.
//!
//! Patches arrive image by image, frame by frame, each frame in raster order (row-major over `h × w`).

use crate::config::limits;
use crate::config::vision::VisionConfig;
use crate::ModelError;
use std::ops::Range;

/// Checks `grids` against the config and the pixel buffer's length; returns the total number of patches.
pub fn check(cfg: &VisionConfig, pixels: usize, grids: &[[usize; 3]]) -> Result<usize, ModelError> {
    let bad = |msg: String| Err(ModelError::Invalid(format!("vision: {msg}")));
    if grids.is_empty() {
        return bad("no image grid given".into());
    }
    if grids.len() > limits::MAX_VISION_GRIDS {
        return bad(format!(
            "{} grids exceed the cap of {}",
            grids.len(),
            limits::MAX_VISION_GRIDS
        ));
    }
    let m = cfg.merge_size;
    let mut total = 0usize;
    for (i, &[t, h, w]) in grids.iter().enumerate() {
        if t == 0 || h == 0 || w == 0 {
            return bad(format!("grid {i} ({t}, {h}, {w}) has an empty side"));
        }
        if h % m != 0 || w % m != 0 {
            return bad(format!(
                "grid {i} ({t}, {h}, {w}): height and width must be multiples of merge_size {m}"
            ));
        }
        let n = [t, h, w]
            .iter()
            .try_fold(1usize, |a, &x| a.checked_mul(x))
            .and_then(|n| n.checked_add(total))
            .filter(|&n| n <= limits::MAX_VISION_PATCHES);
        match n {
            Some(n) => total = n,
            None => {
                return bad(format!(
                    "grid {i} ({t}, {h}, {w}) brings the patches past the cap of {}",
                    limits::MAX_VISION_PATCHES
                ))
            }
        }
    }
    let want = total * cfg.patch_len();
    if pixels != want {
        return bad(format!(
            "pixel_values hold {pixels} values; the grids need {total} patches of {} = {want}",
            cfg.patch_len()
        ));
    }
    Ok(total)
}

/// Raster-order patch indices regrouped window by window, and the attention spans in that order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Windows {
    /// `index[i]` is the raster-order patch at window-order position `i` (transformers' `window_index`).
    pub index: Vec<usize>,
    /// Consecutive spans of window-order positions, one per non-empty window (`cu_window_seqlens`).
    pub windows: Vec<Range<usize>>,
    /// One span per image or video frame (`cu_seqlens`): the frames stay contiguous in window order.
    pub frames: Vec<Range<usize>>,
}

/// One span per image or video frame, in the order the patches arrive (`cu_seqlens`).
pub fn frames(grids: &[[usize; 3]]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut base = 0;
    for &[t, h, w] in grids {
        for _ in 0..t {
            out.push(base..base + h * w);
            base += h * w;
        }
    }
    out
}

/// Merged tokens regrouped window by window (Qwen2.5-VL's `get_vision_window_index`): `order[i]` is the merged
/// token (in merge-block order) at position `i`; `spans` are each non-empty window's rows (`m²` per token) in that
/// order. Windows of `side × side` merged tokens, row by row over each frame, cut at the grid's edge.
pub fn unit_windows(
    grids: &[[usize; 3]],
    m: usize,
    side: usize,
) -> (Vec<usize>, Vec<Range<usize>>) {
    let (mut order, mut spans) = (Vec::new(), Vec::new());
    let (m2, side) = (m * m, side.max(1));
    let mut base = 0;
    for &[t, h, w] in grids {
        let (lh, lw) = (h / m, w / m);
        for f in 0..t {
            let frame = base + f * lh * lw;
            for wy in (0..lh).step_by(side) {
                for wx in (0..lw).step_by(side) {
                    let start = order.len();
                    for y in wy..(wy + side).min(lh) {
                        order.extend((wx..(wx + side).min(lw)).map(|x| frame + y * lw + x));
                    }
                    spans.push(start * m2..order.len() * m2);
                }
            }
        }
        base += t * lh * lw;
    }
    (order, spans)
}

/// Windows of `side × side` patches over each frame, row by row of windows (the last ones cut by the grid's edge).
pub fn windows(grids: &[[usize; 3]], side: usize) -> Windows {
    let mut out = Windows::default();
    let mut base = 0;
    for &[t, h, w] in grids {
        for f in 0..t {
            let frame = base + f * h * w;
            out.frames.push(frame..frame + h * w);
            for wy in (0..h).step_by(side) {
                for wx in (0..w).step_by(side) {
                    let start = out.index.len();
                    for y in wy..(wy + side).min(h) {
                        out.index
                            .extend((wx..(wx + side).min(w)).map(|x| frame + y * w + x));
                    }
                    out.windows.push(start..out.index.len());
                }
            }
        }
        base += t * h * w;
    }
    out
}

/// Rotary positions `(col + 1, row + 1)` of every patch in raster order (`[patches, 2]`, transformers' flipped,
/// +1 `position_ids`).
pub fn rope_positions(grids: &[[usize; 3]]) -> Vec<i32> {
    let mut pos = Vec::new();
    for &[t, h, w] in grids {
        for _ in 0..t {
            for r in 0..h {
                for c in 0..w {
                    pos.extend([c as i32 + 1, r as i32 + 1]);
                }
            }
        }
    }
    pos
}

/// Two bilinear taps along one axis: target index `i` of `size` over a table side of `side`. Muse: half-pixel
/// centres (`align_corners=False`), a tap outside the table weighs zero (`padding_mode="zeros"`). `aligned`
/// (Qwen3-VL): the ends map onto the table's ends (`align_corners=True`), taps clamped to the edge. f32 as torch
/// computes it.
fn axis_taps(i: usize, size: usize, side: usize, aligned: bool) -> [(usize, f32); 2] {
    let src = if aligned {
        i as f32 * (side - 1) as f32 / size.saturating_sub(1).max(1) as f32
    } else {
        (i as f32 + 0.5) * side as f32 / size as f32 - 0.5
    };
    let floor = src.floor();
    let f = floor as i64;
    [0i64, 1].map(|o| {
        let tap = f + o;
        let w = (1.0 - (src - floor - o as f32).abs()).max(0.0);
        let inside = aligned || (tap >= 0 && tap < side as i64);
        (
            tap.clamp(0, side as i64 - 1) as usize,
            if inside { w } else { 0.0 },
        )
    })
}

/// The four (table row, weight) pairs of the 2-D tap at (row, col) of an `h × w` grid.
fn taps_2d(
    (row, col): (usize, usize),
    (h, w): (usize, usize),
    side: usize,
    aligned: bool,
) -> [(usize, f32); 4] {
    let ([a, b], [c, d]) = (
        axis_taps(row, h, side, aligned),
        axis_taps(col, w, side, aligned),
    );
    [
        (a.0 * side + c.0, a.1 * c.1),
        (a.0 * side + d.0, a.1 * d.1),
        (b.0 * side + c.0, b.1 * c.1),
        (b.0 * side + d.0, b.1 * d.1),
    ]
}

/// (row, col) of every patch in merge-block order (the Qwen2-VL processor's layout: each `m × m` block of
/// neighbours consecutive, blocks row-major), frames repeated, with their frame's `(h, w)`.
pub fn block_coords(grids: &[[usize; 3]], m: usize) -> Vec<((usize, usize), (usize, usize))> {
    let mut out = Vec::new();
    for &[t, h, w] in grids {
        for _ in 0..t {
            for by in 0..h / m {
                for bx in 0..w / m {
                    for dy in 0..m {
                        for dx in 0..m {
                            out.push(((by * m + dy, bx * m + dx), (h, w)));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The position-table taps of every patch in merge-block order, `align_corners=True` (Qwen3-VL).
pub fn block_position_taps(grids: &[[usize; 3]], side: usize, m: usize) -> Vec<[(usize, f32); 4]> {
    block_coords(grids, m)
        .into_iter()
        .map(|(rc, hw)| taps_2d(rc, hw, side, true))
        .collect()
}

/// For every patch in raster order, the four (table row, weight) pairs that resample the `side × side` position
/// table to its grid. With `transposed` (Muse Spark) the table is resampled to a `(w, h)` grid and read in that
/// grid's raster order, as transformers does when it passes `grid_thw[:, [0, 2, 1]]`.
pub fn position_taps(
    grids: &[[usize; 3]],
    side: usize,
    transposed: bool,
) -> Vec<[(usize, f32); 4]> {
    let mut taps = Vec::new();
    for &[t, h, w] in grids {
        let (gh, gw) = if transposed { (w, h) } else { (h, w) };
        let frame: Vec<[(usize, f32); 4]> = (0..h * w)
            .map(|p| taps_2d((p / gw, p % gw), (gh, gw), side, false))
            .collect();
        for _ in 0..t {
            taps.extend_from_slice(&frame);
        }
    }
    taps
}

/// The raster-order patch rows that form each merged token, `m²` per token in `(dy, dx)` order, tokens image by
/// image, frame by frame, row-major over the merged grid (transformers' `get_vision_pixel_shuffle_index`).
pub fn shuffle_index(grids: &[[usize; 3]], m: usize) -> Vec<usize> {
    let mut idx = Vec::new();
    let mut base = 0;
    for &[t, h, w] in grids {
        for f in 0..t {
            let frame = base + f * h * w;
            for by in 0..h / m {
                for bx in 0..w / m {
                    for dy in 0..m {
                        idx.extend((0..m).map(|dx| frame + (by * m + dy) * w + bx * m + dx));
                    }
                }
            }
        }
        base += t * h * w;
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_patch_once() {
        let g = [[1, 6, 10], [2, 4, 6]];
        let w = windows(&g, 4);
        let mut seen = w.index.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..60 + 48).collect::<Vec<_>>());
        let ends: Vec<usize> = w.windows.iter().map(|r| r.end).collect();
        assert_eq!(ends, [16, 32, 40, 48, 56, 60, 76, 84, 100, 108]);
        assert_eq!(w.frames, [0..60, 60..84, 84..108]);
    }

    #[test]
    fn taps_interpolate_inside_and_fade_at_the_edge() {
        // Same size as the table: each patch reads its own entry with weight 1.
        let t = position_taps(&[[1, 4, 4]], 4, false);
        for (p, taps) in t.iter().enumerate() {
            let sum: f32 = taps.iter().map(|x| x.1).sum();
            assert_eq!(sum, 1.0);
            assert!(taps.iter().any(|&(i, w)| i == p && w == 1.0));
        }
        // Upsampled: the first patch's centre lies outside the table's first centre, so zero padding takes weight.
        let t = position_taps(&[[1, 8, 8]], 4, false);
        let sum: f32 = t[0].iter().map(|x| x.1).sum();
        assert!(sum < 1.0 && sum > 0.5, "{sum}");
    }

    #[test]
    fn aligned_taps_hit_the_corners() {
        // A 4x4 grid over a 3x3 table: the corners read the table's corners with weight 1; every tap sums to 1.
        let t = block_position_taps(&[[1, 4, 4]], 3, 2);
        let coords = block_coords(&[[1, 4, 4]], 2);
        for (taps, ((r, c), _)) in t.iter().zip(&coords) {
            let sum: f32 = taps.iter().map(|x| x.1).sum();
            assert!((sum - 1.0).abs() < 1e-6, "{sum}");
            if (r % 3, c % 3) == (0, 0) {
                let want = (r / 3 * 2) * 3 + c / 3 * 2;
                assert!(taps.iter().any(|&(i, w)| i == want && w == 1.0), "{r},{c}");
            }
        }
        assert_eq!(
            coords[..5].iter().map(|x| x.0).collect::<Vec<_>>(),
            [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2)]
        );
    }

    #[test]
    fn unit_windows_cover_every_token_once() {
        let (order, spans) = unit_windows(&[[1, 6, 8]], 2, 2);
        assert_eq!(order, [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 10, 11]);
        assert_eq!(spans, [0..16, 16..32, 32..40, 40..48]);
    }

    #[test]
    fn shuffle_groups_neighbours() {
        assert_eq!(shuffle_index(&[[1, 2, 4]], 2), [0, 1, 4, 5, 2, 3, 6, 7]);
    }
}
