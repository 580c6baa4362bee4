//! The tile contract every ISA implements, and the loop that covers a matrix with tiles.
//!
//! A kernel computes an `R x C` tile: `R` weight rows dotted with `C` activation rows, all of the same length `k`
//! (in elements for float kernels, in blocks for quant kernels). Matvec is `C = 1`; matmul uses wider `C` so each
//! weight block loaded into registers serves `C` activation rows.

use std::ops::Range;

/// One (ISA, weight type) kernel. Implemented by zero-sized marker types in the per-ISA files.
pub(crate) trait Kernel {
    /// Weight element or block.
    type W: Sync;
    /// Activation element (`f32`) or block ([`crate::BlockQ8A`]).
    type A: Sync;
    /// Returns `t[c][r] = dot(w[r], a[c])`.
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA (checked by [`crate::Isa::available`]); all slices have equal length.
    unsafe fn tile<const R: usize, const C: usize>(
        w: [&[Self::W]; R],
        a: [&[Self::A]; C],
    ) -> [[f32; R]; C];
}

/// Where a tile's results go: `out[j * ldo + r]` for activation row `j`, weight row `r`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutPtr {
    pub ptr: *mut f32,
    pub ldo: usize,
    pub len: usize,
}

// SAFETY: an OutPtr is only shared between threads that write disjoint sets of weight rows (see `run_rows`).
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// # Safety
    /// No other thread reads or writes index `j * ldo + r` while this runs.
    #[inline(always)]
    unsafe fn put<const R: usize, const C: usize>(&self, t: [[f32; R]; C], r0: usize, j0: usize) {
        for (c, row) in t.iter().enumerate() {
            let base = (j0 + c) * self.ldo + r0;
            assert!(base + R <= self.len, "tile output out of range");
            for (r, v) in row.iter().enumerate() {
                // SAFETY: bounds checked above; exclusivity is the caller's contract.
                unsafe { *self.ptr.add(base + r) = *v };
            }
        }
    }
}

/// Computes weight rows `rows` for all `n` activation rows with `R x C` tiles and narrower tiles at the edges.
///
/// # Safety
/// The CPU supports `K`'s ISA; `w` holds at least `rows.end * k` units and `a` exactly `n * k`; `out` covers
/// `n * ldo` floats and no other thread touches rows `rows` of it during the call.
pub(crate) unsafe fn run_rows<K: Kernel, const R: usize, const C: usize>(
    w: &[K::W],
    a: &[K::A],
    k: usize,
    n: usize,
    rows: Range<usize>,
    out: OutPtr,
) {
    let wr = |r: usize| &w[r * k..(r + 1) * k];
    let ar = |j: usize| &a[j * k..(j + 1) * k];
    let mut r = rows.start;
    while r + R <= rows.end {
        let ws: [&[K::W]; R] = core::array::from_fn(|i| wr(r + i));
        let mut j = 0;
        while j + C <= n {
            // SAFETY: ISA support, equal lengths (k units each) and exclusive rows hold by contract.
            unsafe {
                out.put(
                    K::tile::<R, C>(ws, core::array::from_fn(|c| ar(j + c))),
                    r,
                    j,
                )
            };
            j += C;
        }
        while j < n {
            // SAFETY: ISA support, equal lengths (k units each) and exclusive rows hold by contract.
            unsafe { out.put(K::tile::<R, 1>(ws, [ar(j)]), r, j) };
            j += 1;
        }
        r += R;
    }
    while r < rows.end {
        let ws = [wr(r)];
        let mut j = 0;
        while j + C <= n {
            // SAFETY: ISA support, equal lengths (k units each) and exclusive rows hold by contract.
            unsafe {
                out.put(
                    K::tile::<1, C>(ws, core::array::from_fn(|c| ar(j + c))),
                    r,
                    j,
                )
            };
            j += C;
        }
        while j < n {
            // SAFETY: ISA support, equal lengths (k units each) and exclusive rows hold by contract.
            unsafe { out.put(K::tile::<1, 1>(ws, [ar(j)]), r, j) };
            j += 1;
        }
        r += 1;
    }
}

/// A kernel over row-interleaved blocks (see `interleaved.rs`): one unit of `W` covers 8 weight rows, and a tile is
/// one group of 8 rows dotted with `C` activation rows.
pub(crate) trait GroupKernel {
    /// An interleaved block (8 rows x 32 columns).
    type W: Sync;
    /// Returns `t[c][r] = dot(row r of the group, a[c])`.
    ///
    /// # Safety
    /// The CPU supports the kernel's ISA; `w` and every `a[c]` have equal length.
    unsafe fn tile<const C: usize>(w: &[Self::W], a: [&[crate::BlockQ8A]; C]) -> [[f32; 8]; C];
}

/// Computes groups `groups` (rows `8 * groups`) for all `n` activation rows with `1 x C` group tiles.
///
/// # Safety
/// The CPU supports `K`'s ISA; `w` holds at least `groups.end * k` blocks and `a` exactly `n * k`; `out` covers
/// `n * ldo` floats and no other thread touches rows `8 * groups` of it during the call.
pub(crate) unsafe fn run_groups<K: GroupKernel, const C: usize>(
    w: &[K::W],
    a: &[crate::BlockQ8A],
    k: usize,
    n: usize,
    groups: Range<usize>,
    out: OutPtr,
) {
    let ar = |j: usize| &a[j * k..(j + 1) * k];
    for g in groups {
        let wg = &w[g * k..(g + 1) * k];
        let mut j = 0;
        while j + C <= n {
            // SAFETY: ISA support, equal lengths (k blocks each) and exclusive rows hold by contract.
            unsafe {
                out.put(
                    K::tile::<C>(wg, core::array::from_fn(|c| ar(j + c))),
                    8 * g,
                    j,
                )
            };
            j += C;
        }
        // The last 1..C rows in one narrower tile, so the weights are read once more, not once per row (an expert
        // that 2 or 3 of a batch's rows are routed to).
        let rest = n - j;
        if rest == 3 && C > 3 {
            // SAFETY: as above.
            unsafe { out.put(K::tile::<3>(wg, [ar(j), ar(j + 1), ar(j + 2)]), 8 * g, j) };
        } else if rest == 2 && C > 2 {
            // SAFETY: as above.
            unsafe { out.put(K::tile::<2>(wg, [ar(j), ar(j + 1)]), 8 * g, j) };
        } else {
            while j < n {
                // SAFETY: as above.
                unsafe { out.put(K::tile::<1>(wg, [ar(j)]), 8 * g, j) };
                j += 1;
            }
        }
    }
}
