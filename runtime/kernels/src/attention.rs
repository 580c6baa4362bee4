//! Grouped-query attention with mask kinds, over keys and values held in chunks (the blocks of a paged KV cache,
//! or one contiguous array), in f32 or f16.
//!
//! One call covers a whole layer of one sequence: every query row and every head. Each job is one KV head and a
//! block of up to [`QUERY_BLOCK`] query rows; it streams the chunks once, converting a chunk's f16 rows to f32
//! once for the whole block and every query head of the group, with an online softmax (running maximum and sum),
//! so memory stays `O(block · head_dim)` however long the context. Jobs run on the executor's pool when the call is
//! big enough.
//!
//! Two paths share that scheme:
//! - the row path, for few query rows (decode, short prompts): one query's scores at a time, dot products; plain
//!   Rust written so the compiler vectorizes it, compiled a second time with AVX2+FMA on x86_64 and used when the
//!   executor's family is AVX2 (NEON is part of the aarch64 baseline, so one copy serves there);
//! - the tiled path (`tiled`), for many query rows (encoders, prefill) on AVX2 and NEON: the call's keys and values
//!   laid out once, scores and weighted values as register tiles of several query rows (2x-3x the row path's
//!   speed at an encoder's shape: docs/KERNELS.md).

use crate::Exec;
use half::f16;
use std::ops::Range;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod tiled;

/// Head counts and sizes of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnShape {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads; `heads` is a multiple of it.
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
}

/// Rows of keys or values, `[rows, kv_heads * head_dim]`.
#[derive(Clone, Copy, Debug)]
pub enum KvRows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    /// 8-bit values with an f16 scale per [`KV_Q8_BLOCK`] values: each row is cut into blocks from its start (the
    /// last one shorter when the row's width is not a multiple), so `d` holds `rows * width.div_ceil(32)` scales and
    /// value `i` of row `r` is `q[r * width + i] * d[r * width.div_ceil(32) + i / 32]`.
    Q8 {
        q: &'a [i8],
        d: &'a [f16],
    },
}

/// Values per scale of [`KvRows::Q8`].
pub const KV_Q8_BLOCK: usize = 32;

impl KvRows<'_> {
    fn len(&self) -> usize {
        match self {
            KvRows::F32(s) => s.len(),
            KvRows::F16(s) => s.len(),
            KvRows::Q8 { q, .. } => q.len(),
        }
    }
}

/// One row of `kvd` values as [`KvRows::Q8`] blocks: `q` gets `kvd` values, `d` its `kvd.div_ceil(32)` scales
/// (absolute maximum / 127, rounded to f16 before the values are rounded against it).
pub fn quantize_kv_q8(x: &[f32], q: &mut [i8], d: &mut [f16]) {
    for ((xb, qb), db) in x
        .chunks(KV_Q8_BLOCK)
        .zip(q.chunks_mut(KV_Q8_BLOCK))
        .zip(d.iter_mut())
    {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = f16::from_f32(amax / 127.0);
        *db = scale;
        let s = scale.to_f32();
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        for (o, &v) in qb.iter_mut().zip(xb) {
            *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
        }
    }
}

/// Consecutive key/value slots `start .. start + rows` of a sequence.
#[derive(Clone, Copy, Debug)]
pub struct KvChunk<'a> {
    /// The slot of the first row.
    pub start: usize,
    pub k: KvRows<'a>,
    pub v: KvRows<'a>,
}

/// Which key slots a query at slot `p` sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask<'a> {
    /// Slots `0 ..= p`.
    Causal,
    /// The last `window` slots up to `p`: `p + 1 - window ..= p` (transformers' sliding-window convention).
    Sliding(usize),
    /// Every slot (encoders).
    Full,
    /// The slots of the span that holds `p` (one image, one window); a query outside every span sees nothing and
    /// gets zeros.
    BlockDiagonal(&'a [Range<usize>]),
}

impl Mask<'_> {
    /// The visible slots of a query at slot `p` among `keys` slots.
    pub fn visible(&self, p: usize, keys: usize) -> Range<usize> {
        let end = (p + 1).min(keys);
        match *self {
            Mask::Causal => 0..end,
            Mask::Sliding(w) => (p + 1).saturating_sub(w).min(end)..end,
            Mask::Full => 0..keys,
            Mask::BlockDiagonal(spans) => spans
                .iter()
                .find(|s| s.contains(&p))
                .map_or(0..0, |s| s.start.min(keys)..s.end.min(keys)),
        }
    }
}

/// Query rows per job: a chunk's keys and values are converted once for this many queries.
pub const QUERY_BLOCK: usize = 16;

/// Slots of a chunk processed at a time: the piece's keys and values of one head (f32) stay within L1/L2 while the
/// block's query rows read them.
const SPAN: usize = 64;

/// Below this many multiply-adds a call runs on one thread.
const MIN_PARALLEL_MACS: usize = 1 << 17;

/// `out[t, h] = Σ_p softmax_p(scale · q[t, h] · k[p, h / g]) · v[p, h / g]` over the visible slots `p` of query
/// `t` (at slot `q0 + t`) under `mask`, for the `n = q.len() / (heads · head_dim)` query rows, where
/// `g = heads / kv_heads` and `keys` is the number of slots the sequence has (the queries' own included).
///
/// - `q`, `out`: `[n, heads * head_dim]`.
/// - `chunks`: key/value rows by slot, in any order, not overlapping; they must cover every visible slot (a slot in
///   no chunk is treated as masked).
///
/// # Panics
/// If a length does not match the shape, or `heads` is not a multiple of `kv_heads`.
#[allow(clippy::too_many_arguments)] // every operand is named in the public signature
pub fn attention(
    exec: &Exec,
    s: AttnShape,
    q: &[f32],
    q0: usize,
    keys: usize,
    chunks: &[KvChunk<'_>],
    mask: Mask<'_>,
    scale: f32,
    out: &mut [f32],
) {
    let (qd, kvd) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    assert!(
        s.kv_heads > 0 && s.heads.is_multiple_of(s.kv_heads),
        "{s:?}"
    );
    assert!(
        qd > 0 && q.len().is_multiple_of(qd) && out.len() == q.len(),
        "q/out of {} and {} values for {s:?}",
        q.len(),
        out.len()
    );
    for c in chunks {
        assert!(
            c.k.len() % kvd == 0 && c.k.len() == c.v.len(),
            "chunk of {} / {} values for kv width {kvd}",
            c.k.len(),
            c.v.len()
        );
        for r in [c.k, c.v] {
            if let KvRows::Q8 { q, d } = r {
                assert_eq!(
                    d.len(),
                    q.len() / kvd * kvd.div_ceil(KV_Q8_BLOCK),
                    "q8 scales"
                );
            }
        }
    }
    let n = q.len() / qd;
    let a = Args {
        s,
        q,
        q0,
        keys,
        chunks,
        mask,
        scale,
        out: OutPtr(out.as_mut_ptr()),
    };
    let macs = n * keys.min(q0 + n) * qd * 2;
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if tiled_call(exec, &a, n, macs) {
        return;
    }
    let blocks = n.div_ceil(QUERY_BLOCK);
    let jobs = s.kv_heads * blocks;
    let run = |j: usize| {
        let (kvh, b) = (j % s.kv_heads, j / s.kv_heads);
        let rows = b * QUERY_BLOCK..((b + 1) * QUERY_BLOCK).min(n);
        #[cfg(target_arch = "x86_64")]
        if exec.isa().has_avx2() {
            // SAFETY: an executor's family is AVX2 only if the CPU has AVX2, FMA and F16C (`Isa::available`).
            return unsafe { job_avx2(&a, kvh, rows) };
        }
        #[cfg(target_arch = "aarch64")]
        job(
            &a,
            kvh,
            rows,
            arm::dot,
            dot4_each(arm::dot),
            crate::f16_to_f32,
            pv_portable,
        );
        #[cfg(not(target_arch = "aarch64"))]
        job(
            &a,
            kvh,
            rows,
            dot_portable,
            dot4_each(dot_portable),
            crate::f16_to_f32,
            pv_portable,
        );
    };
    if macs >= MIN_PARALLEL_MACS && jobs > 1 {
        exec.for_each(jobs, &run);
    } else {
        (0..jobs).for_each(run);
    }
}

/// Runs the call on the tiled path (see `tiled`) if the executor's family has its register kernels (AVX2 on
/// x86_64, NEON on aarch64: every family but scalar), the call is big enough, and the chunks cover every slot its rows see; returns whether
/// it did.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn tiled_call(exec: &Exec, a: &Args<'_>, n: usize, macs: usize) -> bool {
    let s = a.s;
    #[cfg(target_arch = "x86_64")]
    let ours = exec.isa().has_avx2();
    // Every aarch64 family but the portable reference has NEON.
    #[cfg(target_arch = "aarch64")]
    let ours = exec.isa() != crate::dispatch::Isa::Scalar;
    if !ours || !tiled::worth(n, s.heads / s.kv_heads, a.keys, s.kv_heads * s.head_dim) {
        return false;
    }
    // The union of the rows' visible slots.
    let (lo, hi) = (0..n)
        .map(|t| a.mask.visible(a.q0 + t, a.keys))
        .filter(|r| !r.is_empty())
        .fold((usize::MAX, 0), |(lo, hi), r| {
            (lo.min(r.start), hi.max(r.end))
        });
    let Some(laid) = tiled::Laid::new(exec, a, lo.min(hi), hi, &crate::f16_to_f32) else {
        return false;
    };
    let blocks = n.div_ceil(tiled::ROWS);
    let jobs = s.kv_heads * blocks;
    // Consecutive jobs share a KV head, so the threads read the same laid-out keys and values (an encoder head's
    // are most of a core's L2).
    let run = |j: usize| {
        let (kvh, b) = (j / blocks, j % blocks);
        let rows = b * tiled::ROWS..((b + 1) * tiled::ROWS).min(n);
        // SAFETY: the executor's family is AVX2 (checked above), which it is only if the CPU has AVX2, FMA and
        // F16C (`Isa::available`).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            tiled::avx2::job(a, &laid, kvh, rows)
        };
        #[cfg(target_arch = "aarch64")]
        tiled::job::<tiled::neon::Neon>(a, &laid, kvh, rows);
    };
    if macs >= MIN_PARALLEL_MACS && jobs > 1 {
        exec.for_each(jobs, &run);
    } else {
        (0..jobs).for_each(run);
    }
    true
}

/// `out[t, h] = softmax_p(scale * q[t, h] · k[p, h / g]) · v[p, h / g]` over positions `p` in `0..=p0 + t`: causal
/// attention over one contiguous f32 cache on the global executor (`k`, `v`: `[p0 + n, kv_heads * head_dim]` or
/// longer; later rows are not read).
///
/// # Panics
/// As [`attention`], or if the cache is shorter than `p0 + n` rows.
#[allow(clippy::too_many_arguments)]
pub fn causal_attention(
    s: AttnShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    p0: usize,
    n: usize,
    scale: f32,
    out: &mut [f32],
) {
    let kvd = s.kv_heads * s.head_dim;
    let keys = p0 + n;
    assert!(
        k.len() >= keys * kvd && v.len() >= keys * kvd,
        "cache shorter than {keys} positions"
    );
    assert!(
        q.len() == n * s.heads * s.head_dim,
        "q for {n} tokens of {s:?}"
    );
    let chunk = KvChunk {
        start: 0,
        k: KvRows::F32(&k[..keys * kvd]),
        v: KvRows::F32(&v[..keys * kvd]),
    };
    attention(
        &Exec::global(),
        s,
        q,
        p0,
        keys,
        &[chunk],
        Mask::Causal,
        scale,
        out,
    );
}

/// A raw pointer to `out`, written by jobs at disjoint (row, head) places.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: jobs write disjoint ranges (their query rows × their KV head's query heads), and `attention` returns only
// after every job has finished, while it holds `out` exclusively borrowed.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

struct Args<'a> {
    s: AttnShape,
    q: &'a [f32],
    q0: usize,
    keys: usize,
    chunks: &'a [KvChunk<'a>],
    mask: Mask<'a>,
    scale: f32,
    out: OutPtr,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn job_avx2(a: &Args<'_>, kvh: usize, rows: Range<usize>) {
    job(
        a,
        kvh,
        rows,
        // SAFETY: this function runs only with AVX2 and FMA enabled (its target features), which `x86::dot` needs.
        |x, y| unsafe { x86::dot(x, y) },
        // SAFETY: as above.
        |x, k| unsafe { x86::dot4(x, k) },
        |h, f| unsafe {
            // SAFETY: F16C is among this function's target features.
            x86::f16_to_f32(h, f)
        },
        // SAFETY: AVX2 and FMA are among this function's target features.
        |acc, w, v, stride| unsafe { x86::pv(acc, w, v, stride) },
    )
}

/// One KV head and a block of query rows.
#[inline(always)]
fn job(
    a: &Args<'_>,
    kvh: usize,
    rows: Range<usize>,
    dot: impl Fn(&[f32], &[f32]) -> f32,
    dot4: impl Fn(&[f32], [&[f32]; 4]) -> [f32; 4],
    cvt: impl Fn(&[f16], &mut [f32]),
    pv: impl Fn(&mut [f32], &[f32], &[f32], usize),
) {
    let s = a.s;
    let hd = s.head_dim;
    let (qd, kvd, g) = (s.heads * hd, s.kv_heads * hd, s.heads / s.kv_heads);
    let nq = rows.len();
    let vis: Vec<Range<usize>> = rows
        .clone()
        .map(|t| a.mask.visible(a.q0 + t, a.keys))
        .collect();
    let lo = vis.iter().map(|r| r.start).min().unwrap_or(0);
    let hi = vis.iter().map(|r| r.end).max().unwrap_or(0);
    // Running maximum, sum and weighted values per (query row, head of the group).
    let mut m = vec![f32::NEG_INFINITY; nq * g];
    let mut l = vec![0f32; nq * g];
    let mut acc = vec![0f32; nq * g * hd];
    let (mut kbuf, mut vbuf, mut sc) = (Vec::new(), Vec::new(), Vec::new());
    // Each chunk in pieces of at most `SPAN` slots, so a long one (an encoder's whole image, one contiguous cache)
    // stays in cache while every query row and head of the block reads it.
    let pieces = a.chunks.iter().flat_map(|c| {
        let crows = c.k.len() / kvd;
        let (s0, e0) = (c.start.max(lo), (c.start + crows).min(hi));
        (s0..e0)
            .step_by(SPAN)
            .map(move |cs| (c, cs, (cs + SPAN).min(e0)))
    });
    for (c, cs, ce) in pieces {
        // This head's key and value rows cs..ce, as f32, `hd` apart.
        let (kh, vh) = (
            head_rows(
                c.k,
                kvd,
                kvh * hd,
                hd,
                cs - c.start..ce - c.start,
                &mut kbuf,
                &cvt,
            ),
            head_rows(
                c.v,
                kvd,
                kvh * hd,
                hd,
                cs - c.start..ce - c.start,
                &mut vbuf,
                &cvt,
            ),
        );
        let stride = if matches!(c.k, KvRows::F32(_)) {
            kvd
        } else {
            hd
        };
        for (i, r) in vis.iter().enumerate() {
            let (ps, pe) = (r.start.max(cs), r.end.min(ce));
            if ps >= pe {
                continue;
            }
            let t = rows.start + i;
            for j in 0..g {
                let h = kvh * g + j;
                let qh = &a.q[t * qd + h * hd..t * qd + (h + 1) * hd];
                sc.resize(pe - ps, 0.0);
                scores(
                    qh,
                    &kh[(ps - cs) * stride..],
                    stride,
                    a.scale,
                    &mut sc,
                    &dot,
                    &dot4,
                );
                let cmax = max_of(&sc);
                let slot = i * g + j;
                let mnew = m[slot].max(cmax);
                let corr = exp_poly(m[slot] - mnew);
                let ah = &mut acc[slot * hd..(slot + 1) * hd];
                if corr != 1.0 {
                    ah.iter_mut().for_each(|x| *x *= corr);
                }
                // Weights, vectorized: exp(s - max) in place.
                let sum = exp_sub_sum(&mut sc, mnew);
                pv(ah, &sc, &vh[(ps - cs) * stride..], stride);
                l[slot] = l[slot] * corr + sum;
                m[slot] = mnew;
            }
        }
    }
    finish(a, kvh, rows, &l, &acc);
}

/// Writes a job's output: each (query row, head of the group) slot's weighted values over its sum (zeros for a
/// slot that saw nothing).
#[inline(always)]
fn finish(a: &Args<'_>, kvh: usize, rows: Range<usize>, l: &[f32], acc: &[f32]) {
    let hd = a.s.head_dim;
    let (qd, g) = (a.s.heads * hd, a.s.heads / a.s.kv_heads);
    for (i, t) in rows.enumerate() {
        for j in 0..g {
            let (slot, h) = (i * g + j, kvh * g + j);
            let inv = if l[slot] > 0.0 { 1.0 / l[slot] } else { 0.0 };
            // SAFETY: row t, head h of `out` (`[n, qd]`) belongs to this job only (see `OutPtr`); in bounds since
            // t < n and h < heads.
            let o = unsafe { std::slice::from_raw_parts_mut(a.out.0.add(t * qd + h * hd), hd) };
            o.iter_mut()
                .zip(&acc[slot * hd..(slot + 1) * hd])
                .for_each(|(o, x)| *o = x * inv);
        }
    }
}

/// The `width` values at `offset` of rows `rows` of `kv` (rows of `kvd` values): for f32 the chunk itself, read
/// with a stride of `kvd` starting at the first row's `offset`; for f16 converted into `buf`, `width` apart.
#[inline(always)]
fn head_rows<'b>(
    kv: KvRows<'b>,
    kvd: usize,
    offset: usize,
    width: usize,
    rows: Range<usize>,
    buf: &'b mut Vec<f32>,
    cvt: &impl Fn(&[f16], &mut [f32]),
) -> &'b [f32] {
    match kv {
        KvRows::F32(s) => &s[rows.start * kvd + offset..(rows.end - 1) * kvd + offset + width],
        KvRows::F16(s) => {
            buf.resize(rows.len() * width, 0.0);
            for (r, o) in rows.zip(buf.chunks_exact_mut(width)) {
                cvt(&s[r * kvd + offset..r * kvd + offset + width], o);
            }
            buf
        }
        KvRows::Q8 { q, d } => {
            let bpr = kvd.div_ceil(KV_Q8_BLOCK);
            buf.resize(rows.len() * width, 0.0);
            for (r, o) in rows.zip(buf.chunks_exact_mut(width)) {
                // Block by block, so each run has one scale (and vectorizes).
                let mut j = 0;
                while j < width {
                    let at = offset + j;
                    let (b, end) = (
                        at / KV_Q8_BLOCK,
                        ((at / KV_Q8_BLOCK + 1) * KV_Q8_BLOCK).min(offset + width),
                    );
                    let sc = d[r * bpr + b].to_f32();
                    let qs = &q[r * kvd + at..r * kvd + end];
                    for (o, &v) in o[j..j + qs.len()].iter_mut().zip(qs) {
                        *o = v as f32 * sc;
                    }
                    j += qs.len();
                }
            }
            buf
        }
    }
}

/// Portable dot product in 8 independent lanes (x86_64 without AVX2, or `FLINT_KERNELS=scalar`).
#[cfg(not(target_arch = "aarch64"))]
#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let n8 = a.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        for j in 0..8 {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    let tail: f32 = (n8..a.len()).map(|i| a[i] * b[i]).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let n16 = n / 16 * 16;
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        while i < n16 {
            // SAFETY: i + 16 <= n, within both slices.
            unsafe {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                s1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 8)),
                    _mm256_loadu_ps(pb.add(i + 8)),
                    s1,
                );
            }
            i += 16;
        }
        let s = _mm256_add_ps(s0, s1);
        let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_movehdup_ps(h));
        let tail: f32 = (n16..n).map(|i| a[i] * b[i]).sum();
        _mm_cvtss_f32(h) + tail
    }

    /// `[q · k[0], q · k[1], q · k[2], q · k[3]]`, the four sums reduced together.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot4(q: &[f32], k: [&[f32]; 4]) -> [f32; 4] {
        let n = k.iter().fold(q.len(), |n, k| n.min(k.len()));
        let n8 = n / 8 * 8;
        // Two accumulators per key (even and odd 8-value steps): eight independent FMA chains, enough to cover the
        // FMA latency, where four left the loop waiting on it.
        let (mut s, mut t) = ([_mm256_setzero_ps(); 4], [_mm256_setzero_ps(); 4]);
        let mut i = 0;
        while i + 16 <= n8 {
            // SAFETY: i + 16 <= n, within q and every k.
            unsafe {
                let x = _mm256_loadu_ps(q.as_ptr().add(i));
                let y = _mm256_loadu_ps(q.as_ptr().add(i + 8));
                for j in 0..4 {
                    s[j] = _mm256_fmadd_ps(x, _mm256_loadu_ps(k[j].as_ptr().add(i)), s[j]);
                    t[j] = _mm256_fmadd_ps(y, _mm256_loadu_ps(k[j].as_ptr().add(i + 8)), t[j]);
                }
            }
            i += 16;
        }
        if i < n8 {
            // SAFETY: i + 8 <= n, within q and every k.
            unsafe {
                let x = _mm256_loadu_ps(q.as_ptr().add(i));
                for j in 0..4 {
                    s[j] = _mm256_fmadd_ps(x, _mm256_loadu_ps(k[j].as_ptr().add(i)), s[j]);
                }
            }
        }
        for j in 0..4 {
            s[j] = _mm256_add_ps(s[j], t[j]);
        }
        // [s0 s1 s0 s1 | ...] then [s0 s1 s2 s3 | s0 s1 s2 s3] halves, added.
        let h01 = _mm256_hadd_ps(s[0], s[1]);
        let h23 = _mm256_hadd_ps(s[2], s[3]);
        let h = _mm256_hadd_ps(h01, h23);
        let r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let mut out = [0f32; 4];
        // SAFETY: `out` holds four f32.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), r) };
        for (j, o) in out.iter_mut().enumerate() {
            *o += (n8..n).map(|i| q[i] * k[j][i]).sum::<f32>();
        }
        out
    }

    /// `acc[d] += Σ_p w[p] · v[p · stride + d]`: the accumulator held in registers (up to 96 values at a time, so
    /// that a head of 72 or 80 values takes one pass over the rows, not a 64-value pass and a second one whose
    /// single accumulator waits on each FMA) while every key's row is added with one broadcast and FMAs.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn pv(acc: &mut [f32], w: &[f32], v: &[f32], stride: usize) {
        let hd = acc.len();
        if w.is_empty() {
            return;
        }
        assert!(
            v.len() >= (w.len() - 1) * stride + hd,
            "values shorter than the weights need"
        );
        let (pa, pv) = (acc.as_mut_ptr(), v.as_ptr());
        let mut d0 = 0;
        while hd - d0 >= 8 {
            let left = (hd - d0) / 8;
            // Whole passes of 8 registers while more than 12 are left, then the rest in one pass.
            // SAFETY: each pass reads and writes d0 .. d0 + 8 N <= hd values of acc and of each row p at
            // p * stride + d0 <= v.len() - hd + d0 (asserted); AVX2 and FMA are this function's target features.
            let n = unsafe {
                match left {
                    13.. => pv_pass::<8>(pa, pv, w, stride, d0),
                    12 => pv_pass::<12>(pa, pv, w, stride, d0),
                    11 => pv_pass::<11>(pa, pv, w, stride, d0),
                    10 => pv_pass::<10>(pa, pv, w, stride, d0),
                    9 => pv_pass::<9>(pa, pv, w, stride, d0),
                    8 => pv_pass::<8>(pa, pv, w, stride, d0),
                    7 => pv_pass::<7>(pa, pv, w, stride, d0),
                    6 => pv_pass::<6>(pa, pv, w, stride, d0),
                    5 => pv_pass::<5>(pa, pv, w, stride, d0),
                    4 => pv_pass::<4>(pa, pv, w, stride, d0),
                    3 => pv_pass::<3>(pa, pv, w, stride, d0),
                    2 => pv_pass::<2>(pa, pv, w, stride, d0),
                    _ => pv_pass::<1>(pa, pv, w, stride, d0),
                }
            };
            d0 += n;
        }
        for d in d0..hd {
            acc[d] += w
                .iter()
                .enumerate()
                .map(|(p, &wp)| wp * v[p * stride + d])
                .sum::<f32>();
        }
    }

    /// One pass of [`pv`] over `8 N` values from `d0`, the accumulators in `N` registers; returns `8 N`.
    ///
    /// # Safety
    /// AVX2 and FMA; `acc[d0 .. d0 + 8 N]` and every `v[p * stride + d0 ..][..8 N]` for `p < w.len()` in bounds.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pv_pass<const N: usize>(
        pa: *mut f32,
        pv: *const f32,
        w: &[f32],
        stride: usize,
        d0: usize,
    ) -> usize {
        // SAFETY: the bounds are the caller's.
        unsafe {
            let mut r = [_mm256_setzero_ps(); N];
            for (i, r) in r.iter_mut().enumerate() {
                *r = _mm256_loadu_ps(pa.add(d0 + 8 * i));
            }
            for (p, &wp) in w.iter().enumerate() {
                let b = _mm256_set1_ps(wp);
                let row = pv.add(p * stride + d0);
                for (i, r) in r.iter_mut().enumerate() {
                    *r = _mm256_fmadd_ps(b, _mm256_loadu_ps(row.add(8 * i)), *r);
                }
            }
            for (i, r) in r.iter().enumerate() {
                _mm256_storeu_ps(pa.add(d0 + 8 * i), *r);
            }
        }
        8 * N
    }

    /// f16 to f32, 8 at a time with `vcvtph2ps`, inline (no per-call feature check).
    ///
    /// # Safety
    /// The CPU has F16C; `h.len() == f.len()`.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn f16_to_f32(h: &[half::f16], f: &mut [f32]) {
        let n = h.len().min(f.len());
        let n8 = n / 8 * 8;
        let mut i = 0;
        while i < n8 {
            // SAFETY: i + 8 <= n, within both slices; unaligned loads and stores.
            unsafe {
                let v = _mm_loadu_si128(h.as_ptr().add(i).cast());
                _mm256_storeu_ps(f.as_mut_ptr().add(i), _mm256_cvtph_ps(v));
            }
            i += 8;
        }
        for j in n8..n {
            f[j] = h[j].to_f32();
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use core::arch::aarch64::*;

    /// Explicit NEON: the portable 8-lane loop compiles to 2-wide pieces here.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let n8 = n / 8 * 8;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // SAFETY: NEON is baseline on aarch64; every load reads i..i + 8 <= n of both slices.
        unsafe {
            let (mut s0, mut s1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
            let mut i = 0;
            while i < n8 {
                s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                s1 = vfmaq_f32(s1, vld1q_f32(pa.add(i + 4)), vld1q_f32(pb.add(i + 4)));
                i += 8;
            }
            let tail: f32 = (n8..n).map(|i| a[i] * b[i]).sum();
            vaddvq_f32(vaddq_f32(s0, s1)) + tail
        }
    }
}

/// `out[i] = scale · q · k[i · stride ..][..q.len()]`, four keys at a time through `dot4` (which reduces four
/// dot products together), the rest through `dot`.
#[inline(always)]
fn scores(
    q: &[f32],
    k: &[f32],
    stride: usize,
    scale: f32,
    out: &mut [f32],
    dot: &impl Fn(&[f32], &[f32]) -> f32,
    dot4: &impl Fn(&[f32], [&[f32]; 4]) -> [f32; 4],
) {
    let hd = q.len();
    let mut c4 = out.chunks_exact_mut(4);
    let mut o = 0;
    for c in &mut c4 {
        let r = dot4(
            q,
            [
                &k[o..o + hd],
                &k[o + stride..o + stride + hd],
                &k[o + 2 * stride..o + 2 * stride + hd],
                &k[o + 3 * stride..o + 3 * stride + hd],
            ],
        );
        for (v, r) in c.iter_mut().zip(r) {
            *v = r * scale;
        }
        o += 4 * stride;
    }
    for v in c4.into_remainder() {
        *v = dot(q, &k[o..o + hd]) * scale;
        o += stride;
    }
}

/// Four dot products, one at a time (the paths without a combined reduction).
#[inline(always)]
fn dot4_each(dot: impl Fn(&[f32], &[f32]) -> f32) -> impl Fn(&[f32], [&[f32]; 4]) -> [f32; 4] {
    move |q, k| [dot(q, k[0]), dot(q, k[1]), dot(q, k[2]), dot(q, k[3])]
}

/// `x[i] = exp(x[i] - m)` for every `i`, returning their sum. A polynomial exp (Cephes' `expf`: range reduction
/// by ln 2 in two parts, a degree-5 polynomial, the exponent put in by bit shifts; within 2 ulp on the range that
/// matters) written so the compiler vectorizes it (no branch); arguments are clamped at -87, so a weight smaller than
/// 2e-38 comes out as 2e-38, which rounds away against the sum of at least 1.
#[inline(always)]
fn exp_sub_sum(x: &mut [f32], m: f32) -> f32 {
    let mut sum = [0f32; 8];
    let mut c8 = x.chunks_exact_mut(8);
    for c in &mut c8 {
        let mut v = [0f32; 8];
        v.copy_from_slice(c);
        for k in 0..8 {
            v[k] = exp_poly(v[k] - m);
            sum[k] += v[k];
        }
        c.copy_from_slice(&v);
    }
    let mut tail = 0f32;
    for v in c8.into_remainder() {
        *v = exp_poly(*v - m);
        tail += *v;
    }
    sum.iter().sum::<f32>() + tail
}

/// `exp(x)` for `x <= 0` (see [`exp_sub_sum`]).
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let x = x.max(-87.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * C1 - n * C2;
    let r2 = r * r;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r2 + r + 1.0;
    // 2^n through the bits: adding 1.5 * 2^23 leaves n in the low mantissa bits (|n| < 2^22), with no
    // float-to-int conversion to keep the loop from vectorizing.
    let bits = (n + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000);
    y * f32::from_bits(bits.wrapping_add(127) << 23)
}

/// `acc[d] += Σ_p w[p] · v[p · stride + d]`, four keys at a time so the accumulator is loaded and stored once per
/// four keys (plain Rust the compiler vectorizes: NEON, and x86_64 without AVX2).
fn pv_portable(acc: &mut [f32], w: &[f32], v: &[f32], stride: usize) {
    let hd = acc.len();
    let mut w4 = w.chunks_exact(4);
    let mut o = 0;
    for w in &mut w4 {
        let (v0, v1, v2, v3) = (
            &v[o..o + hd],
            &v[o + stride..o + stride + hd],
            &v[o + 2 * stride..o + 2 * stride + hd],
            &v[o + 3 * stride..o + 3 * stride + hd],
        );
        for d in 0..hd {
            acc[d] += w[0] * v0[d] + w[1] * v1[d] + w[2] * v2[d] + w[3] * v3[d];
        }
        o += 4 * stride;
    }
    for &w in w4.remainder() {
        axpy(acc, w, &v[o..o + hd]);
        o += stride;
    }
}

/// The largest of `x` (at least -inf), in 8 lanes so it vectorizes.
#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; 8];
    let mut c = x.chunks_exact(8);
    for b in &mut c {
        for i in 0..8 {
            m[i] = if b[i] > m[i] { b[i] } else { m[i] };
        }
    }
    c.remainder()
        .iter()
        .chain(&m)
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a })
}

/// `y += a * x`.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}
