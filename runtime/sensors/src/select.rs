//! Frame selection: which camera frame is worth sending to a model.
//!
//! - Luma: BT.601 weights in integers, `Y = (77 R + 150 G + 29 B + 128) >> 8` (full range 0..255).
//! - [`sharpness`]: the variance of the Laplacian of the luma (the usual focus measure), with the 3x3 kernel
//!   `[0 1 0; 1 -4 1; 0 1 0]` over interior pixels (borders skipped). Higher is sharper; a flat image gives 0.
//!   Blur from motion or focus removes the high frequencies the Laplacian responds to.
//! - [`Thumbnail`] / [`is_near_duplicate`]: the luma box-averaged down to [`THUMB_SIDE`]² cells; two frames
//!   whose mean absolute difference of thumbnails is below a threshold (in luma levels, 0..255) are near
//!   duplicates. Downscaling first makes it insensitive to sensor noise and tiny shakes.
//! - [`FrameRing`]: the last frames with their timestamps, bounded in count and in age.

use flint_media::RgbImage;
use std::collections::VecDeque;

/// Side of a [`Thumbnail`], in cells.
pub const THUMB_SIDE: usize = 16;
/// A mean absolute thumbnail difference (luma levels) below which a frame counts as a near duplicate.
pub const DEFAULT_DUPLICATE_THRESHOLD: f32 = 4.0;

/// BT.601 luma of one RGB pixel (see the module docs).
#[inline]
pub fn luma(rgb: [u8; 3]) -> u8 {
    ((77 * u32::from(rgb[0]) + 150 * u32::from(rgb[1]) + 29 * u32::from(rgb[2]) + 128) >> 8) as u8
}

fn luma_plane(img: &RgbImage) -> Vec<u8> {
    img.data
        .chunks_exact(3)
        .map(|p| luma([p[0], p[1], p[2]]))
        .collect()
}

/// Variance of the Laplacian of the luma (see the module docs). Images smaller than 3x3 give 0.
pub fn sharpness(img: &RgbImage) -> f64 {
    let (w, h) = (img.width, img.height);
    if w < 3 || h < 3 || img.data.len() != w * h * 3 {
        return 0.0;
    }
    let y = luma_plane(img);
    let (mut sum, mut sum2) = (0f64, 0f64);
    for r in 1..h - 1 {
        let (up, mid, down) = (
            &y[(r - 1) * w..r * w],
            &y[r * w..(r + 1) * w],
            &y[(r + 1) * w..(r + 2) * w],
        );
        for c in 1..w - 1 {
            let l = i32::from(up[c])
                + i32::from(down[c])
                + i32::from(mid[c - 1])
                + i32::from(mid[c + 1])
                - 4 * i32::from(mid[c]);
            let l = f64::from(l);
            sum += l;
            sum2 += l * l;
        }
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let mean = sum / n;
    (sum2 / n - mean * mean).max(0.0)
}

/// Index of the sharpest frame ([`sharpness`]); the first one on ties; `None` for no frames.
pub fn pick_sharpest<'a, I>(frames: I) -> Option<usize>
where
    I: IntoIterator<Item = &'a RgbImage>,
{
    let mut best: Option<(usize, f64)> = None;
    for (i, f) in frames.into_iter().enumerate() {
        let s = sharpness(f);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// A small luma thumbnail of a frame, for near-duplicate checks (keep the last sent frame's).
#[derive(Clone, Debug, PartialEq)]
pub struct Thumbnail {
    cells: Vec<f32>,
}

impl Thumbnail {
    /// The thumbnail of `img`: luma averaged over a [`THUMB_SIDE`]² grid of boxes (fewer for tiny images).
    pub fn of(img: &RgbImage) -> Thumbnail {
        let (w, h) = (img.width, img.height);
        if w == 0 || h == 0 || img.data.len() != w * h * 3 {
            return Thumbnail { cells: Vec::new() };
        }
        let (tw, th) = (THUMB_SIDE.min(w), THUMB_SIDE.min(h));
        let mut sum = vec![0u64; tw * th];
        let mut cnt = vec![0u32; tw * th];
        for y in 0..h {
            let ty = y * th / h;
            let row = &img.data[y * w * 3..(y + 1) * w * 3];
            for x in 0..w {
                let tx = x * tw / w;
                let p = &row[x * 3..x * 3 + 3];
                sum[ty * tw + tx] += u64::from(luma([p[0], p[1], p[2]]));
                cnt[ty * tw + tx] += 1;
            }
        }
        let cells = sum
            .iter()
            .zip(&cnt)
            .map(|(&s, &c)| s as f32 / c.max(1) as f32)
            .collect();
        Thumbnail { cells }
    }

    /// Mean absolute difference of two thumbnails, in luma levels; `f32::INFINITY` when their grids differ
    /// (frames of different sizes are never duplicates).
    pub fn difference(&self, other: &Thumbnail) -> f32 {
        if self.cells.len() != other.cells.len() || self.cells.is_empty() {
            return f32::INFINITY;
        }
        let s: f32 = self
            .cells
            .iter()
            .zip(&other.cells)
            .map(|(a, b)| (a - b).abs())
            .sum();
        s / self.cells.len() as f32
    }
}

/// Whether `candidate` is a near duplicate of `last_sent`: the [`Thumbnail::difference`] of the two is below
/// `threshold` (e.g. [`DEFAULT_DUPLICATE_THRESHOLD`]).
pub fn is_near_duplicate(last_sent: &RgbImage, candidate: &RgbImage, threshold: f32) -> bool {
    Thumbnail::of(last_sent).difference(&Thumbnail::of(candidate)) < threshold
}

/// The last frames with their timestamps: at most `capacity` frames, none older than `max_age_ms` before the
/// newest. Timestamps must not go backwards (a frame older than the newest is dropped).
#[derive(Debug, Clone)]
pub struct FrameRing {
    frames: VecDeque<(u64, RgbImage)>,
    capacity: usize,
    max_age_ms: u64,
}

impl FrameRing {
    /// A ring of at most `capacity` (at least 1) frames spanning at most `max_age_ms`.
    pub fn new(capacity: usize, max_age_ms: u64) -> FrameRing {
        let capacity = capacity.max(1);
        FrameRing {
            frames: VecDeque::with_capacity(capacity),
            capacity,
            max_age_ms,
        }
    }

    /// Adds a frame; returns false (and drops it) if it is older than the newest frame held.
    pub fn push(&mut self, t_ms: u64, image: RgbImage) -> bool {
        if self.frames.back().is_some_and(|(t, _)| *t > t_ms) {
            return false;
        }
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames.push_back((t_ms, image));
        let cutoff = t_ms.saturating_sub(self.max_age_ms);
        while self.frames.front().is_some_and(|(t, _)| *t < cutoff) {
            self.frames.pop_front();
        }
        true
    }

    /// Frames with `now_ms - 1000 < t <= now_ms`, oldest first (what a video model takes).
    pub fn last_second(&self, now_ms: u64) -> Vec<(u64, &RgbImage)> {
        self.window(now_ms, 1000)
    }

    /// Frames with `now_ms - span_ms < t <= now_ms`, oldest first.
    pub fn window(&self, now_ms: u64, span_ms: u64) -> Vec<(u64, &RgbImage)> {
        self.frames
            .iter()
            .filter(|(t, _)| *t <= now_ms && t.saturating_add(span_ms) > now_ms)
            .map(|(t, f)| (*t, f))
            .collect()
    }

    /// The newest frame.
    pub fn latest(&self) -> Option<(u64, &RgbImage)> {
        self.frames.back().map(|(t, f)| (*t, f))
    }

    /// All frames held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &RgbImage)> {
        self.frames.iter().map(|(t, f)| (*t, f))
    }

    /// Number of frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Drops all frames.
    pub fn clear(&mut self) {
        self.frames.clear();
    }
}
