//! `--image-tokens auto`: an image's token cap chosen from what it holds.
//!
//! A plain scene (a wall, the sky, a road) reads the same at a few dozen tokens; fine detail and text need the
//! resolution. The measure is the image's edge density at a fixed working scale: the image is box-averaged to at
//! most [`WORK_SIDE`] pixels on its longer side, its luma gradient (|dx| + |dy|) averaged over 8x8-pixel cells,
//! and a cell counts as detailed when that mean exceeds [`EDGE_LEVEL`] levels. Text is dense edges in small
//! cells, so even a small sign makes its cells detailed. The cap is
//! `floor + (ceiling - floor) * min(1, detailed fraction / FULL_AT)`: an image of which [`FULL_AT`] or more is
//! detailed gets the whole ceiling.

use crate::RgbImage;

/// Longest side of the working image.
pub const WORK_SIDE: usize = 512;
/// Side of a cell of the working image, in pixels.
pub const CELL: usize = 8;
/// Mean |dx| + |dy| (luma levels) above which a cell is detailed.
pub const EDGE_LEVEL: f64 = 24.0;
/// Detailed fraction at which the whole ceiling is used.
pub const FULL_AT: f64 = 0.35;

/// What the budget chose, and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// The token cap (`max_image_tokens`) for this image.
    pub tokens: usize,
    /// Fraction of the working image's cells that are detailed.
    pub detail: f64,
}

/// The token cap for `img` between `floor` and `ceiling` (`floor` is raised to `ceiling` if larger).
pub fn auto_tokens(img: &RgbImage, floor: usize, ceiling: usize) -> Budget {
    let floor = floor.min(ceiling);
    let detail = detail_fraction(img);
    let t = floor as f64 + (ceiling - floor) as f64 * (detail / FULL_AT).min(1.0);
    Budget {
        tokens: (t.round() as usize).clamp(floor.max(1), ceiling.max(1)),
        detail,
    }
}

/// Fraction of detailed cells (see the module doc); 0 for an image smaller than one cell.
pub fn detail_fraction(img: &RgbImage) -> f64 {
    let (w, h) = (img.width, img.height);
    if w == 0 || h == 0 {
        return 0.0;
    }
    // Box-average by an integer factor so the longer side is at most WORK_SIDE.
    let f = w.max(h).div_ceil(WORK_SIDE).max(1);
    let (sw, sh) = (w / f, h / f);
    if sw < CELL + 1 || sh < CELL + 1 {
        return 0.0;
    }
    let mut y = vec![0f32; sw * sh];
    for (j, row) in y.chunks_exact_mut(sw).enumerate() {
        for (i, v) in row.iter_mut().enumerate() {
            let mut s = 0f32;
            for dy in 0..f {
                for dx in 0..f {
                    let [r, g, b] = img.pixel(i * f + dx, j * f + dy);
                    s += 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32;
                }
            }
            *v = s / (f * f) as f32;
        }
    }
    let (cw, ch) = ((sw - 1) / CELL, (sh - 1) / CELL);
    let mut detailed = 0usize;
    for cj in 0..ch {
        for ci in 0..cw {
            let mut e = 0f32;
            for j in cj * CELL..(cj + 1) * CELL {
                for i in ci * CELL..(ci + 1) * CELL {
                    let p = y[j * sw + i];
                    e += (y[j * sw + i + 1] - p).abs() + (y[(j + 1) * sw + i] - p).abs();
                }
            }
            if f64::from(e) / (CELL * CELL) as f64 > EDGE_LEVEL {
                detailed += 1;
            }
        }
    }
    detailed as f64 / (cw * ch).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> RgbImage {
        let mut d = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let v = f(x, y);
                d.extend_from_slice(&[v, v, v]);
            }
        }
        RgbImage::new(w, h, d).unwrap()
    }

    #[test]
    fn plain_images_get_the_floor_and_busy_ones_the_ceiling() {
        let flat = image(640, 480, |_, _| 128);
        assert_eq!(
            auto_tokens(&flat, 64, 1024),
            Budget {
                tokens: 64,
                detail: 0.0
            }
        );
        // Black-and-white stripes 2 px wide: edges everywhere, like dense text.
        let busy = image(640, 480, |x, _| if (x / 2) % 2 == 0 { 0 } else { 255 });
        let b = auto_tokens(&busy, 64, 1024);
        assert_eq!(b.tokens, 1024, "{b:?}");
        // A "sign" of stripes in a tenth of a flat frame: between the two.
        let sign = image(640, 480, |x, y| {
            if (200..400).contains(&x) && (200..300).contains(&y) && (x / 2) % 2 == 0 {
                0
            } else {
                200
            }
        });
        let s = auto_tokens(&sign, 64, 1024);
        assert!(s.tokens > 64 && s.tokens < 1024, "{s:?}");
        // Degenerate sizes do not panic.
        assert_eq!(auto_tokens(&image(1, 1, |_, _| 0), 64, 1024).tokens, 64);
        assert_eq!(auto_tokens(&flat, 2048, 1024).tokens, 1024);
    }
}
