//! The path for calls with many query rows (encoders, prefill): keys and values are laid out once per call, then
//! each job computes its scores and weighted values as small matrix products held in SIMD registers.
//!
//! The row path computes one query's scores at a time, each a dot product reduced across lanes, and reads a key
//! for every query. Here a head's keys are stored transposed in panels of [`PANEL`] keys (`[head_dim][PANEL]`), so
//! up to [`TILE`] query slots times a panel's keys accumulate in registers with one broadcast of a query value and
//! one load of the keys per step, and no reduction; the weighted values likewise: [`TILE`] slots times [`VW`]
//! values of the head, one broadcast weight and one load of a value row per key. The layout costs
//! `keys * kv_width` copies per call against `rows * keys * width` multiply-adds, so it is used only when a call has
//! enough query rows ([`worth`]).
//!
//! The register kernels are written once ([`register_tiles`]) over a module's vector type and its load, store,
//! broadcast and FMA: `__m256` with AVX2+FMA on x86_64, `float32x4_t` on aarch64.

use super::{exp_poly, exp_sub_sum, max_of, Args, KvRows, SPAN};
use half::f16;
use std::ops::Range;
use std::sync::Mutex;

/// Keys per panel.
pub(super) const PANEL: usize = 16;

/// Query slots (rows × heads of a group) per register tile.
const TILE: usize = 6;

/// Values of a head per register run of the weighted sum.
const VW: usize = 16;

/// Query rows per job.
pub(super) const ROWS: usize = 24;

/// Most key and value values (each) a call lays out; past it (a long context) the row path runs.
const MAX_LAID: usize = 1 << 22;

/// Whether a call of `n` query rows with `g` query heads per KV head over `keys` slots of `kvd` values takes this
/// path: the per-call layout is paid back once a head's keys are read by this many query slots.
pub(super) fn worth(n: usize, g: usize, keys: usize, kvd: usize) -> bool {
    n * g >= 16 && keys * kvd <= MAX_LAID
}

/// The register kernels of one instruction set.
pub(super) trait Kern {
    /// `out[r * SPAN + c] = scale · q[r] · key c` for the keys of `panels` (whole panels of `hd * PANEL` values, at
    /// most [`SPAN`] keys; keys past the caller's piece come out of the zero padding or later slots and are masked
    /// by the caller).
    fn qk<const R: usize>(q: [&[f32]; R], panels: &[f32], hd: usize, scale: f32, out: &mut [f32]);
    /// `acc[slots[r] * hd ..][..hd] += Σ_{p < keys} w[r][p] · v[p * hd ..][..hd]`.
    fn pv<const R: usize>(
        acc: &mut [f32],
        slots: [usize; R],
        w: [&[f32]; R],
        v: &[f32],
        keys: usize,
        hd: usize,
    );
}

/// The keys and values of slots `base .. base + len`, every KV head apart: `kt` holds head `h`'s panels at
/// `h * panels * hd * PANEL` (panel `p`: slots `base + p * PANEL ..`, value index by value index; slots past `len`
/// are zeros), `v` head `h`'s value rows at `h * len * hd`.
pub(super) struct Laid {
    base: usize,
    len: usize,
    panels: usize,
    kt: Vec<f32>,
    v: Vec<f32>,
}

impl Laid {
    /// Lays out slots `lo .. hi` from the chunks, or `None` if a slot there is in no chunk (the row path treats it
    /// as masked).
    pub(super) fn new(
        exec: &crate::Exec,
        a: &Args<'_>,
        lo: usize,
        hi: usize,
        cvt: &(impl Fn(&[f16], &mut [f32]) + Sync),
    ) -> Option<Laid> {
        let s = a.s;
        let (hd, kvd) = (s.head_dim, s.kv_heads * s.head_dim);
        let len = hi.saturating_sub(lo);
        // Where each slot comes from: (chunk, first row, slots) runs covering lo..hi exactly once.
        let mut runs: Vec<(usize, usize, Range<usize>)> = Vec::new();
        for (ci, c) in a.chunks.iter().enumerate() {
            let rows = c.k.len() / kvd;
            let (s0, e0) = (c.start.max(lo), (c.start + rows).min(hi));
            if s0 < e0 {
                runs.push((ci, s0 - c.start, s0..e0));
            }
        }
        runs.sort_by_key(|r| r.2.start);
        let mut at = lo;
        for r in &runs {
            if r.2.start != at {
                return None;
            }
            at = r.2.end;
        }
        if at != lo + len {
            return None;
        }
        let panels = len.div_ceil(PANEL);
        let (kt_head, v_head) = (panels * hd * PANEL, len * hd);
        let mut kt = vec![0f32; s.kv_heads * kt_head];
        let mut v = vec![0f32; s.kv_heads * v_head];
        if len > 0 {
            let heads: Vec<Mutex<(&mut [f32], &mut [f32])>> = kt
                .chunks_mut(kt_head)
                .zip(v.chunks_mut(v_head))
                .map(Mutex::new)
                .collect();
            let lay = |h: usize| {
                let mut guard = heads[h].lock().unwrap_or_else(|e| e.into_inner());
                let (kt, v) = &mut *guard;
                let mut row = vec![0f32; hd];
                for (ci, r0, slots) in &runs {
                    let c = &a.chunks[*ci];
                    for (i, slot) in slots.clone().enumerate() {
                        let (j, r) = (slot - lo, r0 + i);
                        read_row(c.k, kvd, r, h * hd, &mut row, cvt);
                        let panel = &mut kt[j / PANEL * hd * PANEL..][..hd * PANEL];
                        for (d, &x) in row.iter().enumerate() {
                            panel[d * PANEL + j % PANEL] = x;
                        }
                        read_row(c.v, kvd, r, h * hd, &mut v[j * hd..(j + 1) * hd], cvt);
                    }
                }
            };
            if len * kvd >= 1 << 15 {
                exec.for_each(s.kv_heads, &lay);
            } else {
                (0..s.kv_heads).for_each(lay);
            }
        }
        Some(Laid {
            base: lo,
            len,
            panels,
            kt,
            v,
        })
    }
}

/// Row `r` of `kv`, values `offset .. offset + out.len()`, as f32.
fn read_row(
    kv: KvRows<'_>,
    kvd: usize,
    r: usize,
    offset: usize,
    out: &mut [f32],
    cvt: &impl Fn(&[f16], &mut [f32]),
) {
    let w = out.len();
    match kv {
        KvRows::F32(s) => out.copy_from_slice(&s[r * kvd + offset..][..w]),
        KvRows::F16(s) => cvt(&s[r * kvd + offset..][..w], out),
        KvRows::Q8 { q, d } => {
            let bpr = kvd.div_ceil(super::KV_Q8_BLOCK);
            for (i, o) in out.iter_mut().enumerate() {
                let at = offset + i;
                *o = q[r * kvd + at] as f32 * d[r * bpr + at / super::KV_Q8_BLOCK].to_f32();
            }
        }
    }
}

/// One KV head and query rows `rows`, as the row path's job: pieces of up to [`SPAN`] slots, an online softmax per
/// query slot, the scores and weighted values of up to [`TILE`] slots at a time through `K`.
#[inline(always)]
pub(super) fn job<K: Kern>(a: &Args<'_>, laid: &Laid, kvh: usize, rows: Range<usize>) {
    let s = a.s;
    let hd = s.head_dim;
    let (qd, g) = (s.heads * hd, s.heads / s.kv_heads);
    let nq = rows.len();
    let (b, e) = (laid.base, laid.base + laid.len);
    let vis: Vec<Range<usize>> = rows
        .clone()
        .map(|t| {
            let r = a.mask.visible(a.q0 + t, a.keys);
            r.start.clamp(b, e)..r.end.clamp(b, e)
        })
        .collect();
    let lo = vis.iter().filter(|r| !r.is_empty()).map(|r| r.start).min();
    let hi = vis.iter().map(|r| r.end).max().unwrap_or(0);
    let (mut m, mut l) = (vec![f32::NEG_INFINITY; nq * g], vec![0f32; nq * g]);
    let mut acc = vec![0f32; nq * g * hd];
    let mut sc = vec![0f32; nq * g * SPAN];
    let kt = &laid.kt[kvh * laid.panels * hd * PANEL..][..laid.panels * hd * PANEL];
    let vh = &laid.v[kvh * laid.len * hd..][..laid.len * hd];
    // The slots that see part of the current piece, and which part (relative to its start).
    let mut act: Vec<(usize, Range<usize>)> = Vec::with_capacity(nq * g);
    if let Some(lo) = lo {
        // Pieces start on a panel of the layout.
        let first = b + (lo - b) / PANEL * PANEL;
        for cs in (first..hi).step_by(SPAN) {
            let ce = (cs + SPAN).min(hi);
            act.clear();
            for (i, r) in vis.iter().enumerate() {
                let (ps, pe) = (r.start.max(cs), r.end.min(ce));
                if ps < pe {
                    act.extend((0..g).map(|j| (i * g + j, ps - cs..pe - cs)));
                }
            }
            let p0 = (cs - b) / PANEL;
            let panels = &kt[p0 * hd * PANEL..][..(ce - cs).div_ceil(PANEL) * hd * PANEL];
            for (ti, tile) in act.chunks(TILE).enumerate() {
                let mut q: [&[f32]; TILE] = [&[]; TILE];
                for (q, &(slot, _)) in q.iter_mut().zip(tile) {
                    let t = rows.start + slot / g;
                    *q = &a.q[t * qd + (kvh * g + slot % g) * hd..][..hd];
                }
                let out = &mut sc[ti * TILE * SPAN..][..tile.len() * SPAN];
                qk::<K>(&q[..tile.len()], panels, hd, a.scale, out);
            }
            // Online softmax per slot over its visible part; the rest of its row gets weight 0.
            for (k, (slot, part)) in act.iter().enumerate() {
                let row = &mut sc[k * SPAN..(k + 1) * SPAN];
                let seen = &mut row[part.clone()];
                let mnew = m[*slot].max(max_of(seen));
                let corr = exp_poly(m[*slot] - mnew);
                let sum = exp_sub_sum(seen, mnew);
                row[..part.start].fill(0.0);
                row[part.end..].fill(0.0);
                let ah = &mut acc[slot * hd..(slot + 1) * hd];
                if corr != 1.0 {
                    ah.iter_mut().for_each(|x| *x *= corr);
                }
                l[*slot] = l[*slot] * corr + sum;
                m[*slot] = mnew;
            }
            let v = &vh[(cs - b) * hd..(ce - b) * hd];
            for (ti, tile) in act.chunks(TILE).enumerate() {
                let w = &sc[ti * TILE * SPAN..][..tile.len() * SPAN];
                pv::<K>(&mut acc, tile, w, v, ce - cs, hd);
            }
        }
    }
    super::finish(a, kvh, rows, &l, &acc);
}

/// [`Kern::qk`] for the 1 ..= [`TILE`] query rows of `q`.
#[inline(always)]
fn qk<K: Kern>(q: &[&[f32]], panels: &[f32], hd: usize, scale: f32, out: &mut [f32]) {
    fn go<K: Kern, const R: usize>(q: &[&[f32]], p: &[f32], hd: usize, sc: f32, o: &mut [f32]) {
        K::qk::<R>(std::array::from_fn(|r| q[r]), p, hd, sc, o)
    }
    match q.len() {
        6 => go::<K, 6>(q, panels, hd, scale, out),
        5 => go::<K, 5>(q, panels, hd, scale, out),
        4 => go::<K, 4>(q, panels, hd, scale, out),
        3 => go::<K, 3>(q, panels, hd, scale, out),
        2 => go::<K, 2>(q, panels, hd, scale, out),
        _ => go::<K, 1>(q, panels, hd, scale, out),
    }
}

/// [`Kern::pv`] for a tile's slots, their weights `SPAN` apart in `w`.
#[inline(always)]
fn pv<K: Kern>(
    acc: &mut [f32],
    tile: &[(usize, Range<usize>)],
    w: &[f32],
    v: &[f32],
    keys: usize,
    hd: usize,
) {
    fn go<K: Kern, const R: usize>(
        acc: &mut [f32],
        tile: &[(usize, Range<usize>)],
        w: &[f32],
        v: &[f32],
        keys: usize,
        hd: usize,
    ) {
        let slots = std::array::from_fn(|r| tile[r].0);
        let w = std::array::from_fn(|r| &w[r * SPAN..][..keys]);
        K::pv::<R>(acc, slots, w, v, keys, hd)
    }
    match tile.len() {
        6 => go::<K, 6>(acc, tile, w, v, keys, hd),
        5 => go::<K, 5>(acc, tile, w, v, keys, hd),
        4 => go::<K, 4>(acc, tile, w, v, keys, hd),
        3 => go::<K, 3>(acc, tile, w, v, keys, hd),
        2 => go::<K, 2>(acc, tile, w, v, keys, hd),
        _ => go::<K, 1>(acc, tile, w, v, keys, hd),
    }
}

/// The type `$kern` implementing [`Kern`] with register kernels over the calling module's vector type `V` of `L` lanes and its `zero`, `splat`, `mul`,
/// `fma`, `ld` and `st`, each function carrying the given attributes (the target features the intrinsics need).
macro_rules! register_tiles {
    ($(#[$doc:meta])* $kern:ident, $(#[$attr:meta])*) => {
        $(#[$doc])*
        pub(crate) struct $kern;

        impl Kern for $kern {
            #[inline(always)]
            fn qk<const R: usize>(q: [&[f32]; R], p: &[f32], hd: usize, sc: f32, o: &mut [f32]) {
                // SAFETY: the functions' target features (if any) are the CPU's: the type is used only on an
                // executor of that family.
                #[allow(unused_unsafe)]
                unsafe {
                    qk::<R>(q, p, hd, sc, o)
                }
            }
            #[inline(always)]
            fn pv<const R: usize>(
                acc: &mut [f32],
                slots: [usize; R],
                w: [&[f32]; R],
                v: &[f32],
                keys: usize,
                hd: usize,
            ) {
                // SAFETY: as above.
                #[allow(unused_unsafe)]
                unsafe {
                    pv::<R>(acc, slots, w, v, keys, hd)
                }
            }
        }

        /// [`Kern::qk`](super::Kern::qk).
        $(#[$attr])*
        pub(super) fn qk<const R: usize>(
            q: [&[f32]; R],
            panels: &[f32],
            hd: usize,
            scale: f32,
            out: &mut [f32],
        ) {
            const N: usize = PANEL / L;
            let np = panels.len() / (hd * PANEL);
            assert!(
                panels.len() == np * hd * PANEL
                    && np * PANEL <= SPAN
                    && out.len() >= R * SPAN
                    && q.iter().all(|q| q.len() >= hd),
                "qk operands"
            );
            let sv = splat(scale);
            let o = out.as_mut_ptr();
            for p in 0..np {
                let k0 = panels[p * hd * PANEL..].as_ptr();
                let mut s = [[zero(); N]; R];
                for d in 0..hd {
                    let mut k = [zero(); N];
                    for c in 0..N {
                        // SAFETY: row d of panel p, PANEL values within `panels` (asserted).
                        k[c] = unsafe { ld(k0.add(d * PANEL + c * L)) };
                    }
                    for r in 0..R {
                        // SAFETY: d < hd <= q[r].len() (asserted).
                        let x = splat(unsafe { *q[r].get_unchecked(d) });
                        for c in 0..N {
                            s[r][c] = fma(x, k[c], s[r][c]);
                        }
                    }
                }
                for r in 0..R {
                    for c in 0..N {
                        // SAFETY: r * SPAN + p * PANEL + (c + 1) * L <= R * SPAN <= out.len() (asserted).
                        unsafe { st(o.add(r * SPAN + p * PANEL + c * L), mul(s[r][c], sv)) };
                    }
                }
            }
        }

        /// [`Kern::pv`](super::Kern::pv).
        $(#[$attr])*
        pub(super) fn pv<const R: usize>(
            acc: &mut [f32],
            slots: [usize; R],
            w: [&[f32]; R],
            v: &[f32],
            keys: usize,
            hd: usize,
        ) {
            assert!(
                slots.iter().all(|&s| (s + 1) * hd <= acc.len())
                    && w.iter().all(|w| w.len() >= keys)
                    && v.len() >= keys * hd,
                "pv operands"
            );
            let (pa, pv) = (acc.as_mut_ptr(), v.as_ptr());
            let mut d0 = 0;
            while d0 + VW <= hd {
                // SAFETY: values d0 .. d0 + VW <= hd of each slot's accumulator and of each of the `keys` rows.
                unsafe { pv_run::<R, { VW / L }>(pa, slots, w, pv, keys, hd, d0) };
                d0 += VW;
            }
            while d0 + L <= hd {
                // SAFETY: as above, for L values.
                unsafe { pv_run::<R, 1>(pa, slots, w, pv, keys, hd, d0) };
                d0 += L;
            }
            for d in d0..hd {
                for r in 0..R {
                    let x: f32 = (0..keys).map(|p| w[r][p] * v[p * hd + d]).sum();
                    acc[slots[r] * hd + d] += x;
                }
            }
        }

        /// One run of [`pv`] over `N * L` values from `d0`, the accumulators in `R * N` registers.
        ///
        /// # Safety
        /// `pa[slots[r] * hd + d0 ..][..N * L]` and `pv[p * hd + d0 ..][..N * L]` for `p < keys` are in bounds,
        /// and `w[r].len() >= keys`.
        $(#[$attr])*
        unsafe fn pv_run<const R: usize, const N: usize>(
            pa: *mut f32,
            slots: [usize; R],
            w: [&[f32]; R],
            pv: *const f32,
            keys: usize,
            hd: usize,
            d0: usize,
        ) {
            // SAFETY: the bounds are the caller's.
            unsafe {
                let mut a = [[zero(); N]; R];
                for r in 0..R {
                    for c in 0..N {
                        a[r][c] = ld(pa.add(slots[r] * hd + d0 + c * L));
                    }
                }
                for p in 0..keys {
                    let row = pv.add(p * hd + d0);
                    let mut x = [zero(); N];
                    for c in 0..N {
                        x[c] = ld(row.add(c * L));
                    }
                    for r in 0..R {
                        let b = splat(*w[r].get_unchecked(p));
                        for c in 0..N {
                            a[r][c] = fma(b, x[c], a[r][c]);
                        }
                    }
                }
                for r in 0..R {
                    for c in 0..N {
                        st(pa.add(slots[r] * hd + d0 + c * L), a[r][c]);
                    }
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use super::{Args, Kern, Laid, PANEL, SPAN, VW};
    use core::arch::x86_64::*;
    use std::ops::Range;

    type V = __m256;
    const L: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn zero() -> V {
        _mm256_setzero_ps()
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn splat(x: f32) -> V {
        _mm256_set1_ps(x)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn mul(a: V, b: V) -> V {
        _mm256_mul_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn fma(a: V, b: V, c: V) -> V {
        _mm256_fmadd_ps(a, b, c)
    }
    /// # Safety
    /// `p[..8]` is readable.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn ld(p: *const f32) -> V {
        // SAFETY: the caller's.
        unsafe { _mm256_loadu_ps(p) }
    }
    /// # Safety
    /// `p[..8]` is writable.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn st(p: *mut f32, x: V) {
        // SAFETY: the caller's.
        unsafe { _mm256_storeu_ps(p, x) }
    }

    register_tiles!(
        /// AVX2+FMA registers (used only once the executor's family is AVX2: see `job`).
        Avx2,
        #[inline]
        #[target_feature(enable = "avx2,fma")]
    );

    /// [`super::job`] with AVX2, FMA and F16C enabled for its softmax.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) fn job(a: &Args<'_>, laid: &Laid, kvh: usize, rows: Range<usize>) {
        super::job::<Avx2>(a, laid, kvh, rows)
    }
}

#[cfg(target_arch = "aarch64")]
pub(super) mod neon {
    use super::{Kern, PANEL, SPAN, VW};
    use core::arch::aarch64::*;

    type V = float32x4_t;
    const L: usize = 4;

    #[inline(always)]
    fn zero() -> V {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    fn splat(x: f32) -> V {
        // SAFETY: as above.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    fn mul(a: V, b: V) -> V {
        // SAFETY: as above.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn fma(a: V, b: V, c: V) -> V {
        // SAFETY: as above.
        unsafe { vfmaq_f32(c, a, b) }
    }
    /// # Safety
    /// `p[..4]` is readable.
    #[inline(always)]
    unsafe fn ld(p: *const f32) -> V {
        // SAFETY: the caller's.
        unsafe { vld1q_f32(p) }
    }
    /// # Safety
    /// `p[..4]` is writable.
    #[inline(always)]
    unsafe fn st(p: *mut f32, x: V) {
        // SAFETY: the caller's.
        unsafe { vst1q_f32(p, x) }
    }

    register_tiles!(
        /// NEON registers (baseline on aarch64).
        Neon,
        #[inline]
    );
}
