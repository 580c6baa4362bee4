//! Whisper's weights as read from a CTranslate2 `WhisperSpec`, and the encoder.
//!
//! Variable names (python/ctranslate2/specs/whisper_spec.py and transformer_spec.py):
//! - `encoder/conv1`, `encoder/conv2` (`weight` `[d, c_in, 3]`, `bias`), `encoder/position_encodings/encodings`
//!   (the sinusoids, stored), `encoder/layer_N/self_attention/{layer_norm, linear_0 (fused q|k|v), linear_1}`,
//!   `encoder/layer_N/ffn/{layer_norm, linear_0, linear_1}`, `encoder/layer_norm`;
//! - `decoder/embeddings/weight` (also the output projection: `decoder/projection/weight` is an alias),
//!   `decoder/position_encodings/encodings` (learned), `decoder/layer_N/self_attention/{layer_norm, linear_0
//!   (q|k|v), linear_1}`, `decoder/layer_N/attention/{layer_norm, linear_0 (q), linear_1 (k|v over the encoder
//!   output), linear_2}`, `decoder/layer_N/ffn/...`, `decoder/layer_norm`;
//! - layer norms are `gamma` / `beta`, eps 1e-5; scalars `*/num_heads`, `decoder/activation` (3 = GELU),
//!   `decoder/pre_norm`, `decoder/scale_embeddings`, `decoder/alibi`.
//!
//! The maths is f32 throughout; fp16 values widen exactly. Matrices applied to one row at a time (the decoder's,
//! the tied embedding) stay in their stored type and `flint_kernels::matmul` widens them on the fly (half the
//! bytes to stream per token); matrices applied to 1500 rows at once (encoder layers) or read as f32 by the
//! decoder's cross-attention (its fused K|V, see `decode::Cross`) are widened to f32 at load, for the SGEMM of
//! `gemm`. Norms, biases, positions and the conv kernels (reordered tap-major for `gemm::conv3`) are widened once
//! at load too.
//!
//! Encoder (transformers' `WhisperEncoder`): `gelu(conv1(mel))`, `gelu(conv2(.))` with stride 2 (3000 frames →
//! 1500), transpose to `[1500, d]`, add the positions, then pre-LN layers `x += out(attn(ln(x)))`,
//! `x += fc2(gelu(fc1(ln(x))))`, and a final layer norm.

use crate::error::AsrError;
use crate::gemm;
use crate::reader::{Matrix, ModelBin};
use flint_kernels::ops;
use flint_kernels::Exec;

/// Layer norm epsilon of Whisper (`nn.LayerNorm` default).
pub(crate) const LN_EPS: f32 = 1e-5;
/// From this many rows an f32 linear layer runs as a blocked GEMM ([`gemm::linear`]); fewer (decoder steps, the
/// prompt) stay on `flint_kernels::matmul`.
const GEMM_MIN_ROWS: usize = 16;
/// More layers than any Whisper has; bounds the probe for `layer_N`.
const MAX_LAYERS: usize = 128;

/// A linear layer `y = W x + b`, `W` `[rows, cols]`.
#[derive(Debug)]
pub(crate) struct Linear {
    pub w: Matrix,
    pub b: Option<Vec<f32>>,
    pub rows: usize,
}

impl Linear {
    /// `wide`: widen the matrix to f32 at load (for layers applied to many rows at once, which run as an f32
    /// GEMM); otherwise keep the stored type (matvec is memory-bound).
    fn load(
        m: &ModelBin,
        prefix: &str,
        rows: usize,
        cols: usize,
        wide: bool,
    ) -> Result<Linear, AsrError> {
        let wn = format!("{prefix}/weight");
        let w = if wide {
            Matrix::F32(m.floats(&wn, &[rows, cols])?)
        } else {
            m.matrix(&wn, rows, cols)?
        };
        let bn = format!("{prefix}/bias");
        let b = if m.has(&bn) {
            Some(m.floats(&bn, &[rows])?)
        } else {
            None
        };
        Ok(Linear { w, b, rows })
    }

    /// `x` `[n, cols]` → `[n, rows]`.
    pub fn forward(&self, exec: &Exec, x: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0f32; n * self.rows];
        self.apply(exec, x, n, &mut out, false);
        out
    }

    /// The matrix as f32, for a layer loaded `wide`.
    ///
    /// # Panics
    /// If it was not (a bug: only `wide` layers are asked).
    pub fn f32s(&self) -> &[f32] {
        match &self.w {
            Matrix::F32(w) => w,
            _ => panic!("a linear layer loaded narrow was used as f32"),
        }
    }

    /// `out += x W^T + b` for `x` `[n, cols]`, `out` `[n, rows]` (a residual added in place).
    pub fn add_to(&self, exec: &Exec, x: &[f32], n: usize, out: &mut [f32]) {
        self.apply(exec, x, n, out, true);
    }

    fn apply(&self, exec: &Exec, x: &[f32], n: usize, out: &mut [f32], accumulate: bool) {
        if let (Matrix::F32(w), true) = (&self.w, n >= GEMM_MIN_ROWS) {
            let cols = x.len() / n;
            gemm::linear(
                exec,
                x,
                n,
                w,
                self.rows,
                cols,
                self.b.as_deref(),
                out,
                accumulate,
            );
            return;
        }
        let mut y = vec![0f32; n * self.rows];
        exec.matmul(self.w.view(), x, n, &mut y);
        for (o, y) in out
            .chunks_exact_mut(self.rows)
            .zip(y.chunks_exact(self.rows))
        {
            match (&self.b, accumulate) {
                (Some(b), true) => o
                    .iter_mut()
                    .zip(y)
                    .zip(b)
                    .for_each(|((o, y), b)| *o += y + b),
                (Some(b), false) => o
                    .iter_mut()
                    .zip(y)
                    .zip(b)
                    .for_each(|((o, y), b)| *o = y + b),
                (None, true) => o.iter_mut().zip(y).for_each(|(o, y)| *o += y),
                (None, false) => o.copy_from_slice(y),
            }
        }
    }
}

/// A layer norm's `gamma` and `beta`.
#[derive(Debug)]
pub(crate) struct Norm {
    pub g: Vec<f32>,
    pub b: Vec<f32>,
}

impl Norm {
    fn load(m: &ModelBin, prefix: &str, d: usize) -> Result<Norm, AsrError> {
        Ok(Norm {
            g: m.floats(&format!("{prefix}/gamma"), &[d])?,
            b: m.floats(&format!("{prefix}/beta"), &[d])?,
        })
    }

    /// Normalizes each row of `x` (rows of `g.len()` values) into a new vector.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        ops::layer_norm(x, self.g.len(), &self.g, Some(&self.b), LN_EPS, &mut out);
        out
    }
}

/// The feed-forward block: `fc2(gelu(fc1(ln(x))))`.
#[derive(Debug)]
pub(crate) struct Ffn {
    pub ln: Norm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Ffn {
    fn load(m: &ModelBin, prefix: &str, d: usize, ff: usize, wide: bool) -> Result<Ffn, AsrError> {
        Ok(Ffn {
            ln: Norm::load(m, &format!("{prefix}/layer_norm"), d)?,
            fc1: Linear::load(m, &format!("{prefix}/linear_0"), ff, d, wide)?,
            fc2: Linear::load(m, &format!("{prefix}/linear_1"), d, ff, wide)?,
        })
    }

    /// `x += ffn(x)` for `n` rows.
    pub fn residual(&self, exec: &Exec, x: &mut [f32], n: usize) {
        let h = self.ln.apply(x);
        let mut mid = self.fc1.forward(exec, &h, n);
        gemm::gelu(&mut mid);
        self.fc2.add_to(exec, &mid, n, x);
    }
}

/// An encoder layer.
#[derive(Debug)]
pub(crate) struct EncLayer {
    pub ln: Norm,
    pub qkv: Linear,
    pub out: Linear,
    pub ffn: Ffn,
}

/// A decoder layer.
#[derive(Debug)]
pub(crate) struct DecLayer {
    pub self_ln: Norm,
    pub self_qkv: Linear,
    pub self_out: Linear,
    pub cross_ln: Norm,
    pub cross_q: Linear,
    pub cross_kv: Linear,
    pub cross_out: Linear,
    pub ffn: Ffn,
}

/// Sizes read from the tensors' shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dims {
    pub d: usize,
    pub mels: usize,
    /// Encoder positions (1500); the mel input has `2 * ctx` frames.
    pub ctx: usize,
    pub heads: usize,
    pub dec_heads: usize,
    pub ff: usize,
    pub vocab: usize,
    /// Decoder positions (448).
    pub max_pos: usize,
}

/// All weights of the model.
#[derive(Debug)]
pub(crate) struct Weights {
    pub dims: Dims,
    /// `[d, 3, mels]` (kernel tap before channel, for [`gemm::conv3`]).
    pub conv1_w: Vec<f32>,
    pub conv1_b: Vec<f32>,
    /// `[d, 3, d]`, as `conv1_w`.
    pub conv2_w: Vec<f32>,
    pub conv2_b: Vec<f32>,
    pub enc_pos: Vec<f32>,
    pub enc: Vec<EncLayer>,
    pub enc_ln: Norm,
    pub embed: Matrix,
    pub dec_pos: Vec<f32>,
    pub dec: Vec<DecLayer>,
    pub dec_ln: Norm,
}

fn shape2(m: &ModelBin, name: &str) -> Result<[usize; 2], AsrError> {
    match m.info(name)?.shape[..] {
        [a, b] => Ok([a, b]),
        ref s => Err(m.var_err(name, format!("shape {s:?}, expected 2 dimensions"))),
    }
}

fn count_layers(m: &ModelBin, side: &str) -> Result<usize, AsrError> {
    let n = (0..=MAX_LAYERS)
        .take_while(|i| m.has(&format!("{side}/layer_{i}/self_attention/linear_0/weight")))
        .count();
    if n == 0 || n > MAX_LAYERS {
        let name = format!("{side}/layer_0/self_attention/linear_0/weight");
        return Err(m.var_err(
            &name,
            format!("{n} {side} layers (1 to {MAX_LAYERS} expected)"),
        ));
    }
    Ok(n)
}

fn heads(m: &ModelBin, name: &str, d: usize) -> Result<usize, AsrError> {
    let h = m.int(name)?;
    if h <= 0 || !d.is_multiple_of(h as usize) {
        return Err(m.var_err(name, format!("{h} heads do not divide d_model {d}")));
    }
    Ok(h as usize)
}

/// A scalar flag that must hold `want` if present.
fn expect_flag(m: &ModelBin, name: &str, want: i64, what: &str) -> Result<(), AsrError> {
    if m.has(name) && m.int(name)? != want {
        return Err(m.var_err(name, format!("unsupported: {what} is required")));
    }
    Ok(())
}

impl Weights {
    /// Reads and checks every tensor the model needs.
    pub fn load(m: &ModelBin) -> Result<Weights, AsrError> {
        if m.spec != "WhisperSpec" {
            return Err(m.var_err(
                "(spec name)",
                format!("spec `{}`, expected WhisperSpec", m.spec),
            ));
        }
        let conv1 = m.info("encoder/conv1/weight")?;
        let (d, mels) = match conv1.shape[..] {
            [d, mels, 3] if d > 0 && mels > 0 => (d, mels),
            ref s => {
                return Err(m.var_err(
                    "encoder/conv1/weight",
                    format!("shape {s:?}, expected [d, mels, 3]"),
                ))
            }
        };
        let [ctx, pd] = shape2(m, "encoder/position_encodings/encodings")?;
        let [vocab, ed] = shape2(m, "decoder/embeddings/weight")?;
        let [max_pos, dd] = shape2(m, "decoder/position_encodings/encodings")?;
        let [ff, fd] = shape2(m, "encoder/layer_0/ffn/linear_0/weight")?;
        for (name, got) in [
            ("encoder/position_encodings/encodings", pd),
            ("decoder/embeddings/weight", ed),
            ("decoder/position_encodings/encodings", dd),
            ("encoder/layer_0/ffn/linear_0/weight", fd),
        ] {
            if got != d {
                return Err(m.var_err(name, format!("width {got}, but d_model is {d}")));
            }
        }
        if ctx == 0 || max_pos < 4 || vocab == 0 || ff == 0 {
            return Err(m.var_err("(dimensions)", "a zero-sized model"));
        }
        expect_flag(m, "decoder/activation", 3, "GELU (activation 3)")?;
        expect_flag(m, "decoder/pre_norm", 1, "pre-norm")?;
        expect_flag(m, "decoder/scale_embeddings", 0, "unscaled embeddings")?;
        expect_flag(m, "decoder/alibi", 0, "no ALiBi")?;
        expect_flag(
            m,
            "decoder/start_from_zero_embedding",
            0,
            "no zero start embedding",
        )?;
        let dims = Dims {
            d,
            mels,
            ctx,
            heads: heads(m, "encoder/num_heads", d)?,
            dec_heads: heads(m, "decoder/num_heads", d)?,
            ff,
            vocab,
            max_pos,
        };
        let (ne, nd) = (count_layers(m, "encoder")?, count_layers(m, "decoder")?);
        let enc = (0..ne)
            .map(|i| {
                let p = format!("encoder/layer_{i}");
                Ok(EncLayer {
                    ln: Norm::load(m, &format!("{p}/self_attention/layer_norm"), d)?,
                    qkv: Linear::load(m, &format!("{p}/self_attention/linear_0"), 3 * d, d, true)?,
                    out: Linear::load(m, &format!("{p}/self_attention/linear_1"), d, d, true)?,
                    ffn: Ffn::load(m, &format!("{p}/ffn"), d, ff, true)?,
                })
            })
            .collect::<Result<Vec<_>, AsrError>>()?;
        let dec = (0..nd)
            .map(|i| {
                let p = format!("decoder/layer_{i}");
                Ok(DecLayer {
                    self_ln: Norm::load(m, &format!("{p}/self_attention/layer_norm"), d)?,
                    self_qkv: Linear::load(
                        m,
                        &format!("{p}/self_attention/linear_0"),
                        3 * d,
                        d,
                        false,
                    )?,
                    self_out: Linear::load(
                        m,
                        &format!("{p}/self_attention/linear_1"),
                        d,
                        d,
                        false,
                    )?,
                    cross_ln: Norm::load(m, &format!("{p}/attention/layer_norm"), d)?,
                    cross_q: Linear::load(m, &format!("{p}/attention/linear_0"), d, d, false)?,
                    cross_kv: Linear::load(m, &format!("{p}/attention/linear_1"), 2 * d, d, true)?,
                    cross_out: Linear::load(m, &format!("{p}/attention/linear_2"), d, d, false)?,
                    ffn: Ffn::load(m, &format!("{p}/ffn"), d, ff, false)?,
                })
            })
            .collect::<Result<Vec<_>, AsrError>>()?;
        // The output projection is tied to the embeddings; refuse a file where it is a different matrix.
        let proj = "decoder/projection/weight";
        if m.has(proj) && m.info(proj)? != m.info("decoder/embeddings/weight")? {
            return Err(m.var_err(proj, "an untied output projection is not supported"));
        }
        if m.has("decoder/projection/bias") {
            return Err(m.var_err("decoder/projection/bias", "an output bias is not supported"));
        }
        Ok(Weights {
            dims,
            conv1_w: gemm::conv_weights_k_major(
                &m.floats("encoder/conv1/weight", &[d, mels, 3])?,
                d,
                mels,
            ),
            conv1_b: m.floats("encoder/conv1/bias", &[d])?,
            conv2_w: gemm::conv_weights_k_major(
                &m.floats("encoder/conv2/weight", &[d, d, 3])?,
                d,
                d,
            ),
            conv2_b: m.floats("encoder/conv2/bias", &[d])?,
            enc_pos: m.floats("encoder/position_encodings/encodings", &[ctx, d])?,
            enc,
            enc_ln: Norm::load(m, "encoder/layer_norm", d)?,
            embed: m.matrix("decoder/embeddings/weight", vocab, d)?,
            dec_pos: m.floats("decoder/position_encodings/encodings", &[max_pos, d])?,
            dec,
            dec_ln: Norm::load(m, "decoder/layer_norm", d)?,
        })
    }

    /// Encoder: mel `[mels, 2 * ctx]` (length checked by the caller) → `[ctx, d]`.
    pub fn encode(&self, exec: &Exec, mel: &[f32]) -> Vec<f32> {
        let Dims {
            d,
            mels,
            ctx,
            heads,
            ..
        } = self.dims;
        let frames = 2 * ctx;
        // Time-major from here: mel [mels, frames] → [frames, mels].
        let mut mt = vec![0f32; frames * mels];
        for (c, row) in mel.chunks_exact(frames).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                mt[t * mels + c] = v;
            }
        }
        let mut h1 = gemm::conv3(exec, &mt, frames, mels, &self.conv1_w, &self.conv1_b, d, 1);
        gemm::gelu(&mut h1);
        let mut x = gemm::conv3(exec, &h1, frames, d, &self.conv2_w, &self.conv2_b, d, 2);
        debug_assert_eq!(x.len(), ctx * d);
        gemm::gelu(&mut x);
        x.iter_mut().zip(&self.enc_pos).for_each(|(a, p)| *a += p);
        let scale = 1.0 / ((d / heads) as f32).sqrt();
        let mut a = vec![0f32; ctx * d];
        for l in &self.enc {
            let h = l.ln.apply(&x);
            let qkv = l.qkv.forward(exec, &h, ctx);
            gemm::self_attention(exec, &qkv, ctx, d, heads, scale, &mut a);
            l.out.add_to(exec, &a, ctx, &mut x);
            l.ffn.residual(exec, &mut x, ctx);
        }
        self.enc_ln.apply(&x)
    }
}

/// Splits fused rows `[n, 3d]` into three `[n, d]` arrays.
pub(crate) fn split3(x: &[f32], n: usize, d: usize) -> [Vec<f32>; 3] {
    let mut parts = [vec![0f32; n * d], vec![0f32; n * d], vec![0f32; n * d]];
    for (r, row) in x.chunks_exact(3 * d).enumerate().take(n) {
        for (p, part) in parts.iter_mut().enumerate() {
            part[r * d..(r + 1) * d].copy_from_slice(&row[p * d..(p + 1) * d]);
        }
    }
    parts
}
