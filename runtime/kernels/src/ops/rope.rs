//! Rotary position embeddings in transformers' `rotate_half` convention, over `[n, heads, head_dim]`.
//!
//! Every layout reduces to one table per row: for `j < head_dim / 2`, an angle `pos[c_j] * f_j` (position
//! component `c_j` of the row, inverse frequency `f_j`); dims `j` and `j + head_dim / 2` rotate together:
//! `(x_j, x_{j+h}) <- (x_j cos - x_{j+h} sin, x_{j+h} cos + x_j sin)`. transformers' `cos`/`sin` tensors are that
//! half table duplicated (`cat(freqs, freqs)`). Angles follow torch's float32 math: `f_j = 1 / theta^(2k / dim)`
//! with the exponent in f32, `angle = (pos as f32) * f_j`, then f32 `cos` / `sin`.

use super::{dispatch, Ops};

/// How the inverse frequencies map onto a row's positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeKind {
    /// One position per row; `f_j = theta^(-2j / head_dim)`.
    Plain,
    /// Two positions `(a, b)` per row (Muse Spark vision, Qwen2-VL / Qwen2.5-VL vision): `head_dim / 4`
    /// frequencies `g_k = theta^(-2k / (head_dim / 2))`; `j < head_dim / 4` uses `a * g_j`, the rest
    /// `b * g_(j - head_dim / 4)`. (Muse Spark passes `a` = the first column of its flipped, +1 position ids.)
    Axial2d,
    /// M-RoPE, three positions `(t, h, w)` per row, `f_j` as in [`RopeKind::Plain`]; frequencies in contiguous
    /// sections `[s_t, s_h, s_w]` (Qwen2-VL, Qwen2.5-Omni `mrope_section`; the sum is `head_dim / 2`).
    MropeSectioned([usize; 3]),
    /// M-RoPE interleaved (Qwen3-VL, Qwen3-Omni `apply_interleaved_mrope`): frequency `j` uses `h` when
    /// `j % 3 == 1 && j < 3 s_h`, `w` when `j % 3 == 2 && j < 3 s_w`, else `t`.
    MropeInterleaved([usize; 3]),
}

/// Precomputed inverse frequencies and position components for one head size.
#[derive(Clone, Debug)]
pub struct Rope {
    head_dim: usize,
    kind: RopeKind,
    /// `(c_j, f_j)` for `j < head_dim / 2`.
    freqs: Vec<(usize, f32)>,
}

fn inv_freq(theta: f32, k: usize, dim: usize) -> f32 {
    1.0 / theta.powf((2 * k) as f32 / dim as f32)
}

impl Rope {
    /// # Panics
    /// If `head_dim` is odd (not a multiple of 4 for [`RopeKind::Axial2d`]) or M-RoPE sections do not sum to
    /// `head_dim / 2`.
    pub fn new(kind: RopeKind, head_dim: usize, theta: f32) -> Rope {
        let half = head_dim / 2;
        assert!(
            head_dim.is_multiple_of(2) && head_dim > 0,
            "head_dim {head_dim} is odd"
        );
        let freqs = match kind {
            RopeKind::Plain => (0..half)
                .map(|j| (0, inv_freq(theta, j, head_dim)))
                .collect(),
            RopeKind::Axial2d => {
                assert!(
                    head_dim.is_multiple_of(4),
                    "axial RoPE needs head_dim % 4 == 0, got {head_dim}"
                );
                let q = head_dim / 4;
                (0..half)
                    .map(|j| (j / q, inv_freq(theta, j % q, half)))
                    .collect()
            }
            RopeKind::MropeSectioned(s) | RopeKind::MropeInterleaved(s) => {
                assert!(
                    s.iter().sum::<usize>() == half,
                    "mrope sections {s:?} for head_dim {head_dim}"
                );
                let comp = |j: usize| match kind {
                    RopeKind::MropeSectioned(_) => {
                        (j >= s[0]) as usize + (j >= s[0] + s[1]) as usize
                    }
                    _ if j % 3 == 1 && j < 3 * s[1] => 1,
                    _ if j % 3 == 2 && j < 3 * s[2] => 2,
                    _ => 0,
                };
                (0..half)
                    .map(|j| (comp(j), inv_freq(theta, j, head_dim)))
                    .collect()
            }
        };
        Rope {
            head_dim,
            kind,
            freqs,
        }
    }

    /// The head size.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Positions per row: 1, 2 (axial) or 3 (M-RoPE).
    pub fn positions(&self) -> usize {
        match self.kind {
            RopeKind::Plain => 1,
            RopeKind::Axial2d => 2,
            RopeKind::MropeSectioned(_) | RopeKind::MropeInterleaved(_) => 3,
        }
    }

    /// The half tables for `n = pos.len() / positions()` rows: `cos`, `sin` are `[n, head_dim / 2]`.
    /// `pos` is row-major `[n, positions()]` (row `r`'s `t, h, w` for M-RoPE).
    ///
    /// # Panics
    /// If the lengths do not fit.
    pub fn table(&self, pos: &[i32], cos: &mut [f32], sin: &mut [f32]) {
        let (p, half) = (self.positions(), self.head_dim / 2);
        assert!(
            pos.len().is_multiple_of(p),
            "{} positions are not rows of {p}",
            pos.len()
        );
        let n = pos.len() / p;
        assert!(
            cos.len() == n * half && sin.len() == n * half,
            "tables for {n} rows of {half}"
        );
        for (r, row) in pos.chunks_exact(p).enumerate() {
            for (j, &(c, f)) in self.freqs.iter().enumerate() {
                let (s, co) = (row[c] as f32 * f).sin_cos();
                cos[r * half + j] = co;
                sin[r * half + j] = s;
            }
        }
    }

    /// Rotates `x` (`[n, heads, head_dim]`) in place for the rows' positions `pos` (`[n, positions()]`), building
    /// each row's table once for all its heads.
    pub fn apply(&self, x: &mut [f32], heads: usize, pos: &[i32]) {
        let (p, half) = (self.positions(), self.head_dim / 2);
        let row = heads * self.head_dim;
        assert!(
            pos.len().is_multiple_of(p) && x.len() == pos.len() / p * row,
            "x of {} for {} rows",
            x.len(),
            pos.len() / p
        );
        let (mut cos, mut sin) = (vec![0f32; half], vec![0f32; half]);
        let ops = Ops::global();
        for (xr, pr) in x.chunks_exact_mut(row).zip(pos.chunks_exact(p)) {
            self.table(pr, &mut cos, &mut sin);
            ops.rope_rotate(xr, heads, self.head_dim, &cos, &sin);
        }
    }
}

fn rope_head(a: &mut [f32], b: &mut [f32], cos: &[f32], sin: &[f32]) {
    for i in 0..a.len() {
        let (x, y) = (a[i], b[i]);
        a[i] = x * cos[i] - y * sin[i];
        b[i] = y * cos[i] + x * sin[i];
    }
}

impl Ops {
    /// Rotates `x` (`[n, heads, head_dim]`) in place with half tables `cos`, `sin` (`[n, head_dim / 2]`, as
    /// [`Rope::table`] writes them).
    ///
    /// # Panics
    /// If the lengths do not fit or `head_dim` is odd.
    pub fn rope_rotate(
        &self,
        x: &mut [f32],
        heads: usize,
        head_dim: usize,
        cos: &[f32],
        sin: &[f32],
    ) {
        let half = head_dim / 2;
        assert!(
            head_dim.is_multiple_of(2) && heads > 0 && half > 0,
            "{heads} heads of {head_dim}"
        );
        let n = x.len() / (heads * head_dim);
        assert!(
            x.len() == n * heads * head_dim,
            "x of {} is not rows of {heads} x {head_dim}",
            x.len()
        );
        assert!(
            cos.len() == n * half && sin.len() == n * half,
            "tables for {n} rows of {half}"
        );
        for (r, xr) in x.chunks_exact_mut(heads * head_dim).enumerate() {
            let (c, s) = (
                &cos[r * half..(r + 1) * half],
                &sin[r * half..(r + 1) * half],
            );
            for head in xr.chunks_exact_mut(head_dim) {
                let (a, b) = head.split_at_mut(half);
                dispatch!(self, rope_head(a, b, c, s), rope_head(a, b, c, s))
            }
        }
    }
}

/// [`Ops::rope_rotate`] on the active family.
pub fn rope_rotate(x: &mut [f32], heads: usize, head_dim: usize, cos: &[f32], sin: &[f32]) {
    Ops::global().rope_rotate(x, heads, head_dim, cos, sin)
}
