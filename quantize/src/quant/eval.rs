//! Measures a quantized model against its float original on calibration tokens.
//!
//! Both models run the same tokens in chunks of `ctx`, each chunk from an empty KV cache. At every position of every
//! chunk the two next-token distributions are compared: `KL(P_ref || P_quant)` in nats (f64 log-softmax of each
//! model's logits) and whether their argmax agrees. Each layer's hidden state (the embeddings, each block's output,
//! the final-normed output) is compared as `||h_quant - h_ref|| / ||h_ref||` over all tokens.
//!
//! llama.cpp's `llama-perplexity --kl-divergence` scores only the second half of each full chunk (positions
//! `ctx/2..ctx`, so each scored token has at least `ctx/2` tokens of context) and drops a short last chunk; the
//! `late` figures follow that protocol so the two tools can be compared.

use super::calib::{CalibSet, Modality};
use super::routing::{Routing, RoutingAcc};
use super::QuantError;
use flint_model::multimodal::{Media, MediaPrompt, Towers};
use flint_model::{Batch, KvDtype, KvOptions, Logits, Model, Text, Trace};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the calibration token ids came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The model's own tokenizer (`tokenizer.json` metadata).
    Tokenizer,
    /// The file has no tokenizer: each UTF-8 byte of the text, modulo the vocabulary size. Deterministic and
    /// text-shaped, but not what the model was trained on, so the figures are only comparable between quantizations
    /// of the same file.
    BytesModVocab,
}

/// The calibration ids of `text` for `model`, and where they came from.
pub fn calibration_tokens(
    model: &Model,
    text: &str,
) -> Result<(Vec<u32>, TokenSource), QuantError> {
    match Text::from_file(model.file())? {
        Some(t) => Ok((t.encode(text, true)?, TokenSource::Tokenizer)),
        None => {
            let v = model.config.vocab_size as u32;
            Ok((
                text.bytes().map(|b| b as u32 % v).collect(),
                TokenSource::BytesModVocab,
            ))
        }
    }
}

/// Agreement figures over a set of positions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Agreement {
    /// Positions scored.
    pub positions: usize,
    /// Mean KL(P_ref || P_quant), nats.
    pub kl_mean: f64,
    /// Largest KL at any one position, nats.
    pub kl_max: f64,
    /// Fraction of positions where both models' most likely next token is the same.
    pub top1_agreement: f64,
}

#[derive(Default)]
struct Acc {
    n: usize,
    kl: f64,
    kl_max: f64,
    same: usize,
}

impl Acc {
    fn add(&mut self, kl: f64, same: bool) {
        self.n += 1;
        self.kl += kl;
        self.kl_max = self.kl_max.max(kl);
        self.same += same as usize;
    }
    fn finish(&self) -> Agreement {
        let n = self.n.max(1) as f64;
        Agreement {
            positions: self.n,
            kl_mean: self.kl / n,
            kl_max: self.kl_max,
            top1_agreement: self.same as f64 / n,
        }
    }
}

/// One hidden state's relative RMS difference.
#[derive(Clone, Debug, Serialize)]
pub struct LayerError {
    /// `embd`, `blk.{l}` (a block's output) or `output_norm` (the last block's output after the final norm).
    pub name: String,
    pub rel_rms: f64,
}

/// The measured loss of a quantized model.
#[derive(Clone, Debug, Serialize)]
pub struct Eval {
    pub token_source: TokenSource,
    /// Calibration tokens run through both models.
    pub tokens: usize,
    /// Chunk length used (`--ctx`, capped by the model's context).
    pub ctx: usize,
    pub chunks: usize,
    /// Every position of every chunk.
    #[serde(flatten)]
    pub all: Agreement,
    /// Positions `ctx/2..ctx` of full chunks only (llama-perplexity's protocol); absent if no chunk is full.
    pub late: Option<Agreement>,
    /// Perplexity of each model on the calibration tokens (next-token targets within each chunk).
    pub ppl_ref: f64,
    pub ppl_quant: f64,
    pub layers: Vec<LayerError>,
    /// Every position of the media prompts, per modality (`image`, `audio`); empty without media.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modalities: BTreeMap<String, Agreement>,
    /// Each media prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaEval>,
    /// Media of the calibration set this model cannot take, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_skipped: Vec<Skipped>,
    /// How the reference routed the calibration rows (MoE models; absent for dense ones), per modality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
    /// The sums behind `routing`, so the media prompts add to the text's.
    #[serde(skip)]
    pub routing_acc: RoutingAcc,
}

/// One media prompt's figures.
#[derive(Clone, Debug, Serialize)]
pub struct MediaEval {
    pub file: String,
    pub modality: Modality,
    /// Prompt rows (text tokens and tower rows).
    pub tokens: usize,
    #[serde(flatten)]
    pub agreement: Agreement,
}

/// A medium left out of the measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// One medium's prompt, ready for either model: its token ids and the towers' inputs.
#[derive(Debug)]
pub struct MediaCase {
    pub path: PathBuf,
    pub modality: Modality,
    ids: Vec<u32>,
    media: Media,
}

/// The prompts of `set`'s media for `model` (the question in one user turn of its chat template where it has one),
/// and the media it cannot take.
pub fn media_cases(
    model: &Model,
    set: &CalibSet,
) -> Result<(Vec<MediaCase>, Vec<Skipped>), QuantError> {
    let (mut cases, mut skipped) = (Vec::new(), Vec::new());
    if set.media.is_empty() {
        return Ok((cases, skipped));
    }
    let text = Text::from_file(model.file())?;
    for m in &set.media {
        let file = m.path.display().to_string();
        let tower = match m.modality {
            Modality::Image => model.config.vision.is_some(),
            Modality::Audio => model.config.audio.is_some(),
        };
        let Some(text) = text.as_ref().filter(|_| tower) else {
            let reason = if tower {
                "the model has no tokenizer to build the prompt with".to_string()
            } else {
                format!("the model has no {} tower", m.modality.name())
            };
            skipped.push(Skipped { file, reason });
            continue;
        };
        let files = flint_prompt::MediaFiles {
            images: match m.modality {
                Modality::Image => vec![m.path.clone()],
                Modality::Audio => Vec::new(),
            },
            audio: match m.modality {
                Modality::Audio => vec![m.path.clone()],
                Modality::Image => Vec::new(),
            },
            ..Default::default()
        };
        let err = |e: anyhow::Error| QuantError::Calibration {
            path: m.path.clone(),
            msg: format!("{e:#}"),
        };
        let p = flint_prompt::prepare(model, &files).map_err(err)?;
        let ids =
            flint_prompt::prompt_ids(text, text.has_template(), &p, &m.prompt).map_err(err)?;
        let limit = model.config.max_position_embeddings;
        if ids.len() > limit {
            return Err(QuantError::Calibration {
                path: m.path.clone(),
                msg: format!(
                    "its prompt is {} tokens, more than the model's {limit} positions",
                    ids.len()
                ),
            });
        }
        cases.push(MediaCase {
            path: m.path.clone(),
            modality: m.modality,
            ids,
            media: p.media,
        });
    }
    Ok((cases, skipped))
}

/// Every position's logits of a media prompt, from a fresh f32 KV cache, the towers of `m` encoding its media (and
/// the decoder's trace into `trace`).
pub fn media_logits(
    m: &Model,
    case: &MediaCase,
    trace: Option<&mut Trace>,
) -> Result<Vec<f32>, QuantError> {
    let towers = Towers::load(m)?;
    let (prompt, _) = MediaPrompt::encode(m, &towers, m.exec(), case.ids.clone(), &case.media)
        .map_err(|e| QuantError::Calibration {
            path: case.path.clone(),
            msg: e.to_string(),
        })?;
    let mut kv = m.new_kv(KvOptions::with_dtype(KvDtype::F32));
    let seq = kv.new_seq();
    let mut b = Batch::new();
    prompt.push(&mut b, seq, 0, Logits::All);
    Ok(m.forward_batch(&b, &mut kv, None, trace)?)
}

impl MediaCase {
    /// The modality of prompt row `i`: the medium's for its placeholder rows, text otherwise.
    fn row_modality(&self, model: &Model, i: usize) -> &'static str {
        let placeholder = match self.modality {
            Modality::Image => model.config.vision.as_ref().map(|v| v.image_token_id),
            Modality::Audio => model.config.audio.as_ref().map(|a| a.token_id),
        };
        if placeholder.is_some() && self.ids.get(i).copied() == placeholder {
            self.modality.name()
        } else {
            "text"
        }
    }
}

/// Runs each media prompt through both models and compares every position, as [`evaluate`] does for text.
pub fn evaluate_media(
    reference: &Model,
    quant: &Model,
    cases: &[MediaCase],
    eval: &mut Eval,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), QuantError> {
    let vocab = reference.config.vocab_size;
    let (mut lp, mut lq) = (vec![0f64; vocab], vec![0f64; vocab]);
    let mut per: BTreeMap<Modality, Acc> = BTreeMap::new();
    let mut routing = RoutingAcc::default();
    for (i, case) in cases.iter().enumerate() {
        let mut tr = Trace::default();
        let zr = media_logits(reference, case, Some(&mut tr))?;
        routing.add(&tr, |r| case.row_modality(reference, r));
        drop(tr);
        let zq = media_logits(quant, case, None)?;
        let mut acc = Acc::default();
        for (r, q) in zr.chunks_exact(vocab).zip(zq.chunks_exact(vocab)) {
            let (kl, same) = compare(r, q, &mut lp, &mut lq);
            acc.add(kl, same);
            per.entry(case.modality).or_default().add(kl, same);
        }
        eval.media.push(MediaEval {
            file: case.path.display().to_string(),
            modality: case.modality,
            tokens: case.ids.len(),
            agreement: acc.finish(),
        });
        progress(i + 1, cases.len());
    }
    eval.modalities = per
        .into_iter()
        .map(|(m, a)| (m.name().to_string(), a.finish()))
        .collect();
    eval.routing_acc.merge(routing);
    eval.routing = eval.routing_acc.finish(&reference.moe_layers());
    Ok(())
}

/// KL(P_r || P_q) of one position's logits and whether their argmax agrees (`lp`, `lq`: scratch of the vocabulary's
/// size).
fn compare(r: &[f32], q: &[f32], lp: &mut [f64], lq: &mut [f64]) -> (f64, bool) {
    log_softmax(r, lp);
    log_softmax(q, lq);
    let kl: f64 = lp
        .iter()
        .zip(lq.iter())
        .map(|(a, b)| a.exp() * (a - b))
        .sum();
    (kl, argmax(r) == argmax(q))
}

/// `log_softmax` in f64.
fn log_softmax(x: &[f32], out: &mut [f64]) {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let s: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
    let ls = s.ln();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v as f64 - m - ls;
    }
}

fn argmax(x: &[f32]) -> usize {
    x.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// The chunk length actually used for `--ctx ctx` on `model`.
fn chunk_len(model: &Model, ctx: usize) -> usize {
    ctx.min(model.config.max_position_embeddings).max(1)
}

/// The reference model's output on one chunk: all positions' logits and its hidden states.
#[derive(Debug)]
pub struct RefChunk {
    logits: Vec<f32>,
    trace: Trace,
}

/// Bytes of reference outputs [`reference_pass`] keeps for [`evaluate`]; chunks past it are run again there.
pub const KEEP_REFERENCE_BYTES: usize = 768 << 20;

/// Runs the reference over `tokens` in the chunks [`evaluate`] uses (e.g. with the calibration tap on) and keeps each
/// chunk's outputs while they total at most `keep_bytes`, so [`evaluate`] need not run the reference again.
/// `routing`, if given, gets each chunk's routing. `progress(done, total)` counts chunks.
pub fn reference_pass(
    reference: &Model,
    tokens: &[u32],
    ctx: usize,
    keep_bytes: usize,
    mut routing: Option<&mut RoutingAcc>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Option<RefChunk>>, QuantError> {
    let ctx = chunk_len(reference, ctx);
    let total = tokens.len().div_ceil(ctx);
    let mut kept = 0usize;
    let mut out = Vec::with_capacity(total);
    for (ci, chunk) in tokens.chunks(ctx).enumerate() {
        let (logits, trace) = traced(reference, chunk)?;
        if let Some(r) = routing.as_deref_mut() {
            r.add(&trace, |_| "text");
        }
        let bytes = 4 * (logits.len() + trace.hidden_states.iter().map(Vec::len).sum::<usize>());
        if kept + bytes <= keep_bytes {
            kept += bytes;
            out.push(Some(RefChunk { logits, trace }));
        } else {
            out.push(None);
        }
        progress(ci + 1, total);
    }
    Ok(out)
}

/// Runs `tokens` (from `token_source`) through both models in chunks of `ctx` and compares them. `cached` holds
/// reference outputs from [`reference_pass`] with the same tokens and `ctx` (chunks it lacks are run here; empty
/// runs them all). `progress(done, total)` counts chunks.
pub fn evaluate(
    reference: &Model,
    mut cached: Vec<Option<RefChunk>>,
    quant: &Model,
    tokens: &[u32],
    token_source: TokenSource,
    ctx: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Eval, QuantError> {
    let c = &reference.config;
    let ctx = chunk_len(reference, ctx);
    if tokens.is_empty() {
        return Err(QuantError::Options(
            "no calibration tokens to measure with".into(),
        ));
    }
    let vocab = c.vocab_size;
    let chunks: Vec<&[u32]> = tokens.chunks(ctx).collect();
    cached.resize_with(chunks.len(), || None);
    let (mut all, mut late) = (Acc::default(), Acc::default());
    let (mut nll_ref, mut nll_q, mut targets) = (0f64, 0f64, 0usize);
    let mut sq = vec![(0f64, 0f64); c.num_layers + 1];
    let (mut lp, mut lq) = (vec![0f64; vocab], vec![0f64; vocab]);
    let mut routing = RoutingAcc::default();
    for (ci, chunk) in chunks.iter().enumerate() {
        let (zr, tr) = match cached[ci].take() {
            Some(r) => (r.logits, r.trace),
            None => traced(reference, chunk)?,
        };
        let (zq, tq) = traced(quant, chunk)?;
        routing.add(&tr, |_| "text");
        for (t, (r, q)) in zr
            .chunks_exact(vocab)
            .zip(zq.chunks_exact(vocab))
            .enumerate()
        {
            let (kl, same) = compare(r, q, &mut lp, &mut lq);
            all.add(kl, same);
            if chunk.len() == ctx && t >= ctx / 2 {
                late.add(kl, same);
            }
            if let Some(&next) = chunk.get(t + 1) {
                nll_ref -= lp[next as usize];
                nll_q -= lq[next as usize];
                targets += 1;
            }
        }
        for (acc, (hr, hq)) in sq
            .iter_mut()
            .zip(tr.hidden_states.iter().zip(&tq.hidden_states))
        {
            for (a, b) in hr.iter().zip(hq) {
                acc.0 += ((b - a) as f64).powi(2);
                acc.1 += (*a as f64).powi(2);
            }
        }
        progress(ci + 1, chunks.len());
    }
    let layers = sq
        .iter()
        .enumerate()
        .map(|(i, (d, r))| LayerError {
            name: match i {
                0 => "embd".to_string(),
                i if i == c.num_layers => "output_norm".to_string(),
                i => format!("blk.{}", i - 1),
            },
            rel_rms: if *r > 0.0 { (d / r).sqrt() } else { 0.0 },
        })
        .collect();
    let ppl = |nll: f64| {
        if targets > 0 {
            (nll / targets as f64).exp()
        } else {
            f64::NAN
        }
    };
    Ok(Eval {
        token_source,
        tokens: tokens.len(),
        ctx,
        chunks: chunks.len(),
        all: all.finish(),
        late: (late.n > 0).then(|| late.finish()),
        ppl_ref: ppl(nll_ref),
        ppl_quant: ppl(nll_q),
        layers,
        modalities: BTreeMap::new(),
        media: Vec::new(),
        media_skipped: Vec::new(),
        routing: routing.finish(&reference.moe_layers()),
        routing_acc: routing,
    })
}

/// The reference's logits on `tokens`, chunk by chunk as [`mean_kl`] reads them.
pub fn reference_logits(
    reference: &Model,
    tokens: &[u32],
    ctx: usize,
) -> Result<Vec<Vec<f32>>, QuantError> {
    let ctx = chunk_len(reference, ctx);
    tokens
        .chunks(ctx)
        .map(|c| Ok(logits(reference, c)?))
        .collect()
}

/// The mean KL (nats per position) of `quant` against the reference logits `want` ([`reference_logits`] of the
/// same `tokens` and `ctx`).
pub fn mean_kl(
    want: &[Vec<f32>],
    quant: &Model,
    tokens: &[u32],
    ctx: usize,
) -> Result<f64, QuantError> {
    let ctx = chunk_len(quant, ctx);
    let vocab = quant.config.vocab_size;
    let (mut lp, mut lq) = (vec![0f64; vocab], vec![0f64; vocab]);
    let (mut sum, mut n) = (0f64, 0usize);
    for (chunk, zr) in tokens.chunks(ctx).zip(want) {
        let zq = logits(quant, chunk)?;
        for (r, q) in zr.chunks_exact(vocab).zip(zq.chunks_exact(vocab)) {
            sum += compare(r, q, &mut lp, &mut lq).0;
            n += 1;
        }
    }
    Ok(sum / n.max(1) as f64)
}

/// Every position's logits of one chunk, from a fresh f32 KV cache.
fn logits(m: &Model, chunk: &[u32]) -> Result<Vec<f32>, flint_model::ModelError> {
    let opts = flint_model::KvOptions::with_dtype(flint_model::KvDtype::F32);
    m.forward(chunk, &mut m.new_cache_with(opts), true, None)
}

/// Every position's logits and the hidden-state trace of one chunk, from a fresh f32 KV cache (the measurement
/// compares weights, so the cache is exact).
fn traced(m: &Model, chunk: &[u32]) -> Result<(Vec<f32>, Trace), flint_model::ModelError> {
    let mut tr = Trace::default();
    let opts = flint_model::KvOptions::with_dtype(flint_model::KvDtype::F32);
    let z = m.forward(chunk, &mut m.new_cache_with(opts), true, Some(&mut tr))?;
    Ok((z, tr))
}
