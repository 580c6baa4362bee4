//! Audio towers: a waveform in, the embedding rows that replace the prompt's `<|audio|>` placeholders out.
//!
//! Muse Spark's tower (muse.rs) is a causal convolution pyramid over the raw 24 kHz waveform, one token per
//! `samples_per_token` samples (1920, 80 ms), with no attention and no spectrogram. Its output rows go through the
//! decoder's scaleless embedding norm (`embed_norm`, eps `rms_norm_eps` of the decoder) before they are scattered
//! into the prompt, and of a right-padded clip only the first `ceil(valid / samples_per_token)` tokens are kept
//! (transformers' `get_audio_features`).
//!
//! Because every step is causal, the tower streams: [`AudioStream`] keeps each convolution's left context between
//! calls and buffers the samples of a token not yet complete, so audio is encoded while it arrives and, at the end
//! of speech, at most one token's samples are left to compute. [`AudioTower::encode`] is the same stream run over
//! a whole clip, in bounded chunks.

pub mod mel;
mod muse;

use crate::config::limits::MAX_AUDIO_SAMPLES;
use crate::weights::Loader;
use crate::ModelError;
use flint_format::FlintFile;
use flint_kernels::Exec;
use muse::{ConvState, Tower};

/// Tokens run through the tower at once: bounds the scratch of a long clip (at the released widths, 32 tokens
/// are 3840 rows of 256 and ~16 MB of MLP activations in the first layer).
const CHUNK_TOKENS: usize = 32;

/// A point inside the tower where [`AudioTower::encode_traced`] shows the rows computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioStage {
    /// Output of pyramid layer `i` (after its conv blocks): `[steps, hidden_sizes[i]]`.
    Layer(usize),
    /// The tower's output (`last_hidden_state`, before the embedding norm): `[tokens, out_size]`.
    Tower,
}

/// A loaded audio tower.
#[derive(Debug)]
pub struct AudioTower {
    tower: Tower,
}

impl AudioTower {
    /// Binds the tower of `file` (its `model.config.audio`), zero-copy except the small conv kernels.
    pub fn load(file: &FlintFile) -> Result<AudioTower, ModelError> {
        let ld = Loader::new(file);
        let config = ld.config()?;
        let audio = config.audio.as_ref().ok_or_else(|| ModelError::Metadata {
            path: file.path().display().to_string(),
            key: "model.config",
            msg: "has no `audio`: the model has no audio tower".into(),
        })?;
        Ok(AudioTower {
            tower: Tower::load(&ld, audio, config.rms_norm_eps)?,
        })
    }

    /// The tower's description.
    pub fn config(&self) -> &crate::AudioConfig {
        &self.tower.cfg
    }

    /// The embedding rows `[tokens, out_size]` of a clip: `samples` (mono, 24 kHz, right-padded or not) of which
    /// the first `valid` are real audio (`input_values_mask.sum()`); `ceil(valid / samples_per_token)` rows.
    /// A clip shorter than its last token is padded with zeros, as the feature extractor does.
    pub fn encode(
        &self,
        exec: &Exec,
        samples: &[f32],
        valid: usize,
    ) -> Result<Vec<f32>, ModelError> {
        self.encode_traced(exec, samples, valid, &mut |_, _| {})
    }

    /// [`AudioTower::encode`], showing `tap` the rows of each stage (in chunks of at most 32 tokens, in order).
    pub fn encode_traced(
        &self,
        exec: &Exec,
        samples: &[f32],
        valid: usize,
        tap: &mut dyn FnMut(AudioStage, &[f32]),
    ) -> Result<Vec<f32>, ModelError> {
        if samples.is_empty() || valid == 0 {
            return Err(ModelError::Invalid(format!(
                "audio: no samples to encode ({} given, {valid} valid)",
                samples.len()
            )));
        }
        if valid > samples.len() {
            return Err(ModelError::Invalid(format!(
                "audio: {valid} valid samples of {} given",
                samples.len()
            )));
        }
        // Causal: the tokens past the valid ones are dropped, so they are not computed.
        let keep = self.config().tokens_for(valid) * self.config().samples_per_token();
        let mut s = self.stream(exec);
        let mut out = s.push_traced(&samples[..keep.min(samples.len())], tap)?;
        out.extend(s.finish_traced(valid, tap)?);
        Ok(out)
    }

    /// A stream over this tower, computing on `exec`.
    pub fn stream(&self, exec: &Exec) -> AudioStream<'_> {
        AudioStream {
            tower: self,
            exec: exec.clone(),
            state: self.tower.initial_state(),
            pending: Vec::new(),
            pushed: 0,
            emitted: 0,
        }
    }
}

/// `MuseSparkFeatureExtractor`'s padding of one clip: `samples` followed by zeros up to the next multiple of
/// `multiple` (its `samples_per_token`, 1920); the mask (`input_values_mask`) is 1 for the first `samples.len()`
/// values. Returns the padded clip; `valid` for [`AudioTower::encode`] is `samples.len()`.
pub fn pad_like_extractor(samples: &[f32], multiple: usize) -> Vec<f32> {
    let mut out = samples.to_vec();
    out.resize(
        samples.len().div_ceil(multiple.max(1)) * multiple.max(1),
        0.0,
    );
    out
}

/// Encodes a waveform as it arrives: equal, token for token, to encoding it whole.
#[derive(Debug)]
pub struct AudioStream<'a> {
    tower: &'a AudioTower,
    exec: Exec,
    state: ConvState,
    /// Samples of the token not yet complete (fewer than `samples_per_token`).
    pending: Vec<f32>,
    pushed: usize,
    emitted: usize,
}

impl AudioStream<'_> {
    /// Adds `samples` and returns the embedding rows of every token they complete (possibly none). At most
    /// 10 minutes of audio (`limits::MAX_AUDIO_SAMPLES`) per call; every sample must be finite.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, ModelError> {
        self.push_traced(samples, &mut |_, _| {})
    }

    /// [`AudioStream::push`], showing `tap` the rows of each stage.
    pub fn push_traced(
        &mut self,
        samples: &[f32],
        tap: &mut dyn FnMut(AudioStage, &[f32]),
    ) -> Result<Vec<f32>, ModelError> {
        if samples.len() > MAX_AUDIO_SAMPLES {
            return Err(ModelError::Invalid(format!(
                "audio: {} samples in one call exceed the cap of {MAX_AUDIO_SAMPLES}",
                samples.len()
            )));
        }
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::Invalid(format!(
                "audio: sample {} is {}",
                self.pushed + i,
                samples[i]
            )));
        }
        self.pushed += samples.len();
        self.pending.extend_from_slice(samples);
        let spt = self.tower.config().samples_per_token();
        let whole = self.pending.len() / spt * spt;
        let mut out = Vec::new();
        for chunk in self.pending[..whole].chunks(CHUNK_TOKENS * spt) {
            out.extend(
                self.tower
                    .tower
                    .run(&self.exec, &mut self.state, chunk, tap),
            );
        }
        self.emitted += whole / spt;
        self.pending.drain(..whole);
        Ok(out)
    }

    /// Ends the stream: `valid` of the samples pushed were real audio (all of them, for a microphone). Returns
    /// the rows still owed: the last, incomplete token padded with zeros, if it lies within
    /// `ceil(valid / samples_per_token)` tokens. An error if `valid` exceeds what was pushed, or if rows past
    /// the valid tokens were already returned (whole tokens of padding were pushed).
    pub fn finish(self, valid: usize) -> Result<Vec<f32>, ModelError> {
        self.finish_traced(valid, &mut |_, _| {})
    }

    /// [`AudioStream::finish`], showing `tap` the rows of each stage.
    pub fn finish_traced(
        mut self,
        valid: usize,
        tap: &mut dyn FnMut(AudioStage, &[f32]),
    ) -> Result<Vec<f32>, ModelError> {
        if valid > self.pushed {
            return Err(ModelError::Invalid(format!(
                "audio: {valid} valid samples of {} pushed",
                self.pushed
            )));
        }
        let cfg = self.tower.config();
        let tokens = cfg.tokens_for(valid);
        if self.emitted > tokens {
            return Err(ModelError::Invalid(format!(
                "audio: {} tokens were returned, but {valid} valid samples make {tokens}",
                self.emitted
            )));
        }
        if self.pending.is_empty() || self.emitted == tokens {
            return Ok(Vec::new());
        }
        self.pending.resize(cfg.samples_per_token(), 0.0);
        Ok(self
            .tower
            .tower
            .run(&self.exec, &mut self.state, &self.pending, tap))
    }

    /// Tokens returned so far.
    pub fn tokens(&self) -> usize {
        self.emitted
    }

    /// Samples buffered for the next token.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}
