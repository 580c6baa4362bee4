//! DB (differentiable binarisation) post-processing of the detector's probability map, after RapidOCR's
//! `DBPostProcess` with its defaults: threshold the map at `thresh`, dilate with a 2x2 kernel, take each
//! 8-connected region, its minimum-area rectangle (short side >= 3), score it by the mean probability inside
//! the rectangle (`score_mode: fast`), keep it if the score reaches `box_thresh`, grow it by
//! `area * unclip_ratio / perimeter`, take the grown rectangle (short side >= 5) and scale it to the image.
//!
//! One difference from RapidOCR: OpenCV's `findContours(RETR_LIST)` also returns the inner borders of regions
//! with holes, and RapidOCR boxes those too; here only outer regions are boxed (a hole inside a text region
//! would otherwise give a second, overlapping box).

use super::geom::{mini_box, row_span, unclip, Pt};

/// Thresholds of the post-processing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DbParams {
    /// Pixel threshold on the probability map (0.3).
    pub thresh: f32,
    /// Minimum mean probability inside a box (0.5).
    pub box_thresh: f32,
    /// Growth factor (1.6).
    pub unclip_ratio: f64,
    /// At most this many regions are looked at (1000).
    pub max_candidates: usize,
}

/// A detected box in image pixels (integers, as RapidOCR's), corners as [`mini_box`] orders them.
#[derive(Clone, Debug, PartialEq)]
pub struct DetBox {
    /// Corners.
    pub quad: [Pt; 4],
    /// Mean map probability inside the box.
    pub score: f32,
}

/// `cv2.dilate(mask, ones(2, 2))`: each pixel ORs itself with its left, upper and upper-left neighbours.
fn dilate(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let at = |xx: usize, yy: usize| mask[yy * w + xx];
            out[y * w + x] = at(x, y)
                || (x > 0 && at(x - 1, y))
                || (y > 0 && (at(x, y - 1) || (x > 0 && at(x - 1, y - 1))));
        }
    }
    out
}

/// 8-connected regions of `mask`, each as its leftmost and rightmost pixel per row (enough for the hull).
fn regions(mask: &[bool], w: usize, h: usize, max: usize) -> Vec<Vec<Pt>> {
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || seen[start] {
            continue;
        }
        if out.len() >= max {
            break;
        }
        // Row extremes: (row, min x, max x).
        let mut rows: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            let e = rows.entry(y).or_insert((x, x));
            e.0 = e.0.min(x);
            e.1 = e.1.max(x);
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let (nx, ny) = (x as isize + dx, y as isize + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let mut pts = Vec::with_capacity(rows.len() * 2);
        for (y, (x0, x1)) in rows {
            pts.push([x0 as f64, y as f64]);
            if x1 != x0 {
                pts.push([x1 as f64, y as f64]);
            }
        }
        out.push(pts);
    }
    out
}

/// Mean of `pred` over the quad `b` (corners truncated to integers as `cv2.fillPoly` gets them).
fn box_score(pred: &[f32], w: usize, h: usize, b: &[Pt; 4]) -> f32 {
    let clampi = |v: f64, hi: usize| (v as isize).clamp(0, hi as isize - 1) as usize;
    let xmin = clampi(b.iter().map(|p| p[0]).fold(f64::MAX, f64::min).floor(), w);
    let xmax = clampi(b.iter().map(|p| p[0]).fold(f64::MIN, f64::max).ceil(), w);
    let ymin = clampi(b.iter().map(|p| p[1]).fold(f64::MAX, f64::min).floor(), h);
    let ymax = clampi(b.iter().map(|p| p[1]).fold(f64::MIN, f64::max).ceil(), h);
    let poly: Vec<Pt> = b
        .iter()
        .map(|p| [(p[0] - xmin as f64).trunc(), (p[1] - ymin as f64).trunc()])
        .collect();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in ymin..=ymax {
        let Some((lo, hi)) = row_span(&poly, (y - ymin) as f64) else {
            continue;
        };
        let x0 = (lo.round().max(0.0) as usize + xmin).min(xmax + 1);
        let x1 = (hi.round().max(0.0) as usize + xmin).min(xmax);
        if x0 <= x1 {
            sum += pred[y * w + x0..=y * w + x1]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>();
            n += x1 - x0 + 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

/// Python's `round` (half to even), used by numpy for box coordinates.
pub fn round_half_even(v: f64) -> f64 {
    v.round_ties_even()
}

/// Boxes from the `map_w` x `map_h` probability map, scaled to a `dest_w` x `dest_h` image.
pub fn boxes_from_map(
    pred: &[f32],
    map_w: usize,
    map_h: usize,
    dest_w: usize,
    dest_h: usize,
    p: &DbParams,
) -> Vec<DetBox> {
    if pred.len() != map_w * map_h || map_w == 0 || map_h == 0 {
        return Vec::new();
    }
    let mask: Vec<bool> = pred.iter().map(|&v| v > p.thresh).collect();
    let mask = dilate(&mask, map_w, map_h);
    let mut out = Vec::new();
    for pts in regions(&mask, map_w, map_h, p.max_candidates) {
        let (quad, side) = mini_box(&pts);
        if side < 3.0 {
            continue;
        }
        let score = box_score(pred, map_w, map_h, &quad);
        if p.box_thresh > score {
            continue;
        }
        let (grown, side) = mini_box(&unclip(&quad, p.unclip_ratio));
        if side < 5.0 {
            continue;
        }
        let (mw, mh, dw, dh) = (map_w as f64, map_h as f64, dest_w as f64, dest_h as f64);
        let quad = grown.map(|q| {
            [
                round_half_even(q[0] / mw * dw).clamp(0.0, dw),
                round_half_even(q[1] / mh * dh).clamp(0.0, dh),
            ]
        });
        out.push(DetBox { quad, score });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(-2.5), -2.0);
        assert_eq!(round_half_even(2.4), 2.0);
    }

    #[test]
    fn one_block_one_box() {
        let (w, h) = (64, 32);
        let mut pred = vec![0.0f32; w * h];
        for y in 10..20 {
            for x in 8..50 {
                pred[y * w + x] = 0.9;
            }
        }
        let p = DbParams {
            thresh: 0.3,
            box_thresh: 0.5,
            unclip_ratio: 1.6,
            max_candidates: 1000,
        };
        let b = boxes_from_map(&pred, w, h, w * 2, h * 2, &p);
        assert_eq!(b.len(), 1);
        assert!(b[0].score > 0.7, "{}", b[0].score);
        assert!(b[0].quad[0][0] < 16.0 && b[0].quad[2][0] > 100.0);
        assert!(boxes_from_map(&[], 0, 0, 1, 1, &p).is_empty());
    }
}
