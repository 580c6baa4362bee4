//! The generation loop: prefill the prompt in one batch, then decode one token at a time with the KV cache,
//! handing each token to a callback as soon as it is sampled.

use crate::sampler::Sampler;
use crate::text::Text;
use crate::{KvOptions, Session};
use crate::{Model, ModelError};
use std::time::Duration;

/// What a generation did and how long it took.
#[derive(Debug, Clone, Default)]
pub struct GenStats {
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    pub generated: usize,
    pub decode_time: Duration,
}

impl GenStats {
    pub fn prompt_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_time.as_secs_f64().max(1e-9)
    }
    /// Decode speed over the tokens after the first (the first comes from the prefill's logits).
    pub fn decode_tok_s(&self) -> f64 {
        self.generated.saturating_sub(1) as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// Generates up to `max_new` tokens after `prompt` in a fresh [`Session`] (default KV options), stopping early at
/// any of `stop`. `on_token` sees each token as it is produced and may return `false` to stop.
pub fn generate(
    model: &Model,
    prompt: &[u32],
    max_new: usize,
    sampler: &mut Sampler,
    stop: &[u32],
    on_token: impl FnMut(u32) -> bool,
) -> Result<(Vec<u32>, GenStats), ModelError> {
    let mut s = Session::new(model, KvOptions::default());
    let (out, stats, _) = s.generate(prompt, max_new, sampler, stop, on_token)?;
    Ok((out, stats))
}

/// The tokens that end generation: the config's eos, and with `chat` the end-of-turn tokens of the usual chat
/// formats (which may differ from the config's eos).
pub fn stop_ids(model: &Model, text: &Text, chat: bool) -> Vec<u32> {
    let mut stop = model.config.eos_token_ids.clone();
    if chat {
        stop.extend(
            ["<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|eot|>"]
                .iter()
                .filter_map(|t| text.token_id(t)),
        );
    }
    stop
}

/// Turns a stream of token ids into text pieces, holding back incomplete UTF-8 so that multi-token characters come
/// out whole.
#[derive(Debug)]
pub struct TextStream<'a> {
    text: &'a Text,
    ids: Vec<u32>,
    emitted: usize,
}

impl<'a> TextStream<'a> {
    pub fn new(text: &'a Text) -> Self {
        TextStream {
            text,
            ids: Vec::new(),
            emitted: 0,
        }
    }

    /// The new text this token completes (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String, ModelError> {
        self.ids.push(id);
        let s = self.text.decode(&self.ids, true)?;
        if s.ends_with('\u{FFFD}') || s.len() < self.emitted || !s.is_char_boundary(self.emitted) {
            return Ok(String::new());
        }
        let piece = s[self.emitted..].to_string();
        self.emitted = s.len();
        Ok(piece)
    }
}
