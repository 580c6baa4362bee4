//! The decoder and greedy search.
//!
//! Decoder (transformers' `WhisperDecoder`): token embedding + learned position embedding, then pre-LN layers of
//! masked self-attention (over a KV cache), cross-attention over the encoder output and the feed-forward block, a
//! final layer norm, and logits by the tied token embedding.
//!
//! The cross-attention runs on the encoder output itself, its keys and values folded into the query and output
//! projections (see [`Cross`]); each step costs a few matvecs per layer plus the logits. The self-attention cache
//! holds `max_pos` rows per layer, filled as tokens are fed.
//!
//! Greedy search follows CTranslate2's `WhisperModel.generate` (and transformers' `generate` for this model):
//! the prompt (`<|startoftranscript|><|notimestamps|>` for an English-only model) is fed at once; at each step the
//! config's `suppress_ids` get `-inf`, and on the first step `suppress_ids_begin` too (blank and
//! `<|endoftext|>`); the arg-max (first on ties) is taken until `<|endoftext|>` or the length limit.
//!
//! The suppression is CTranslate2's default (`suppress_blank=True`, `suppress_tokens=[-1]`). The fixture's
//! reference ran without it (raw arg-max); on its clip no suppressed token ever wins, so the ids are the same, and
//! `Whisper::logits` gives the raw logits for a check without search settings.

use crate::model::{split3, Weights};
use flint_kernels::{ops, AttnShape, Exec, KvChunk, KvRows, Mask, WeightRef};

/// The encoder output `[ctx, d]` and its transpose `[d, ctx]`, shared by every decoder layer's cross-attention.
///
/// The keys and values are never formed. With `K = E Wk^T + bk` and `V = E Wv^T + bv` per head `h` (`E` the encoder
/// output, `Wk_h`, `Wv_h` the head's `[hd, d]` rows):
/// - scores `q_h · K_h[p] = (Wk_h^T q_h) · E[p] + q_h · bk_h`, and the last term is the same for every `p`, so it
///   cancels in the softmax;
/// - the output `Σ_p P[p] V_h[p] = Wv_h (Σ_p P[p] E[p]) + bv_h`, as the weights `P` sum to 1.
///
/// So a step projects the query into encoder space (`u = Wk_h^T q_h`, `d` values per head), scores and mixes the
/// rows of `E` directly, and projects the mixed row back by `Wv_h`. That reads `E` and `E^T` (2 x 2.3 MB for
/// tiny.en, one pair for all layers) instead of every layer's keys and values (4 x 4.6 MB), and removes the
/// once-per-clip projection of the 1500 frames (4 x 0.9 GFLOP) from the time to the first token.
#[derive(Debug)]
pub(crate) struct Cross {
    enc: Vec<f32>,
    enc_t: Vec<f32>,
}

impl Cross {
    /// Keeps the encoder output `[ctx, d]` (length checked by the caller) and its transpose.
    pub fn new(w: &Weights, _exec: &Exec, enc: &[f32]) -> Cross {
        let (ctx, d) = (w.dims.ctx, w.dims.d);
        let mut enc_t = vec![0f32; d * ctx];
        // Blocked transpose (cache-friendly on both sides).
        const B: usize = 32;
        for p0 in (0..ctx).step_by(B) {
            for c0 in (0..d).step_by(B) {
                for p in p0..(p0 + B).min(ctx) {
                    for c in c0..(c0 + B).min(d) {
                        enc_t[c * ctx + p] = enc[p * d + c];
                    }
                }
            }
        }
        Cross {
            enc: enc[..ctx * d].to_vec(),
            enc_t,
        }
    }
}

/// Cross-attention of queries `q` `[n, d]` over the encoder output (see [`Cross`]) into `out` `[n, d]`, before
/// the output projection. `wkv` is the layer's fused `[2d, d]` key|value weight, `bv` the value bias.
#[allow(clippy::too_many_arguments)]
fn cross_attention(
    exec: &Exec,
    cross: &Cross,
    wkv: &[f32],
    bv: Option<&[f32]>,
    heads: usize,
    scale: f32,
    q: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let d = q.len() / n;
    let ctx = cross.enc.len() / d;
    let hd = d / heads;
    let (wk, wv) = wkv.split_at(d * d);
    // u[t, h] = scale * Wk_h^T q[t, h]: rows (t, h) of [n * heads, d].
    let mut u = vec![0f32; n * heads * d];
    for (t, qt) in q.chunks_exact(d).enumerate() {
        for h in 0..heads {
            let ur = &mut u[(t * heads + h) * d..(t * heads + h + 1) * d];
            for c in h * hd..(h + 1) * hd {
                let a = scale * qt[c];
                ur.iter_mut()
                    .zip(&wk[c * d..(c + 1) * d])
                    .for_each(|(u, w)| *u += a * w);
            }
        }
    }
    let mut s = vec![0f32; n * heads * ctx];
    exec.matmul(WeightRef::F32(&cross.enc), &u, n * heads, &mut s);
    ops::softmax(&mut s, ctx);
    // m[t, h] = Σ_p P[t, h, p] E[p], then out[t, h] = Wv_h m[t, h] + bv_h.
    let mut m = u;
    exec.matmul(WeightRef::F32(&cross.enc_t), &s, n * heads, &mut m);
    for (t, ot) in out.chunks_exact_mut(d).enumerate() {
        for h in 0..heads {
            let mr = &m[(t * heads + h) * d..(t * heads + h + 1) * d];
            for j in h * hd..(h + 1) * hd {
                let dot: f32 = wv[j * d..(j + 1) * d]
                    .iter()
                    .zip(mr)
                    .map(|(w, x)| w * x)
                    .sum();
                ot[j] = dot + bv.map_or(0.0, |b| b[j]);
            }
        }
    }
}

/// The self-attention cache of one sequence.
#[derive(Debug)]
pub(crate) struct Cache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Positions filled.
    pub len: usize,
}

impl Cache {
    pub fn new(w: &Weights) -> Cache {
        let n = w.dims.max_pos * w.dims.d;
        let layers = w.dec.len();
        Cache {
            k: vec![vec![0f32; n]; layers],
            v: vec![vec![0f32; n]; layers],
            len: 0,
        }
    }
}

/// Feeds `tokens` at positions `cache.len ..`, returning the final-normed hidden states `[tokens.len(), d]`.
/// The caller keeps `cache.len + tokens.len() <= max_pos` and every token below `vocab`.
pub(crate) fn forward(
    w: &Weights,
    exec: &Exec,
    cross: &Cross,
    cache: &mut Cache,
    tokens: &[u32],
) -> Vec<f32> {
    let dm = w.dims;
    let (d, n, p0) = (dm.d, tokens.len(), cache.len);
    let mut x = vec![0f32; n * d];
    let embed = w.embed.view();
    for (i, &t) in tokens.iter().enumerate() {
        let row = &mut x[i * d..(i + 1) * d];
        embed.row_to_f32(d, t as usize, row);
        let pos = &w.dec_pos[(p0 + i) * d..(p0 + i + 1) * d];
        row.iter_mut().zip(pos).for_each(|(a, b)| *a += b);
    }
    let shape = AttnShape {
        heads: dm.dec_heads,
        kv_heads: dm.dec_heads,
        head_dim: d / dm.dec_heads,
    };
    let scale = 1.0 / ((d / dm.dec_heads) as f32).sqrt();
    let keys = p0 + n;
    for (li, l) in w.dec.iter().enumerate() {
        // Masked self-attention over the cache.
        let h = l.self_ln.apply(&x);
        let qkv = l.self_qkv.forward(exec, &h, n);
        let [q, k, v] = split3(&qkv, n, d);
        cache.k[li][p0 * d..keys * d].copy_from_slice(&k);
        cache.v[li][p0 * d..keys * d].copy_from_slice(&v);
        let chunk = KvChunk {
            start: 0,
            k: KvRows::F32(&cache.k[li][..keys * d]),
            v: KvRows::F32(&cache.v[li][..keys * d]),
        };
        let mut a = vec![0f32; n * d];
        flint_kernels::attention(
            exec,
            shape,
            &q,
            p0,
            keys,
            &[chunk],
            Mask::Causal,
            scale,
            &mut a,
        );
        let y = l.self_out.forward(exec, &a, n);
        x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
        // Cross-attention over the encoder output.
        let h = l.cross_ln.apply(&x);
        let q = l.cross_q.forward(exec, &h, n);
        let mut a = vec![0f32; n * d];
        let (wkv, bkv) = (l.cross_kv.f32s(), l.cross_kv.b.as_deref());
        let bv = bkv.map(|b| &b[d..]);
        cross_attention(exec, cross, wkv, bv, dm.dec_heads, scale, &q, n, &mut a);
        let y = l.cross_out.forward(exec, &a, n);
        x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
        l.ffn.residual(exec, &mut x, n);
    }
    cache.len = keys;
    w.dec_ln.apply(&x)
}

/// Logits `[n, vocab]` of hidden states `[n, d]` by the tied embedding.
pub(crate) fn logits(w: &Weights, exec: &Exec, hidden: &[f32]) -> Vec<f32> {
    let n = hidden.len() / w.dims.d;
    let mut out = vec![0f32; n * w.dims.vocab];
    exec.matmul(w.embed.view(), hidden, n, &mut out);
    out
}

/// What greedy search needs besides the weights.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    pub prompt: Vec<u32>,
    pub eot: u32,
    pub suppress: Vec<u32>,
    pub suppress_begin: Vec<u32>,
}

/// Greedy decoding: the generated ids (neither the prompt nor `<|endoftext|>`), at most `max_tokens`.
/// `max_tokens` is clamped so that prompt + output fit the decoder's positions.
pub(crate) fn greedy(
    w: &Weights,
    exec: &Exec,
    s: &Search,
    enc: &[f32],
    max_tokens: usize,
) -> Vec<u32> {
    let cross = Cross::new(w, exec, enc);
    let mut cache = Cache::new(w);
    let limit = max_tokens.min(w.dims.max_pos - s.prompt.len());
    let mut out = Vec::new();
    let mut feed = s.prompt.clone();
    while out.len() < limit {
        let h = forward(w, exec, &cross, &mut cache, &feed);
        let last = &h[h.len() - w.dims.d..];
        let mut lg = logits(w, exec, last);
        for &t in &s.suppress {
            lg[t as usize] = f32::NEG_INFINITY;
        }
        if out.is_empty() {
            for &t in &s.suppress_begin {
                lg[t as usize] = f32::NEG_INFINITY;
            }
        }
        let next = argmax(&lg);
        if next == s.eot {
            break;
        }
        out.push(next);
        feed = vec![next];
    }
    out
}

/// Index of the largest value, the first on ties; NaN never wins.
fn argmax(x: &[f32]) -> u32 {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &v) in x.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0 as u32
}
