//! Qwen3-Omni's audio encoder (transformers' `Qwen3OmniMoeAudioEncoder`): log-mel features in, the rows that
//! replace the audio placeholders out. The design is stated in `config/mel_audio.rs`.
//!
//! All clips of one call are cut into chunks together and every chunk is zero-padded to the longest, as
//! transformers batches them: the convolutions' edges then see the same values, so a clip encoded beside others
//! gives what transformers gives for that prompt.

use crate::config::mel_audio::{names, MelAudioConfig, MelKind};
use crate::config::vision::VisionAct;
use crate::vision::layer::{Layer, Norm, Style};
use crate::vision::Linear;
use crate::weights::Loader;
use crate::ModelError;
use flint_format::FlintFile;
use flint_kernels::ops::{conv1d, conv2d, gelu_erf, Conv1d, Conv2d};
use flint_kernels::Exec;
use std::ops::Range;

/// LayerNorm eps of the encoder's layers and `ln_post` (torch's default).
const EPS: f32 = 1e-5;

/// One log-mel clip: `[num_mel_bins, frames]` row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MelClip {
    pub features: Vec<f32>,
    pub frames: usize,
}

/// Intermediate values of [`MelAudioTower::encode_traced`].
#[derive(Clone, Debug, Default)]
pub struct MelTrace {
    /// The valid steps after the convolutions, `conv_out` and the positions: `[rows, d_model]`.
    pub embedded: Vec<f32>,
    /// Each layer's output.
    pub layers: Vec<Vec<f32>>,
}

/// A convolution's kernel, bias and geometry.
type Conv<G> = (Vec<f32>, Vec<f32>, G);

/// What turns a chunk into rows.
enum Front {
    /// Qwen3-Omni: three 2-D convolutions and `conv_out`.
    Conv2d(Box<[Conv<Conv2d>; 3]>, Linear),
    /// Qwen2.5-Omni: two 1-D convolutions.
    Conv1d([Conv<Conv1d>; 2]),
}

/// What follows `ln_post`.
enum Out {
    /// `proj2 · gelu(proj1 · x)`.
    Two(Linear, Linear),
    /// Rows averaged in pairs before `ln_post`, then `proj · x`.
    Pooled(Linear),
}

/// A loaded log-mel audio encoder.
pub struct MelAudioTower {
    pub config: MelAudioConfig,
    front: Front,
    layers: Vec<Layer>,
    ln_post: Norm,
    out: Out,
    /// `[max_source_positions, d_model]`: sin over the first half of the channels, cos over the second.
    positions: Vec<f32>,
}

impl std::fmt::Debug for MelAudioTower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelAudioTower")
            .field("layers", &self.layers.len())
            .field("d_model", &self.config.d_model)
            .finish()
    }
}

/// The sinusoidal table (transformers' `SinusoidsPositionEmbedding`, max timescale 10000), in f32 as torch
/// computes it.
fn sinusoids(length: usize, channels: usize) -> Vec<f32> {
    let half = channels / 2;
    let inc = ((10000f64).ln() / (half.saturating_sub(1).max(1)) as f64) as f32;
    let inv: Vec<f32> = (0..half).map(|i| (-inc * i as f32).exp()).collect();
    let mut t = vec![0f32; length * channels];
    for (p, row) in t.chunks_exact_mut(channels).enumerate() {
        for (i, &f) in inv.iter().enumerate() {
            let a = p as f32 * f;
            row[i] = a.sin();
            row[half + i] = a.cos();
        }
    }
    t
}

impl MelAudioTower {
    /// Binds the encoder of `file` (its `model.config.mel_audio`); the small conv kernels are copied.
    pub fn load(file: &FlintFile) -> Result<MelAudioTower, ModelError> {
        let ld = Loader::new(file);
        let config = ld.config()?;
        let c = config
            .mel_audio
            .clone()
            .ok_or_else(|| ModelError::Metadata {
                path: file.path().display().to_string(),
                key: "model.config",
                msg: "has no `mel_audio`: the model has no log-mel audio encoder".into(),
            })?;
        let (ds, d) = (c.downsample, c.d_model);
        let conv = |i: usize, c_in: usize| -> Result<Conv<Conv2d>, ModelError> {
            let n = names::conv(i);
            Ok((
                ld.f32_copy(&n, &[ds, c_in, 3, 3])?,
                ld.vector(&format!("{n}.bias"), ds)?.get().to_vec(),
                Conv2d {
                    c_in,
                    c_out: ds,
                    kernel: [3, 3],
                    stride: [2, 2],
                    padding: [1, 1],
                    dilation: [1, 1],
                    groups: 1,
                },
            ))
        };
        let layers = (0..c.num_layers)
            .map(|l| {
                let style = Style {
                    full: true,
                    act: VisionAct::GeluErf,
                    no_k_bias: c.kind == MelKind::Qwen25Omni,
                    ..Style::default()
                };
                Layer::load_named(&ld, &|what| names::blk(l, what), d, c.ffn_dim, style)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let conv1 = |i: usize, c_in: usize, stride: usize| -> Result<Conv<Conv1d>, ModelError> {
            let n = names::conv(i);
            Ok((
                ld.f32_copy(&n, &[d, c_in, 3])?,
                ld.vector(&format!("{n}.bias"), d)?.get().to_vec(),
                Conv1d {
                    c_in,
                    c_out: d,
                    kernel: 3,
                    stride,
                    pad_left: 1,
                    pad_right: 1,
                    dilation: 1,
                    groups: 1,
                },
            ))
        };
        let (front, out) = match c.kind {
            MelKind::Qwen3Omni => (
                Front::Conv2d(
                    Box::new([conv(1, 1)?, conv(2, ds)?, conv(3, ds)?]),
                    Linear::load(&ld, names::CONV_OUT, d, c.conv_out_in(), false)?,
                ),
                Out::Two(
                    Linear::load(&ld, names::PROJ1, d, d, true)?,
                    Linear::load(&ld, names::PROJ2, c.output_dim, d, true)?,
                ),
            ),
            MelKind::Qwen25Omni => (
                Front::Conv1d([conv1(1, c.num_mel_bins, 1)?, conv1(2, d, 2)?]),
                Out::Pooled(Linear::load(&ld, names::PROJ, c.output_dim, d, true)?),
            ),
        };
        Ok(MelAudioTower {
            front,
            layers,
            ln_post: Norm::load(&ld, names::LN_POST, d)?,
            out,
            positions: sinusoids(c.max_source_positions, d),
            config: c,
        })
    }

    /// Rows the clips give, in order.
    pub fn rows(&self, clips: &[MelClip]) -> Vec<usize> {
        clips.iter().map(|c| self.config.rows(c.frames)).collect()
    }

    /// Encodes `clips` (one call, as one transformers batch) into `[rows, output_dim]`, clip after clip.
    pub fn encode(&self, exec: &Exec, clips: &[MelClip]) -> Result<Vec<f32>, ModelError> {
        self.encode_traced(exec, clips, None)
    }

    /// [`MelAudioTower::encode`], recording the intermediate values into `trace` when given.
    pub fn encode_traced(
        &self,
        exec: &Exec,
        clips: &[MelClip],
        mut trace: Option<&mut MelTrace>,
    ) -> Result<Vec<f32>, ModelError> {
        let c = &self.config;
        let (mels, d, full) = (c.num_mel_bins, c.d_model, c.chunk());
        // Chunks (clip, first frame, frames) in order.
        let mut chunks = Vec::new();
        for (i, clip) in clips.iter().enumerate() {
            if clip.frames == 0 || clip.features.len() != mels * clip.frames {
                return Err(ModelError::Invalid(format!(
                    "audio clip {i}: {} values for {mels} mel bins × {} frames",
                    clip.features.len(),
                    clip.frames
                )));
            }
            if clip.frames > crate::config::limits::MAX_AUDIO_SAMPLES / 100 {
                return Err(ModelError::Invalid(format!(
                    "audio clip {i}: {} frames exceed the cap",
                    clip.frames
                )));
            }
            for s in (0..clip.frames).step_by(full) {
                chunks.push((i, s, full.min(clip.frames - s)));
            }
        }
        if chunks.is_empty() {
            return Err(ModelError::Invalid("no audio clip given".into()));
        }
        let longest = chunks.iter().map(|x| x.2).max().unwrap_or(0);
        let steps = match c.kind {
            MelKind::Qwen3Omni => MelAudioConfig::after_convs(longest),
            MelKind::Qwen25Omni => longest.div_ceil(2),
        };
        if steps > c.max_source_positions {
            return Err(ModelError::Invalid(format!(
                "audio: {steps} steps per chunk exceed the {} positions",
                c.max_source_positions
            )));
        }
        let mut x = Vec::new();
        let mut chunk_rows = Vec::new();
        for &(i, s, n) in &chunks {
            // The chunk zero-padded to the longest: [mels, longest].
            let f = &clips[i].features;
            let mut plane = vec![0f32; mels * longest];
            for m in 0..mels {
                let src = &f[m * clips[i].frames + s..m * clips[i].frames + s + n];
                plane[m * longest..m * longest + n].copy_from_slice(src);
            }
            let e = self.chunk_rows(exec, plane, longest, n);
            chunk_rows.push(e.len() / d);
            x.extend_from_slice(&e);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.embedded = x.clone();
        }
        let spans = match c.kind {
            MelKind::Qwen3Omni => self.windows(clips, steps),
            // Attention within each chunk.
            MelKind::Qwen25Omni => chunk_rows
                .iter()
                .scan(0, |at, &r| {
                    *at += r;
                    Some(*at - r..*at)
                })
                .collect(),
        };
        for layer in &self.layers {
            layer.forward(exec, &mut x, c.num_heads, EPS, None, &spans);
            if let Some(t) = trace.as_deref_mut() {
                t.layers.push(x.clone());
            }
        }
        if let Out::Pooled(_) = self.out {
            x = self.pool_pairs(clips, &x);
        }
        let n = x.len() / d;
        let mut h = vec![0f32; x.len()];
        self.ln_post.run(&x, EPS, &mut h);
        let mut out = vec![0f32; n * c.output_dim];
        match &self.out {
            Out::Two(p1, p2) => {
                p1.run(exec, &h, n, &mut x);
                gelu_erf(&mut x);
                p2.run(exec, &x, n, &mut out);
            }
            Out::Pooled(p) => p.run(exec, &h, n, &mut out),
        }
        Ok(out)
    }

    /// One chunk (`plane`: `[mels, longest]`, its first `n` frames real) through the convolutions to its valid
    /// rows `[steps, d_model]`, each plus its position in the chunk.
    fn chunk_rows(&self, exec: &Exec, mut plane: Vec<f32>, longest: usize, n: usize) -> Vec<f32> {
        let c = &self.config;
        let d = c.d_model;
        let (cols, valid, width) = match &self.front {
            Front::Conv2d(convs, conv_out) => {
                let (mut h, mut w) = (c.num_mel_bins, longest);
                for (k, b, geom) in convs.iter() {
                    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
                    let mut out = vec![0f32; geom.c_out * oh * ow];
                    conv2d(geom, &plane, h, w, k, Some(b), &mut out);
                    gelu_erf(&mut out);
                    (plane, h, w) = (out, oh, ow);
                }
                // [c, f, t] -> rows t of c·f values, then conv_out.
                let valid = MelAudioConfig::after_convs(n);
                let cf = c.downsample * h;
                let mut rows = vec![0f32; valid * cf];
                for t in 0..valid {
                    for (j, v) in rows[t * cf..(t + 1) * cf].iter_mut().enumerate() {
                        *v = plane[j * w + t];
                    }
                }
                let mut e = vec![0f32; valid * d];
                conv_out.run(exec, &rows, valid, &mut e);
                return self.add_positions(e);
            }
            Front::Conv1d([(k1, b1, g1), (k2, b2, g2)]) => {
                let mut a = vec![0f32; d * longest];
                conv1d(g1, &plane, longest, k1, Some(b1), &mut a);
                gelu_erf(&mut a);
                // The padded frames are zeroed before the second convolution.
                for row in a.chunks_exact_mut(longest) {
                    row[n..].iter_mut().for_each(|v| *v = 0.0);
                }
                let t2 = longest.div_ceil(2);
                let mut o = vec![0f32; d * t2];
                conv1d(g2, &a, longest, k2, Some(b2), &mut o);
                gelu_erf(&mut o);
                (o, n.div_ceil(2), t2)
            }
        };
        // [d, t] -> rows t.
        let mut e = vec![0f32; valid * d];
        for t in 0..valid {
            for (j, v) in e[t * d..(t + 1) * d].iter_mut().enumerate() {
                *v = cols[j * width + t];
            }
        }
        self.add_positions(e)
    }

    /// Rows `[steps, d_model]` plus the sinusoid of their step.
    fn add_positions(&self, mut e: Vec<f32>) -> Vec<f32> {
        let d = self.config.d_model;
        for (t, r) in e.chunks_exact_mut(d).enumerate() {
            let p = &self.positions[t * d..(t + 1) * d];
            r.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        e
    }

    /// Each clip's rows averaged in pairs (an odd last row dropped): transformers' `get_pool_indices`.
    fn pool_pairs(&self, clips: &[MelClip], x: &[f32]) -> Vec<f32> {
        let d = self.config.d_model;
        let mut out = Vec::new();
        let mut base = 0;
        for clip in clips {
            let rows = clip.frames.div_ceil(2);
            for p in 0..rows / 2 {
                let (a, b) = (base + 2 * p, base + 2 * p + 1);
                out.extend((0..d).map(|j| (x[a * d + j] + x[b * d + j]) / 2.0));
            }
            base += rows;
        }
        out
    }

    /// Attention spans over the rows of all clips: each clip's rows in windows of `steps · n_window_infer /
    /// (2 · n_window)` (transformers' `get_audio_cu_seqlens`, `steps` the longest chunk's).
    fn windows(&self, clips: &[MelClip], steps: usize) -> Vec<Range<usize>> {
        let c = &self.config;
        let win = (steps * (c.n_window_infer / c.chunk())).max(1);
        let mut spans = Vec::new();
        let mut base = 0;
        for clip in clips {
            let rows = c.rows(clip.frames);
            for s in (0..rows).step_by(win) {
                spans.push(base + s..base + (s + win).min(rows));
            }
            base += rows;
        }
        spans
    }
}
