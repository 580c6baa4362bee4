//! Qwen3-Omni's audio encoder (transformers' `Qwen3OmniMoeAudioEncoder`): log-mel features in, the rows that
//! replace the audio placeholders out. The design is stated in `config/mel_audio.rs`.
//!
//! All clips of one call are cut into chunks together and every chunk is zero-padded to the longest, as
//! transformers batches them: the convolutions' edges then see the same values, so a clip encoded beside others
//! gives what transformers gives for that prompt.

use crate::config::mel_audio::{names, MelAudioConfig};
use crate::config::vision::VisionAct;
use crate::vision::layer::{Layer, Norm};
use crate::vision::Linear;
use crate::weights::Loader;
use crate::ModelError;
use flint_format::FlintFile;
use flint_kernels::ops::{conv2d, gelu_erf, Conv2d};
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

/// A loaded log-mel audio encoder.
pub struct MelAudioTower {
    pub config: MelAudioConfig,
    convs: [(Vec<f32>, Vec<f32>, Conv2d); 3],
    conv_out: Linear,
    layers: Vec<Layer>,
    ln_post: Norm,
    proj1: Linear,
    proj2: Linear,
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
        let conv = |i: usize, c_in: usize| -> Result<(Vec<f32>, Vec<f32>, Conv2d), ModelError> {
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
                Layer::load_named(
                    &ld,
                    &|what| names::blk(l, what),
                    d,
                    c.ffn_dim,
                    true,
                    VisionAct::GeluErf,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MelAudioTower {
            convs: [conv(1, 1)?, conv(2, ds)?, conv(3, ds)?],
            conv_out: Linear::load(&ld, names::CONV_OUT, d, c.conv_out_in(), false)?,
            layers,
            ln_post: Norm::load(&ld, names::LN_POST, d)?,
            proj1: Linear::load(&ld, names::PROJ1, d, d, true)?,
            proj2: Linear::load(&ld, names::PROJ2, c.output_dim, d, true)?,
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
        let steps = MelAudioConfig::after_convs(longest);
        if steps > c.max_source_positions {
            return Err(ModelError::Invalid(format!(
                "audio: {steps} steps per chunk exceed the {} positions",
                c.max_source_positions
            )));
        }
        let mut x = Vec::new();
        for &(i, s, n) in &chunks {
            // The chunk zero-padded to the longest: [1, mels, longest].
            let f = &clips[i].features;
            let mut plane = vec![0f32; mels * longest];
            for m in 0..mels {
                let src = &f[m * clips[i].frames + s..m * clips[i].frames + s + n];
                plane[m * longest..m * longest + n].copy_from_slice(src);
            }
            let (mut h, mut w) = (mels, longest);
            for (k, b, geom) in &self.convs {
                let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
                let mut out = vec![0f32; geom.c_out * oh * ow];
                conv2d(geom, &plane, h, w, k, Some(b), &mut out);
                gelu_erf(&mut out);
                (plane, h, w) = (out, oh, ow);
            }
            // [c, f, t] -> rows t of c·f values; conv_out; positions; keep the chunk's valid steps.
            let valid = MelAudioConfig::after_convs(n);
            let cf = c.downsample * h;
            let mut rows = vec![0f32; valid * cf];
            for t in 0..valid {
                for (j, v) in rows[t * cf..(t + 1) * cf].iter_mut().enumerate() {
                    *v = plane[j * w + t];
                }
            }
            let mut e = vec![0f32; valid * d];
            self.conv_out.run(exec, &rows, valid, &mut e);
            for (t, r) in e.chunks_exact_mut(d).enumerate() {
                let p = &self.positions[t * d..(t + 1) * d];
                r.iter_mut().zip(p).for_each(|(a, b)| *a += b);
            }
            x.extend_from_slice(&e);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.embedded = x.clone();
        }
        let spans = self.windows(clips, steps);
        for layer in &self.layers {
            layer.forward(exec, &mut x, c.num_heads, EPS, None, &spans);
            if let Some(t) = trace.as_deref_mut() {
                t.layers.push(x.clone());
            }
        }
        let n = x.len() / d;
        let mut h = vec![0f32; x.len()];
        self.ln_post.run(&x, EPS, &mut h);
        self.proj1.run(exec, &h, n, &mut x);
        gelu_erf(&mut x);
        let mut out = vec![0f32; n * c.output_dim];
        self.proj2.run(exec, &x, n, &mut out);
        Ok(out)
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
