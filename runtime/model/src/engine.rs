//! Above the model: sessions that keep their KV between turns, and a scheduler that decodes every live sequence
//! in one batch per step.
//!
//! - [`Session`]: one conversation. Each turn's prompt (the whole re-rendered chat) is compared with what the
//!   cache holds; the longest common prefix is kept and only the rest is prefilled (templates may re-render
//!   history, e.g. drop old reasoning, so the prefix is found, not assumed).
//! - [`Engine`]: many sequences in one paged [`KvStore`]. Prompts are prefilled once and may be forked (shared
//!   blocks, no copy); [`Engine::step`] then runs one forward pass with the last token of every live request, so
//!   each weight — each routed expert — is read once per step for all of them.

use crate::batch::{Batch, Logits};
use crate::kv::{KvOptions, KvStore, SeqId};
use crate::multimodal::{Deepstack, MediaPrompt};
use crate::sampler::Sampler;
use crate::{GenStats, Model, ModelError};
use std::time::Instant;

/// One conversation's cache.
#[derive(Debug)]
pub struct Session<'m> {
    model: &'m Model,
    kv: KvStore,
    seq: SeqId,
    /// The tokens the cache holds, in order (tower rows by their placeholder id).
    tokens: Vec<u32>,
    /// One key per cached row ([`MediaPrompt::keys`]): what the longest common prefix compares.
    keys: Vec<u64>,
    /// Position minus slot of the rows after the last prompt ([`MediaPrompt::position_shift`]).
    shift: i64,
}

/// The text position of the row at `slot` of a sequence whose generated rows are shifted by `shift`.
fn shifted(slot: usize, shift: i64) -> usize {
    (slot as i64 + shift).max(0) as usize
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, opts: KvOptions) -> Session<'m> {
        let mut kv = model.new_kv(opts);
        let seq = kv.new_seq();
        Session {
            model,
            kv,
            seq,
            tokens: Vec::new(),
            keys: Vec::new(),
            shift: 0,
        }
    }

    /// The tokens the cache holds.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Makes the cache hold exactly `prompt`, reusing the longest common prefix with what it holds and
    /// prefilling the rest (at least the last token, whose logits are returned). Returns the logits and how many
    /// tokens were reused.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, usize), ModelError> {
        self.prefill_prompt(&MediaPrompt::text(self.model, prompt.to_vec()))
    }

    /// [`Session::prefill`] for a prompt with tower rows: a cached image or clip is reused only if its rows are
    /// the same.
    pub fn prefill_prompt(
        &mut self,
        prompt: &MediaPrompt,
    ) -> Result<(Vec<f32>, usize), ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::Invalid("empty prompt".into()));
        }
        let keys = prompt.keys();
        let common = self
            .keys
            .iter()
            .zip(&keys)
            .take_while(|(a, b)| a == b)
            .count()
            .min(keys.len() - 1);
        let keep = if self.kv.truncate(self.seq, common)? {
            common
        } else {
            // A sliding layer already evicted history the rest of the prompt needs: start again.
            self.kv.free(self.seq);
            self.seq = self.kv.new_seq();
            0
        };
        self.tokens.truncate(keep);
        self.keys.truncate(keep);
        let mut b = Batch::new();
        prompt.push(&mut b, self.seq, keep, Logits::Last);
        let mut deep = prompt.deepstack();
        let hook = Deepstack::as_hook(&mut deep);
        let logits = self.model.forward_batch(&b, &mut self.kv, hook, None)?;
        self.shift = prompt.position_shift();
        self.tokens.extend_from_slice(&prompt.ids[keep..]);
        self.keys.extend_from_slice(&keys[keep..]);
        Ok((logits, keep))
    }

    /// Runs one turn: prefills `prompt` (reusing the cached prefix), then generates up to `max_new` tokens,
    /// stopping at any of `stop` or when `on_token` returns `false`. The generated tokens stay in the cache.
    /// Returns them, the statistics, and how many prompt tokens were reused.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_new: usize,
        sampler: &mut Sampler,
        stop: &[u32],
        on_token: impl FnMut(u32) -> bool,
    ) -> Result<(Vec<u32>, GenStats, usize), ModelError> {
        let p = MediaPrompt::text(self.model, prompt.to_vec());
        self.generate_prompt(&p, max_new, sampler, stop, on_token)
    }

    /// [`Session::generate`] for a prompt with tower rows.
    pub fn generate_prompt(
        &mut self,
        prompt: &MediaPrompt,
        max_new: usize,
        sampler: &mut Sampler,
        stop: &[u32],
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<(Vec<u32>, GenStats, usize), ModelError> {
        self.generate_with(prompt, max_new, sampler, stop, |id| {
            if on_token(id) {
                Step::Continue
            } else {
                Step::Stop
            }
        })
    }

    /// [`Session::generate_prompt`] where the caller may also feed tokens of its own after a sampled one
    /// ([`Step::Force`]: a thinking budget closing the reasoning section). Forced tokens enter the cache but not
    /// the returned tokens, and do not count towards `max_new`.
    pub fn generate_with(
        &mut self,
        prompt: &MediaPrompt,
        max_new: usize,
        sampler: &mut Sampler,
        stop: &[u32],
        mut on_token: impl FnMut(u32) -> Step,
    ) -> Result<(Vec<u32>, GenStats, usize), ModelError> {
        let t0 = Instant::now();
        let (mut logits, reused) = self.prefill_prompt(prompt)?;
        let mut stats = GenStats {
            prompt_tokens: prompt.len() - reused,
            prompt_time: t0.elapsed(),
            ..Default::default()
        };
        let t1 = Instant::now();
        let limit = self.model.config.max_position_embeddings;
        let mut out = Vec::new();
        while out.len() < max_new {
            let id = sampler.sample(&logits)?;
            out.push(id);
            stats.generated += 1;
            if stop.contains(&id) {
                break;
            }
            let mut feed = vec![id];
            match on_token(id) {
                Step::Stop => break,
                Step::Continue => {}
                Step::Force(ids) => {
                    sampler.observe(&ids)?;
                    feed.extend(ids)
                }
            }
            if out.len() == max_new || self.tokens.len() + feed.len() > limit {
                break;
            }
            let mut b = Batch::new();
            let pos = shifted(self.tokens.len(), self.shift);
            b.push_text(self.seq, pos, &feed, Logits::Last);
            logits = self.model.forward_batch(&b, &mut self.kv, None, None)?;
            self.tokens.extend_from_slice(&feed);
            self.keys.extend(feed.iter().map(|&t| t as u64));
        }
        stats.decode_time = t1.elapsed();
        Ok((out, stats, reused))
    }
}

/// What the caller of [`Session::generate_with`] wants after each sampled token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    Stop,
    /// Feed these tokens after the sampled one, then sample again.
    Force(Vec<u32>),
}

/// A request being decoded by an [`Engine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReqId(pub usize);

#[derive(Debug)]
struct Req {
    seq: SeqId,
    sampler: Sampler,
    stop: Vec<u32>,
    max_new: usize,
    out: Vec<u32>,
    done: bool,
    /// Why the request ended early (its constraint left no token).
    error: Option<String>,
}

/// Many sequences in one cache, decoded together (see the module doc). A request's slot is reused once it is
/// [released](Engine::release), so a long-running server's engine stays as large as its live requests.
#[derive(Debug)]
pub struct Engine<'m> {
    model: &'m Model,
    kv: KvStore,
    reqs: Vec<Option<Req>>,
    /// Sequences whose generated rows sit at `slot + shift` ([`MediaPrompt::position_shift`]; absent: 0).
    shifts: std::collections::HashMap<SeqId, i64>,
}

impl<'m> Engine<'m> {
    pub fn new(model: &'m Model, opts: KvOptions) -> Engine<'m> {
        Engine {
            model,
            kv: model.new_kv(opts),
            reqs: Vec::new(),
            shifts: Default::default(),
        }
    }

    /// The cache (block counts, bytes).
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// Prefills `prompt` into a new sequence; returns it and the logits of its last token.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(SeqId, Vec<f32>), ModelError> {
        self.prefill_prompt(&MediaPrompt::text(self.model, prompt.to_vec()))
    }

    /// [`Engine::prefill`] for a prompt with tower rows.
    pub fn prefill_prompt(
        &mut self,
        prompt: &MediaPrompt,
    ) -> Result<(SeqId, Vec<f32>), ModelError> {
        let seq = self.kv.new_seq();
        let mut b = Batch::new();
        prompt.push(&mut b, seq, 0, Logits::Last);
        let mut deep = prompt.deepstack();
        match self
            .model
            .forward_batch(&b, &mut self.kv, Deepstack::as_hook(&mut deep), None)
        {
            Ok(l) => {
                self.set_shift(seq, prompt.position_shift());
                Ok((seq, l))
            }
            Err(e) => {
                self.kv.free(seq);
                Err(e)
            }
        }
    }

    /// Runs rows `from ..` of each prompt into its sequence, which must hold exactly its first `from` rows, all in
    /// one forward pass; returns the logits of each prompt's last row, in order. Sequences must be distinct; on
    /// an error their contents are unspecified (free them).
    pub fn extend_many(
        &mut self,
        items: &[(SeqId, &MediaPrompt, usize)],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut b = Batch::new();
        for &(s, p, from) in items {
            if from >= p.len() || self.kv.len(s)? != from {
                return Err(ModelError::Invalid(format!(
                    "extending a sequence of {} rows from row {from} of a {}-row prompt",
                    self.kv.len(s)?,
                    p.len()
                )));
            }
            p.push(&mut b, s, from, Logits::Last);
        }
        let mut deep = Deepstack::of(items.iter().map(|i| i.1));
        let l = self
            .model
            .forward_batch(&b, &mut self.kv, Deepstack::as_hook(&mut deep), None)?;
        for &(s, p, _) in items {
            self.set_shift(s, p.position_shift());
        }
        let v = self.model.config.vocab_size;
        Ok(l.chunks_exact(v).map(<[f32]>::to_vec).collect())
    }

    fn set_shift(&mut self, seq: SeqId, shift: i64) {
        if shift == 0 {
            self.shifts.remove(&seq);
        } else {
            self.shifts.insert(seq, shift);
        }
    }

    /// A new, empty sequence.
    pub fn new_seq(&mut self) -> SeqId {
        self.kv.new_seq()
    }

    /// Tokens a sequence holds.
    pub fn len(&self, seq: SeqId) -> Result<usize, ModelError> {
        self.kv.len(seq)
    }

    /// Forgets a sequence's slots from `len` on; `false` (nothing changed) when a sliding layer already dropped
    /// history a query at `len` would need ([`KvStore::truncate`]).
    pub fn truncate(&mut self, seq: SeqId, len: usize) -> Result<bool, ModelError> {
        self.kv.truncate(seq, len)
    }

    /// Gives the memory of free cache blocks back ([`KvStore::compact`]).
    pub fn compact(&mut self) {
        self.kv.compact();
    }

    /// A new sequence sharing all of `seq`'s cache.
    pub fn fork(&mut self, seq: SeqId) -> Result<SeqId, ModelError> {
        let f = self.kv.fork(seq)?;
        let shift = self.shifts.get(&seq).copied().unwrap_or(0);
        self.set_shift(f, shift);
        Ok(f)
    }

    /// Drops a sequence that no request uses.
    pub fn free(&mut self, seq: SeqId) {
        self.kv.free(seq);
        self.shifts.remove(&seq);
    }

    /// Starts decoding `seq` (which the engine then owns): samples its first token from `logits` (its last
    /// prompt token's), and generates until a token of `stop`, `max_new` tokens or the context limit.
    pub fn start(
        &mut self,
        seq: SeqId,
        logits: &[f32],
        mut sampler: Sampler,
        stop: Vec<u32>,
        max_new: usize,
    ) -> ReqId {
        let mut r = Req {
            seq,
            out: Vec::new(),
            done: max_new == 0,
            sampler: Sampler::new(Default::default()),
            stop,
            max_new,
            error: None,
        };
        if !r.done {
            match sampler.sample(logits) {
                Ok(id) => {
                    r.out.push(id);
                    r.done = r.stop.contains(&id) || r.max_new == 1;
                }
                Err(e) => {
                    r.done = true;
                    r.error = Some(e.to_string());
                }
            }
        }
        r.sampler = sampler;
        match self.reqs.iter().position(Option::is_none) {
            Some(i) => {
                self.reqs[i] = Some(r);
                ReqId(i)
            }
            None => {
                self.reqs.push(Some(r));
                ReqId(self.reqs.len() - 1)
            }
        }
    }

    /// Whether every request has finished.
    pub fn is_done(&self) -> bool {
        self.reqs.iter().flatten().all(|r| r.done)
    }

    /// Live requests.
    pub fn live(&self) -> usize {
        self.reqs.iter().flatten().filter(|r| !r.done).count()
    }

    /// Whether a request has finished (a released or unknown one has).
    pub fn finished(&self, id: ReqId) -> bool {
        self.req(id).is_none_or(|r| r.done)
    }

    /// Why a finished request ended early, if it did (its constraint left no token to draw).
    pub fn error(&self, id: ReqId) -> Option<&str> {
        self.req(id).and_then(|r| r.error.as_deref())
    }

    /// The request's sampler (its constraint's state, its confidence).
    pub fn sampler(&self, id: ReqId) -> Option<&Sampler> {
        self.req(id).map(|r| &r.sampler)
    }

    /// The tokens a request has generated so far.
    pub fn output(&self, id: ReqId) -> &[u32] {
        self.req(id).map_or(&[], |r| &r.out)
    }

    /// Ends a request, finished or not, and frees its sequence's blocks (shared ones stay while another
    /// sequence holds them); its id may then name a new request.
    pub fn release(&mut self, id: ReqId) {
        if let Some(r) = self.reqs.get_mut(id.0).and_then(Option::take) {
            self.free(r.seq);
        }
    }

    /// Ends a request but keeps its sequence, which the caller then owns (to cache a prefix, fork, or free).
    pub fn detach(&mut self, id: ReqId) -> Option<SeqId> {
        self.reqs
            .get_mut(id.0)
            .and_then(Option::take)
            .map(|r| r.seq)
    }

    fn req(&self, id: ReqId) -> Option<&Req> {
        self.reqs.get(id.0).and_then(Option::as_ref)
    }

    /// One decode step for every live request, in one batch: feeds each its last token and samples the next.
    /// Returns the new tokens.
    pub fn step(&mut self) -> Result<Vec<(ReqId, u32)>, ModelError> {
        let limit = self.model.config.max_position_embeddings;
        let mut b = Batch::new();
        let mut live = Vec::new();
        for (i, r) in self.reqs.iter_mut().enumerate() {
            let Some(r) = r.as_mut().filter(|r| !r.done) else {
                continue;
            };
            let len = self.kv.len(r.seq)?;
            if len >= limit {
                r.done = true;
                continue;
            }
            let last = *r.out.last().expect("a live request has sampled a token");
            let shift = self.shifts.get(&r.seq).copied().unwrap_or(0);
            b.push_text(r.seq, shifted(len, shift), &[last], Logits::Last);
            live.push(i);
        }
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let logits = self.model.forward_batch(&b, &mut self.kv, None, None)?;
        let v = self.model.config.vocab_size;
        let mut news = Vec::with_capacity(live.len());
        for (j, &i) in live.iter().enumerate() {
            let r = self.reqs[i].as_mut().expect("live above");
            match r.sampler.sample(&logits[j * v..(j + 1) * v]) {
                Ok(id) => {
                    r.out.push(id);
                    r.done = r.stop.contains(&id) || r.out.len() >= r.max_new;
                    news.push((ReqId(i), id));
                }
                Err(e) => {
                    r.done = true;
                    r.error = Some(e.to_string());
                }
            }
        }
        Ok(news)
    }

    /// Steps until every request has finished.
    pub fn run(&mut self) -> Result<(), ModelError> {
        while !self.is_done() {
            self.step()?;
        }
        Ok(())
    }
}
