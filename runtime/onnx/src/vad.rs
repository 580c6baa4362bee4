//! Streaming voice activity detection with Silero VAD (the `silero_vad_openvino_16k.onnx` export of
//! silero-vad 6.2.3: the `If`-free graph, which tract runs), on the engine named by [`VadConfig::backend`].
//!
//! # Model protocol (from silero-vad's `utils_vad.py`, `OnnxWrapper`)
//! Each call takes `input` `[1, 576]` = the last 64 samples of the previous call's input (zeros after a reset)
//! followed by 512 new samples at 16 kHz, and `state` `[2, 1, 128]` (zeros after a reset); it returns the
//! speech probability `[1, 1]` and the next state. [`Vad`] keeps the chunking, context and state itself, so
//! callers push any number of samples.
//!
//! # Events
//! A hysteresis state machine over the per-chunk probabilities `p`, in the spirit of silero's `VADIterator`
//! but with a minimum speech length and a pre-roll for cutting utterances:
//! - a chunk with `p >= threshold` opens a candidate (or cancels a pending silence);
//! - a chunk with `p < neg_threshold` inside a candidate starts a silence run, at that chunk's first sample;
//! - the candidate becomes [`VadEvent::SpeechStart`] once it spans `min_speech_ms` with no silence run
//!   pending; `at_sample` is the candidate's first sample minus `pre_roll_ms` (clamped at 0 and at the
//!   previous end);
//! - a silence run that lasts `hangover_ms` closes the speech with [`VadEvent::SpeechEnd`] at the run's first
//!   sample (a candidate that never started is dropped silently).
//!
//! Sample positions count from [`Vad::open`] / [`Vad::reset`]; `samples[start..end]` is the utterance.

use crate::backend::{Backend, Dim, F32Tensor, Session};
use crate::error::OnnxError;
use std::path::Path;

/// Sample rate the model takes.
pub const SAMPLE_RATE: u32 = 16_000;
/// New samples per model call.
pub const CHUNK: usize = 512;
/// Samples of the previous call prepended to each call.
pub const CONTEXT: usize = 64;
const STATE_LEN: usize = 2 * 128;

/// Thresholds and timings of the event state machine, and the engine running the model.
#[derive(Clone, Debug, PartialEq)]
pub struct VadConfig {
    /// A chunk at or above this probability is speech (silero's default 0.5).
    pub threshold: f32,
    /// A chunk below this probability is silence (silero uses `threshold - 0.15`).
    pub neg_threshold: f32,
    /// Speech must last this long before [`VadEvent::SpeechStart`] is reported.
    pub min_speech_ms: u32,
    /// Silence must last this long before [`VadEvent::SpeechEnd`] is reported.
    pub hangover_ms: u32,
    /// Audio kept before the first speech chunk in `SpeechStart::at_sample`.
    pub pre_roll_ms: u32,
    /// The inference engine (default tract).
    pub backend: Backend,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 250,
            hangover_ms: 500,
            pre_roll_ms: 300,
            backend: Backend::Tract,
        }
    }
}

/// A change between silence and speech.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech begins here (pre-roll included).
    SpeechStart {
        /// First sample of the utterance, counted from open/reset.
        at_sample: u64,
    },
    /// Speech ended here (exclusive end of the utterance).
    SpeechEnd {
        /// One past the last sample of the utterance.
        at_sample: u64,
    },
}

/// The streaming detector: model state, chunking and the event state machine.
#[derive(Debug)]
pub struct Vad {
    session: Session,
    cfg: VadConfig,
    state: Vec<f32>,
    context: [f32; CONTEXT],
    pending: Vec<f32>,
    /// Samples already run through the model.
    done: u64,
    last_prob: f32,
    candidate: Option<u64>,
    silence: Option<u64>,
    speaking: bool,
    last_end: u64,
}

fn ms_to_samples(ms: u32) -> u64 {
    u64::from(ms) * u64::from(SAMPLE_RATE) / 1000
}

impl Vad {
    /// Loads the Silero model at `model` on `cfg.backend` and checks `cfg`.
    pub fn open(model: &Path, cfg: VadConfig) -> Result<Vad, OnnxError> {
        let ok = |x: f32| x.is_finite() && (0.0..=1.0).contains(&x);
        if !ok(cfg.threshold) || !ok(cfg.neg_threshold) || cfg.neg_threshold > cfg.threshold {
            return Err(OnnxError::Input(format!(
                "VAD thresholds must satisfy 0 <= neg_threshold <= threshold <= 1, got {} and {}",
                cfg.neg_threshold, cfg.threshold
            )));
        }
        let session = Session::load_on(
            &cfg.backend,
            model,
            "Silero VAD 16 kHz (silero_vad_openvino_16k.onnx)",
            &[
                vec![Dim::Fixed(1), Dim::Fixed(CONTEXT + CHUNK)],
                vec![Dim::Fixed(2), Dim::Fixed(1), Dim::Fixed(128)],
            ],
        )?;
        let mut vad = Vad {
            session,
            cfg,
            state: vec![0.0; STATE_LEN],
            context: [0.0; CONTEXT],
            pending: Vec::with_capacity(CHUNK),
            done: 0,
            last_prob: 0.0,
            candidate: None,
            silence: None,
            speaking: false,
            last_end: 0,
        };
        // One silent call proves the outputs have the shapes we read, then start clean.
        vad.run_chunk(&[0.0; CHUNK])?;
        vad.reset();
        Ok(vad)
    }

    /// The configuration in use.
    pub fn config(&self) -> &VadConfig {
        &self.cfg
    }

    /// Feeds any number of samples (16 kHz mono, nominally in [-1, 1]); returns the events they complete, in
    /// order. Non-finite samples are refused (they would poison the recurrent state) and nothing is consumed.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<VadEvent>, OnnxError> {
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(OnnxError::Input(format!(
                "VAD sample {i} of this push is not finite"
            )));
        }
        let mut events = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHUNK {
                let chunk = std::mem::take(&mut self.pending);
                let p = self.run_chunk(&chunk);
                self.pending = chunk;
                self.pending.clear();
                let p = p?;
                self.step(p, &mut events);
            }
        }
        Ok(events)
    }

    /// Ends the stream: if speech is open, closes it at the last sample pushed. The model state is kept; call
    /// [`Vad::reset`] to start a new stream.
    pub fn finish(&mut self) -> Option<VadEvent> {
        let end = self
            .silence
            .unwrap_or(self.done + self.pending.len() as u64);
        let open = self.speaking;
        self.candidate = None;
        self.silence = None;
        self.speaking = false;
        open.then(|| {
            self.last_end = end;
            VadEvent::SpeechEnd { at_sample: end }
        })
    }

    /// Back to the state after [`Vad::open`]: zero model state and context, sample count 0, no speech.
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|x| *x = 0.0);
        self.context = [0.0; CONTEXT];
        self.pending.clear();
        self.done = 0;
        self.last_prob = 0.0;
        self.candidate = None;
        self.silence = None;
        self.speaking = false;
        self.last_end = 0;
    }

    /// Speech probability of the last chunk run (0 before the first).
    pub fn last_prob(&self) -> f32 {
        self.last_prob
    }

    /// Samples pushed since open/reset.
    pub fn samples_seen(&self) -> u64 {
        self.done + self.pending.len() as u64
    }

    fn run_chunk(&mut self, chunk: &[f32]) -> Result<f32, OnnxError> {
        let mut input = Vec::with_capacity(CONTEXT + CHUNK);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(chunk);
        let unexpected = |detail: String| OnnxError::UnexpectedModel {
            path: self.session.path().to_path_buf(),
            want: "Silero VAD 16 kHz (silero_vad_openvino_16k.onnx)",
            detail,
        };
        let outs = self.session.run(&[
            F32Tensor {
                shape: vec![1, CONTEXT + CHUNK],
                data: input,
            },
            F32Tensor {
                shape: vec![2, 1, 128],
                data: self.state.clone(),
            },
        ])?;
        let [prob, state] = outs.as_slice() else {
            return Err(unexpected(format!(
                "{} outputs, want 2 (output, stateN)",
                outs.len()
            )));
        };
        if prob.data.len() != 1 || state.shape != [2, 1, 128] {
            return Err(unexpected(format!(
                "outputs of shapes {:?} and {:?}, want [1, 1] and [2, 1, 128]",
                prob.shape, state.shape
            )));
        }
        self.state.copy_from_slice(&state.data);
        self.context.copy_from_slice(&chunk[CHUNK - CONTEXT..]);
        self.done += CHUNK as u64;
        let p = prob.data[0];
        self.last_prob = if p.is_finite() { p } else { 0.0 };
        Ok(self.last_prob)
    }

    /// Advances the state machine by the chunk that just ended at `self.done`.
    fn step(&mut self, p: f32, events: &mut Vec<VadEvent>) {
        let end = self.done;
        let begin = end - CHUNK as u64;
        if p >= self.cfg.threshold {
            self.silence = None;
            self.candidate.get_or_insert(begin);
        } else if p < self.cfg.neg_threshold && self.candidate.is_some() {
            self.silence.get_or_insert(begin);
        }
        let Some(start) = self.candidate else { return };
        if !self.speaking
            && self.silence.is_none()
            && end - start >= ms_to_samples(self.cfg.min_speech_ms)
        {
            self.speaking = true;
            let at = start
                .saturating_sub(ms_to_samples(self.cfg.pre_roll_ms))
                .max(self.last_end);
            events.push(VadEvent::SpeechStart { at_sample: at });
        }
        if let Some(quiet) = self.silence {
            if end - quiet >= ms_to_samples(self.cfg.hangover_ms) {
                if self.speaking {
                    self.last_end = quiet;
                    events.push(VadEvent::SpeechEnd { at_sample: quiet });
                }
                self.candidate = None;
                self.silence = None;
                self.speaking = false;
            }
        }
    }
}
