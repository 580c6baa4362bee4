//! Speech recognition: Whisper read directly from a CTranslate2 model folder (`model.bin`, `config.json`,
//! `tokenizer.json`), in f32 on Flint's kernels.
//!
//! Design:
//! - [`reader`] parses CTranslate2's `model.bin` strictly (bounded, memory-mapped, every field checked before it
//!   is used); [`Whisper::open`] copies the tensors out (matrices in their stored fp16, the rest widened to f32)
//!   and drops the map.
//! - `model` holds the weights and the encoder, `decode` the decoder with its KV cache, the cross-attention over
//!   the encoder output and greedy search, `gemm` the f32 GEMM path. Products over many rows (the encoder's
//!   layers and its two convolutions as GEMMs over the padded input, encoder attention as `Q K^T` and `P V` GEMMs
//!   per head and block of 256 query rows) run on `matrixmultiply`'s cache-blocked SGEMM, split by rows across
//!   the pool; single-row decoder steps stay on `flint_kernels::matmul` (AVX2/NEON, f16 widened on the fly) and
//!   `flint_kernels::attention`. Threads: whatever `flint_kernels::set_threads` set for the process.
//! - Audio to features is `flint_media::whisper::log_mel` (transformers' WhisperFeatureExtractor); the folder's
//!   `preprocessor_config.json` is used if there is one, Whisper's defaults (80 mels, 16 kHz, 30 s) otherwise.
//! - Search settings come from `config.json` as CTranslate2 writes it for Whisper (`suppress_ids`,
//!   `suppress_ids_begin`), the special tokens from the tokenizer. The prompt is
//!   `<|startoftranscript|><|notimestamps|>` for an English-only model (vocabulary of 51864) and
//!   `<|startoftranscript|><|en|><|transcribe|><|notimestamps|>` for a multilingual one (English is assumed).
//!
//! The text is the tokenizer's decoding of the ids with special tokens skipped, as is (Whisper's text usually
//! starts with a space).

pub mod error;
pub mod reader;

mod decode;
mod gemm;
mod model;

pub use error::AsrError;

use decode::Search;
use flint_kernels::Exec;
use flint_media::whisper::WhisperConfig;
use model::Weights;
use reader::ModelBin;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Largest config.json / preprocessor_config.json read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Largest tokenizer.json read.
const MAX_TOKENIZER_BYTES: u64 = 64 << 20;
/// Largest clip [`Whisper::transcribe`] takes, seconds (Whisper's window).
pub const MAX_SECONDS: usize = 30;

// The glasses loop shares one model between threads.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Whisper>();
};

/// A Whisper model ready to transcribe. Immutable after [`Whisper::open`]: calls may run from several threads.
#[derive(Debug)]
pub struct Whisper {
    dir: PathBuf,
    w: Weights,
    search: Search,
    features: WhisperConfig,
    tokenizer: tokenizers::Tokenizer,
}

/// What [`Whisper::transcribe`] heard.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The decoded text, special tokens skipped (usually with a leading space).
    pub text: String,
    /// The generated ids, without the prompt and without `<|endoftext|>`.
    pub ids: Vec<u32>,
    /// Milliseconds spent on log-mel features and the encoder.
    pub encode_ms: f64,
    /// Milliseconds spent on greedy decoding (cross-attention projections included).
    pub decode_ms: f64,
}

impl Whisper {
    /// `dir`: a CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json).
    pub fn open(dir: &Path) -> Result<Whisper, AsrError> {
        let config = read_json(&dir.join("config.json"))?;
        let bin = ModelBin::open(&dir.join("model.bin"))?;
        let w = Weights::load(&bin)?;
        drop(bin);
        let tok_path = dir.join("tokenizer.json");
        let tok_err = |why: String| AsrError::Tokenizer {
            path: tok_path.clone(),
            why,
        };
        check_size(&tok_path, MAX_TOKENIZER_BYTES)?;
        let tokenizer =
            tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| tok_err(e.to_string()))?;
        let vocab = w.dims.vocab;
        let special = |t: &str| {
            tokenizer
                .token_to_id(t)
                .filter(|&id| (id as usize) < vocab)
                .ok_or_else(|| {
                    tok_err(format!(
                        "no token {t} below the model's vocabulary of {vocab}"
                    ))
                })
        };
        let mut prompt = vec![special("<|startoftranscript|>")?];
        if vocab >= 51865 {
            prompt.push(special("<|en|>")?);
            prompt.push(special("<|transcribe|>")?);
        }
        prompt.push(special("<|notimestamps|>")?);
        if prompt.len() >= w.dims.max_pos {
            return Err(AsrError::Variable {
                path: dir.join("model.bin"),
                name: "decoder/position_encodings/encodings".into(),
                why: format!(
                    "{} positions leave no room after the prompt",
                    w.dims.max_pos
                ),
            });
        }
        let cfg_path = dir.join("config.json");
        let search = Search {
            prompt,
            eot: special("<|endoftext|>")?,
            suppress: id_list(&cfg_path, &config, "suppress_ids", vocab)?,
            suppress_begin: id_list(&cfg_path, &config, "suppress_ids_begin", vocab)?,
        };
        let pre = dir.join("preprocessor_config.json");
        let features = if pre.exists() {
            WhisperConfig::from_file(&pre)?
        } else {
            WhisperConfig {
                feature_size: w.dims.mels,
                sampling_rate: 16000,
                hop_length: 160,
                n_fft: 400,
                chunk_length: 30,
            }
        };
        if features.feature_size != w.dims.mels || features.frames() != 2 * w.dims.ctx {
            return Err(AsrError::Config {
                path: pre,
                field: "feature_size".into(),
                why: format!(
                    "{} mels x {} frames, but the encoder takes {} x {}",
                    features.feature_size,
                    features.frames(),
                    w.dims.mels,
                    2 * w.dims.ctx
                ),
            });
        }
        Ok(Whisper {
            dir: dir.to_path_buf(),
            w,
            search,
            features,
            tokenizer,
        })
    }

    /// 16 kHz mono samples in [-1, 1]; at most 30 s (longer: an error naming the length).
    pub fn transcribe(&self, samples_16k: &[f32]) -> Result<Transcript, AsrError> {
        let rate = self.features.sampling_rate as usize;
        let max = MAX_SECONDS.min(self.features.chunk_length) * rate;
        if samples_16k.len() > max {
            return Err(AsrError::Input(format!(
                "a clip of {} samples ({:.2} s) is longer than the {} s Whisper takes",
                samples_16k.len(),
                samples_16k.len() as f64 / rate as f64,
                max / rate
            )));
        }
        let t0 = Instant::now();
        let mel = flint_media::whisper::log_mel(&self.features, Path::new("<clip>"), samples_16k)?;
        let enc = self.encode(&mel)?;
        let encode_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let ids = self.decode_greedy(&enc, self.w.dims.max_pos)?;
        let decode_ms = t1.elapsed().as_secs_f64() * 1e3;
        Ok(Transcript {
            text: self.text(&ids)?,
            ids,
            encode_ms,
            decode_ms,
        })
    }

    /// Lower level, for tests: log-mel features [80, 3000] -> encoder output [1500, 384].
    pub fn encode(&self, mel: &[f32]) -> Result<Vec<f32>, AsrError> {
        let (mels, frames) = (self.w.dims.mels, 2 * self.w.dims.ctx);
        if mel.len() != mels * frames {
            return Err(AsrError::Input(format!(
                "log-mel of {} values, expected [{mels}, {frames}] = {}",
                mel.len(),
                mels * frames
            )));
        }
        Ok(self.w.encode(&Exec::global(), mel))
    }

    /// Greedy decoding of an encoder output `[1500, 384]`: the generated ids (no prompt, no
    /// `<|endoftext|>`), at most `max_tokens` (and at most what the decoder's positions leave after the prompt).
    pub fn decode_greedy(
        &self,
        encoder_out: &[f32],
        max_tokens: usize,
    ) -> Result<Vec<u32>, AsrError> {
        self.check_encoder_out(encoder_out)?;
        Ok(decode::greedy(
            &self.w,
            &Exec::global(),
            &self.search,
            encoder_out,
            max_tokens,
        ))
    }

    /// Lower level, for tests: the logits `[tokens.len(), vocab]` after each of `tokens` fed in one pass
    /// (teacher forcing from position 0; `tokens` usually starts with [`Whisper::prompt`]).
    pub fn logits(&self, encoder_out: &[f32], tokens: &[u32]) -> Result<Vec<f32>, AsrError> {
        self.check_encoder_out(encoder_out)?;
        if tokens.is_empty() || tokens.len() > self.w.dims.max_pos {
            return Err(AsrError::Input(format!(
                "{} tokens; 1 to {} fit the decoder",
                tokens.len(),
                self.w.dims.max_pos
            )));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.w.dims.vocab) {
            return Err(AsrError::Input(format!(
                "token {t} is not below the vocabulary of {}",
                self.w.dims.vocab
            )));
        }
        let exec = Exec::global();
        let cross = decode::Cross::new(&self.w, &exec, encoder_out);
        let mut cache = decode::Cache::new(&self.w);
        let h = decode::forward(&self.w, &exec, &cross, &mut cache, tokens);
        Ok(decode::logits(&self.w, &exec, &h))
    }

    /// The decoder prompt greedy search starts from.
    pub fn prompt(&self) -> &[u32] {
        &self.search.prompt
    }

    /// The text of `ids`, special tokens skipped.
    pub fn text(&self, ids: &[u32]) -> Result<String, AsrError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| AsrError::Tokenizer {
                path: self.dir.join("tokenizer.json"),
                why: e.to_string(),
            })
    }

    fn check_encoder_out(&self, enc: &[f32]) -> Result<(), AsrError> {
        let (ctx, d) = (self.w.dims.ctx, self.w.dims.d);
        if enc.len() != ctx * d {
            return Err(AsrError::Input(format!(
                "encoder output of {} values, expected [{ctx}, {d}] = {}",
                enc.len(),
                ctx * d
            )));
        }
        Ok(())
    }
}

fn check_size(path: &Path, cap: u64) -> Result<(), AsrError> {
    let meta = std::fs::metadata(path).map_err(|source| AsrError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > cap {
        return Err(AsrError::Config {
            path: path.to_path_buf(),
            field: "(file)".into(),
            why: format!("{} bytes is over the cap of {cap}", meta.len()),
        });
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, AsrError> {
    check_size(path, MAX_CONFIG_BYTES)?;
    let text = std::fs::read(path).map_err(|source| AsrError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| AsrError::Config {
        path: path.to_path_buf(),
        field: "(file)".into(),
        why: format!("not JSON: {e}"),
    })?;
    if !v.is_object() {
        return Err(AsrError::Config {
            path: path.to_path_buf(),
            field: "(file)".into(),
            why: "not a JSON object".into(),
        });
    }
    Ok(v)
}

/// An optional list of token ids below `vocab` (absent: empty).
fn id_list(path: &Path, cfg: &Value, field: &str, vocab: usize) -> Result<Vec<u32>, AsrError> {
    let err = |why: String| AsrError::Config {
        path: path.to_path_buf(),
        field: field.into(),
        why,
    };
    let Some(v) = cfg.get(field) else {
        return Ok(Vec::new());
    };
    let arr = v.as_array().ok_or_else(|| err("not an array".into()))?;
    arr.iter()
        .map(|x| match x.as_u64().and_then(|id| u32::try_from(id).ok()) {
            Some(id) if (id as usize) < vocab => Ok(id),
            _ => Err(err(format!("{x} is not a token id below {vocab}"))),
        })
        .collect()
}
