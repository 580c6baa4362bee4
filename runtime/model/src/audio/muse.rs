//! Muse Spark's audio tower (transformers' `MuseSparkAudioModel`), one chunk of whole tokens at a time.
//!
//! - input: mono waveform `[samples, 1]`, a multiple of `samples_per_token` per chunk;
//! - layer `i`: patch embedding (rows of `patch_sizes[i]` consecutive steps concatenated, a linear map with bias,
//!   RMSNorm scaling by `w`), then `depths[i]` conv blocks: `x + fc2(gelu(fc1(rms_norm(dwconv(x)))))`, where
//!   `dwconv` is a depthwise causal convolution (kernel `k`, stride 1, bias) whose left context is the last
//!   `k - 1` inputs of the previous chunk (zeros at the start), as `MuseSparkAudioConv1dPaddingCache` keeps them;
//! - then RMSNorm, the projection to the decoder's width (with bias), RMSNorm: `last_hidden_state`.
//!
//! Every step is causal and patch embeddings do not overlap, so chunks give the output of the whole waveform.
//! The convolutions are `flint_kernels::ops::conv1d` over `[context + rows]` steps with no padding.

use super::AudioStage;
use crate::config::audio::names;
use crate::weights::Loader;
use crate::{AudioConfig, ModelError, Vector, Weight};
use flint_kernels::ops::{self as k, Conv1d, RmsWeight};
use flint_kernels::Exec;

/// One conv block of a layer.
#[derive(Debug)]
struct Block {
    /// The depthwise kernel `[c, k]` (PyTorch's `[c, 1, k]`), copied out of the map.
    conv: Vec<f32>,
    conv_b: Vector,
    norm: Vector,
    fc1: Weight,
    fc1_b: Vector,
    fc2: Weight,
    fc2_b: Vector,
}

/// One pyramid layer.
#[derive(Debug)]
struct Layer {
    width: usize,
    proj: Weight,
    proj_b: Vector,
    norm: Vector,
    blocks: Vec<Block>,
}

/// The audio tower's weights, bound from a `.flint` file.
#[derive(Debug)]
pub struct Tower {
    pub cfg: AudioConfig,
    layers: Vec<Layer>,
    norm: Vector,
    proj: Weight,
    proj_b: Vector,
    post_norm: Vector,
    /// eps of the decoder's embedding norm, applied to the output rows.
    embed_eps: f32,
}

/// The causal convolutions' left context, one `[k - 1, c]` buffer per conv block in layer/block order.
pub type ConvState = Vec<Vec<f32>>;

impl Tower {
    /// Binds every tower tensor of `ld`, checking its shape against `cfg` (validated by the caller); `embed_eps`
    /// is the decoder's `rms_norm_eps`.
    pub fn load(ld: &Loader<'_>, cfg: &AudioConfig, embed_eps: f32) -> Result<Tower, ModelError> {
        let mut layers = Vec::with_capacity(cfg.layers());
        for i in 0..cfg.layers() {
            let (w, m, p) = (cfg.hidden_sizes[i], cfg.mlp_sizes[i], cfg.patch_sizes[i]);
            let t = |what: &str| names::layer(i, what);
            let mut blocks = Vec::with_capacity(cfg.depths[i]);
            for b in 0..cfg.depths[i] {
                let n = |what: &str| names::block(i, b, what);
                blocks.push(Block {
                    conv: conv_kernel(ld, &n("conv"), w, cfg.conv_kernel)?,
                    conv_b: ld.vector(&n("conv.bias"), w)?,
                    norm: ld.vector(&n("norm"), w)?,
                    fc1: ld.matrix(&n("fc1"), m, w)?,
                    fc1_b: ld.vector(&n("fc1.bias"), m)?,
                    fc2: ld.matrix(&n("fc2"), w, m)?,
                    fc2_b: ld.vector(&n("fc2.bias"), w)?,
                });
            }
            layers.push(Layer {
                width: w,
                proj: ld.matrix(&t("patch"), w, cfg.input_width(i) * p)?,
                proj_b: ld.vector(&t("patch.bias"), w)?,
                norm: ld.vector(&t("patch_norm"), w)?,
                blocks,
            });
        }
        let last = cfg.hidden_sizes.last().copied().unwrap_or(0);
        Ok(Tower {
            norm: ld.vector(names::NORM, last)?,
            proj: ld.matrix(names::PROJ, cfg.out_size, last)?,
            proj_b: ld.vector(names::PROJ_BIAS, cfg.out_size)?,
            post_norm: ld.vector(names::POST_PROJ_NORM, cfg.out_size)?,
            cfg: cfg.clone(),
            layers,
            embed_eps,
        })
    }

    /// The state before any audio: zeros, as transformers pads the first chunk.
    pub fn initial_state(&self) -> ConvState {
        let ctx = self.cfg.conv_context();
        self.layers
            .iter()
            .flat_map(|l| l.blocks.iter().map(move |_| vec![0f32; ctx * l.width]))
            .collect()
    }

    /// Runs `x` (samples, a whole number of tokens, at least one) through the tower, carrying `state`, and returns
    /// the embedding rows `[tokens, out_size]`: `last_hidden_state` through the scaleless embedding norm. `tap`
    /// sees each layer's output and `last_hidden_state`.
    pub fn run(
        &self,
        exec: &Exec,
        state: &mut ConvState,
        x: &[f32],
        tap: &mut dyn FnMut(AudioStage, &[f32]),
    ) -> Vec<f32> {
        let eps = self.cfg.rms_norm_eps;
        let mut h = x.to_vec();
        let mut convs = state.iter_mut();
        for (i, l) in self.layers.iter().enumerate() {
            // [steps, c_in] is [steps / patch, patch * c_in] in memory: the patch embedding's input as it is.
            let rows = h.len() / l.proj.cols;
            let mut y = linear(exec, &l.proj, &l.proj_b, &h, rows);
            k::rms_norm_inplace(&mut y, l.width, RmsWeight::Plain(l.norm.get()), eps);
            for (b, ctx) in l.blocks.iter().zip(&mut convs) {
                block(exec, b, ctx, &mut y, rows, l.width, eps);
            }
            tap(AudioStage::Layer(i), &y);
            h = y;
        }
        let rows = h.len() / self.norm.get().len();
        k::rms_norm_inplace(
            &mut h,
            self.norm.get().len(),
            RmsWeight::Plain(self.norm.get()),
            eps,
        );
        let mut out = linear(exec, &self.proj, &self.proj_b, &h, rows);
        k::rms_norm_inplace(
            &mut out,
            self.cfg.out_size,
            RmsWeight::Plain(self.post_norm.get()),
            eps,
        );
        tap(AudioStage::Tower, &out);
        k::rms_norm_inplace(&mut out, self.cfg.out_size, RmsWeight::None, self.embed_eps);
        out
    }
}

/// The depthwise kernel `name`, f32 `[c, 1, k]`, as `[c, k]` values.
fn conv_kernel(
    ld: &Loader<'_>,
    name: &str,
    c: usize,
    kernel: usize,
) -> Result<Vec<f32>, ModelError> {
    ld.f32_copy(name, &[c, 1, kernel])
}

/// `x · wᵀ + b` for `rows` rows of `x`.
fn linear(exec: &Exec, w: &Weight, b: &Vector, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * w.rows];
    exec.matmul(w.view(), x, rows, &mut out);
    crate::ops::add_bias(&mut out, b.get());
    out
}

/// One conv block in place on `x` `[rows, c]`; `ctx` `[k - 1, c]` is the conv's left context, updated to the
/// last `k - 1` inputs.
fn block(exec: &Exec, b: &Block, ctx: &mut [f32], x: &mut [f32], rows: usize, c: usize, eps: f32) {
    let kernel = b.conv.len() / c;
    let past = kernel - 1;
    let steps = past + rows;
    // Channel-major [c, past + rows]: the context, then this chunk.
    let mut xin = vec![0f32; c * steps];
    for ch in 0..c {
        let line = &mut xin[ch * steps..(ch + 1) * steps];
        for t in 0..past {
            line[t] = ctx[t * c + ch];
        }
        for t in 0..rows {
            line[past + t] = x[t * c + ch];
        }
    }
    for t in 0..past {
        for ch in 0..c {
            ctx[t * c + ch] = xin[ch * steps + rows + t];
        }
    }
    let conv = Conv1d {
        c_in: c,
        c_out: c,
        kernel,
        stride: 1,
        pad_left: 0,
        pad_right: 0,
        dilation: 1,
        groups: c,
    };
    let mut y = vec![0f32; c * rows];
    k::conv1d(&conv, &xin, steps, &b.conv, Some(b.conv_b.get()), &mut y);
    // Back to [rows, c].
    let mut h = vec![0f32; rows * c];
    for ch in 0..c {
        for t in 0..rows {
            h[t * c + ch] = y[ch * rows + t];
        }
    }
    k::rms_norm_inplace(&mut h, c, RmsWeight::Plain(b.norm.get()), eps);
    let mut mid = linear(exec, &b.fc1, &b.fc1_b, &h, rows);
    k::gelu_erf(&mut mid);
    let out = linear(exec, &b.fc2, &b.fc2_b, &mid, rows);
    x.iter_mut().zip(&out).for_each(|(v, o)| *v += o);
}
