//! The engine thread: owns the model and one [`Engine`], admits queued jobs, and runs one decode batch per step
//! over every live choice of every request, so concurrent clients share each step's weight reads.
//!
//! - Admission: the prompts of the jobs that fit are prefilled together in one forward pass, each into a new
//!   sequence forked once per further choice (`n`): the choices share the prompt's KV blocks. At most `parallel`
//!   choices decode at once; a job that does not fit waits (first come, first served) while the others step. The
//!   queue in front is bounded: a full queue is a 503.
//! - Output: tokens become text here ([`TextStream`], whole UTF-8 characters), stop strings are matched on the
//!   text (the part that could still become a stop string is held back), and pieces go to the job's channel.
//! - A client that goes away (its receiver dropped) has its choices released at the next step: its blocks are
//!   freed. A finished choice's sequence (prompt and answer) goes to the [`PrefixCache`], so the next request
//!   that starts the same way (a shared system prompt, the next turn of a chat) prefills only what is new. When
//!   nothing is live the cache's blocks are compacted and the rest of the KV memory is given back.

use crate::api::ApiError;
use crate::metrics::Metrics;
use crate::prefix::PrefixCache;
use flint_model::multimodal::{Media, MediaPrompt, Towers};
use flint_model::{
    Engine, KvOptions, Model, ReqId, Sampler, SamplerConfig, SeqId, Text, TextStream,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// Prompt tokens prefilled in one pass at most (more wait for the next step).
const PREFILL_TOKENS: usize = 4096;

/// One request for the engine.
#[derive(Debug)]
pub struct Job {
    /// Token ids, with the processors' placeholders for `media`.
    pub prompt: Vec<u32>,
    /// Processed images and audio, encoded by the towers on the engine thread.
    pub media: Option<Media>,
    /// One sampler per choice.
    pub samplers: Vec<SamplerConfig>,
    /// Tokens per choice at most (the scheduler also stops at the model's context).
    pub max_new: usize,
    pub stop: Vec<String>,
    /// Generate past the end-of-turn tokens (benchmarks; llama-server and vLLM take `ignore_eos` too).
    pub ignore_eos: bool,
    /// The grammar every choice keeps to (each choice forks its own state).
    pub constraint: Option<flint_constrain::Constraint>,
    pub events: UnboundedSender<Event>,
}

/// What the engine tells a request, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The prompt is prefilled.
    Started { prompt_tokens: usize },
    /// New text of one choice.
    Text { choice: usize, text: String },
    /// A choice has ended, after `tokens` generated tokens.
    Done {
        choice: usize,
        finish: Finish,
        tokens: usize,
    },
    /// The request failed; no more events follow.
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-turn token or a stop string.
    Stop,
    /// `max_tokens` or the context.
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Choices decoded at once at most.
    pub parallel: usize,
    /// Requests waiting at most.
    pub queue: usize,
    pub kv: KvOptions,
    /// Tokens of finished prompts and answers kept for reuse (0: none).
    pub prefix_cache: usize,
}

/// The handle the HTTP side submits to.
#[derive(Debug, Clone)]
pub struct Scheduler {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
}

impl Scheduler {
    /// Starts the engine thread. `stop_ids` end a turn (the model's end-of-turn tokens).
    pub fn spawn(
        model: Arc<Model>,
        text: Arc<Text>,
        stop_ids: Vec<u32>,
        opts: Options,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Scheduler> {
        let (tx, rx) = sync_channel(opts.queue.max(1));
        let m = metrics.clone();
        std::thread::Builder::new()
            .name("flint-engine".into())
            .spawn(move || Core::new(&model, &text, &stop_ids, opts, &m).run(rx))?;
        Ok(Scheduler { tx, metrics })
    }

    /// Queues a job; a full queue is a 503 the client may retry.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        Metrics::add(&self.metrics.queued, 1);
        match self.tx.try_send(job) {
            Ok(()) => {
                Metrics::add(&self.metrics.requests, 1);
                Ok(())
            }
            Err(e) => {
                Metrics::sub(&self.metrics.queued, 1);
                Metrics::add(&self.metrics.rejected, 1);
                Err(match e {
                    TrySendError::Full(_) => ApiError::status(
                        503,
                        "server_busy",
                        "the request queue is full: retry later",
                    ),
                    TrySendError::Disconnected(_) => {
                        ApiError::status(500, "server_error", "the engine has stopped")
                    }
                })
            }
        }
    }
}

struct Choice<'t> {
    req: Option<ReqId>,
    stream: TextStream<'t>,
    /// Text decoded so far, and how much of it was sent.
    buf: String,
    sent: usize,
    tokens: usize,
}

struct Active<'t> {
    events: UnboundedSender<Event>,
    stop: Vec<String>,
    /// The tokens that end a turn for this job.
    ids: Vec<u32>,
    /// The prompt's row keys ([`MediaPrompt::keys`]), which the prefix cache compares.
    prompt: Vec<u64>,
    choices: Vec<Choice<'t>>,
}

/// The engine thread's state.
struct Core<'m, 't> {
    model: &'m Model,
    text: &'t Text,
    stop_ids: &'t [u32],
    opts: Options,
    metrics: &'t Metrics,
    eng: Engine<'m>,
    jobs: Vec<Option<Active<'t>>>,
    /// Which job and choice each live request is.
    owner: HashMap<ReqId, (usize, usize)>,
    cache: PrefixCache,
    /// Bound when the first request with media arrives.
    towers: Option<Towers>,
}

impl<'m, 't> Core<'m, 't> {
    fn new(
        model: &'m Model,
        text: &'t Text,
        stop_ids: &'t [u32],
        opts: Options,
        metrics: &'t Metrics,
    ) -> Self {
        Core {
            model,
            text,
            stop_ids,
            opts,
            metrics,
            eng: Engine::new(model, opts.kv),
            jobs: Vec::new(),
            owner: HashMap::new(),
            cache: PrefixCache::new(opts.prefix_cache),
            towers: None,
        }
    }

    fn run(mut self, rx: Receiver<Job>) {
        let mut pending: Option<Job> = None;
        let mut open = true;
        let mut busy = false;
        loop {
            if self.owner.is_empty() && busy {
                // Idle: keep the cached prefixes, give the rest of the KV memory back before waiting.
                self.eng.compact();
                busy = false;
                self.gauges();
            }
            // Admit what fits, and prefill it in one pass.
            let mut batch: Vec<Job> = Vec::new();
            let (mut choices, mut tokens) = (self.owner.len(), 0);
            loop {
                let job = match pending.take() {
                    Some(j) => j,
                    None if !open => break,
                    None if choices == 0 => match rx.recv() {
                        Ok(j) => j,
                        Err(_) => {
                            open = false;
                            break;
                        }
                    },
                    None => match rx.try_recv() {
                        Ok(j) => j,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            open = false;
                            break;
                        }
                    },
                };
                let fits = choices + job.samplers.len() <= self.opts.parallel
                    && tokens + job.prompt.len() <= PREFILL_TOKENS;
                if choices > 0 && !fits {
                    pending = Some(job);
                    break;
                }
                Metrics::sub(&self.metrics.queued, 1);
                if job.events.is_closed() {
                    Metrics::add(&self.metrics.cancelled, 1);
                    continue;
                }
                choices += job.samplers.len();
                tokens += job.prompt.len();
                batch.push(job);
            }
            if !batch.is_empty() {
                busy = true;
                self.admit(batch);
            }
            if !open && self.owner.is_empty() && pending.is_none() {
                return;
            }
            // Release the choices of clients that went away.
            for j in 0..self.jobs.len() {
                if self.jobs[j].as_ref().is_some_and(|a| a.events.is_closed()) {
                    Metrics::add(&self.metrics.cancelled, 1);
                    self.end_job(j);
                }
            }
            if !self.owner.is_empty() {
                self.step();
            }
            self.gauges();
        }
    }

    fn gauges(&self) {
        self.metrics.live.store(self.owner.len() as u64, Relaxed);
        self.metrics
            .kv_bytes
            .store(self.eng.kv().bytes() as u64, Relaxed);
        self.metrics
            .cached_tokens
            .store(self.cache.tokens() as u64, Relaxed);
    }

    /// One decode step for every live choice.
    fn step(&mut self) {
        let t = Instant::now();
        let news = match self.eng.step() {
            Ok(n) => n,
            Err(e) => {
                for j in 0..self.jobs.len() {
                    if let Some(a) = &self.jobs[j] {
                        let _ = a.events.send(Event::Failed(format!("decode failed: {e}")));
                    }
                    self.end_job(j);
                }
                return;
            }
        };
        let dt = t.elapsed();
        let m = self.metrics;
        Metrics::add(&m.decode_steps, 1);
        Metrics::add(&m.decode_us, dt.as_micros() as u64);
        Metrics::add(&m.generated_tokens, news.len() as u64);
        m.last_step_milli_tok_s.store(
            (news.len() as f64 / dt.as_secs_f64().max(1e-9) * 1000.0) as u64,
            Relaxed,
        );
        for (rid, id) in news {
            if let Some(&(j, c)) = self.owner.get(&rid) {
                self.on_token(j, c, id);
            }
        }
        // Choices the engine ended without a token (the context is full, or the grammar left no token).
        let ended: Vec<(usize, usize, Option<String>)> = self
            .owner
            .iter()
            .filter(|(r, _)| self.eng.finished(**r))
            .map(|(r, o)| (o.0, o.1, self.eng.error(*r).map(str::to_string)))
            .collect();
        for (j, c, err) in ended {
            match err {
                Some(e) => {
                    if let Some(a) = &self.jobs[j] {
                        let _ = a.events.send(Event::Failed(e));
                    }
                    self.end_job(j);
                }
                None => self.finish(j, c, Finish::Length),
            }
        }
    }

    /// The job's prompt with its media encoded by the towers.
    fn media_prompt(&mut self, job: &mut Job) -> Result<MediaPrompt, String> {
        let ids = std::mem::take(&mut job.prompt);
        let Some(media) = job.media.take() else {
            return Ok(MediaPrompt::text(self.model, ids));
        };
        if self.towers.is_none() {
            self.towers =
                Some(Towers::load(self.model).map_err(|e| format!("loading the towers: {e}"))?);
        }
        let towers = self.towers.as_ref().expect("bound above");
        MediaPrompt::encode(self.model, towers, self.model.exec(), ids, &media)
            .map(|(p, _)| p)
            .map_err(|e| format!("encoding the media: {e}"))
    }

    /// Prefills `batch` in one forward pass (each prompt past its longest cached prefix) and starts its choices.
    fn admit(&mut self, batch: Vec<Job>) {
        let limit = self.model.config.max_position_embeddings;
        let mut ok: Vec<(Job, MediaPrompt)> = Vec::with_capacity(batch.len());
        for mut job in batch {
            if job.prompt.is_empty() || job.prompt.len() >= limit {
                let _ = job.events.send(Event::Failed(format!(
                    "a prompt of {} tokens does not fit the model's context of {limit}",
                    job.prompt.len()
                )));
                continue;
            }
            match self.media_prompt(&mut job) {
                Ok(p) => ok.push((job, p)),
                Err(e) => {
                    let _ = job.events.send(Event::Failed(e));
                }
            }
        }
        let block = self.eng.kv().block();
        let keys: Vec<Vec<u64>> = ok.iter().map(|(_, p)| p.keys()).collect();
        let starts: Vec<(SeqId, usize)> = keys
            .iter()
            .map(|k| {
                self.cache
                    .lookup(&mut self.eng, k, block)
                    .unwrap_or_else(|| (self.eng.new_seq(), 0))
            })
            .collect();
        let items: Vec<(SeqId, &MediaPrompt, usize)> = ok
            .iter()
            .zip(&starts)
            .map(|((_, p), &(s, from))| (s, p, from))
            .collect();
        let logits = match self.eng.extend_many(&items) {
            Ok(l) => l,
            Err(e) => {
                for ((job, _), (s, _)) in ok.into_iter().zip(starts) {
                    self.eng.free(s);
                    let _ = job
                        .events
                        .send(Event::Failed(format!("prefill failed: {e}")));
                }
                return;
            }
        };
        for ((((job, p), keys), (seq, from)), logits) in
            ok.into_iter().zip(keys).zip(starts).zip(logits)
        {
            Metrics::add(&self.metrics.prompt_tokens, (p.len() - from) as u64);
            Metrics::add(&self.metrics.cached_prompt_tokens, from as u64);
            self.start(job, keys, seq, &logits, limit);
        }
    }

    /// Starts the choices of a prefilled job.
    fn start(&mut self, job: Job, keys: Vec<u64>, seq: SeqId, logits: &[f32], limit: usize) {
        let _ = job.events.send(Event::Started {
            prompt_tokens: keys.len(),
        });
        let max_new = job.max_new.min(limit - keys.len());
        let j = match self.jobs.iter().position(Option::is_none) {
            Some(j) => j,
            None => {
                self.jobs.push(None);
                self.jobs.len() - 1
            }
        };
        let n = job.samplers.len();
        let mut seqs = vec![seq];
        for _ in 1..n {
            match self.eng.fork(seq) {
                Ok(s) => seqs.push(s),
                Err(e) => {
                    let _ = job.events.send(Event::Failed(format!("fork failed: {e}")));
                    seqs.into_iter().for_each(|s| self.eng.free(s));
                    return;
                }
            }
        }
        let ids = if job.ignore_eos {
            Vec::new()
        } else {
            self.stop_ids.to_vec()
        };
        let mut active = Active {
            events: job.events,
            stop: job.stop,
            ids: ids.clone(),
            prompt: keys,
            choices: Vec::with_capacity(n),
        };
        let mut firsts = Vec::with_capacity(n);
        for (c, (s, cfg)) in seqs.into_iter().zip(job.samplers).enumerate() {
            let mut sampler = Sampler::new(cfg);
            if let Some(k) = &job.constraint {
                sampler = sampler.with_constraint(k.clone());
            }
            let r = self.eng.start(s, logits, sampler, ids.clone(), max_new);
            self.owner.insert(r, (j, c));
            active.choices.push(Choice {
                req: Some(r),
                stream: TextStream::new(self.text),
                buf: String::new(),
                sent: 0,
                tokens: 0,
            });
            firsts.push((c, self.eng.output(r).first().copied()));
        }
        self.jobs[j] = Some(active);
        Metrics::add(&self.metrics.generated_tokens, firsts.len() as u64);
        for (c, id) in firsts {
            match id {
                Some(id) => self.on_token(j, c, id),
                None => self.finish(j, c, Finish::Length),
            }
        }
    }

    /// One new token of choice `c` of job `j`.
    fn on_token(&mut self, j: usize, c: usize, id: u32) {
        let Some(a) = self.jobs[j].as_mut() else {
            return;
        };
        let ch = &mut a.choices[c];
        if a.ids.contains(&id) {
            return self.finish(j, c, Finish::Stop);
        }
        ch.tokens += 1;
        match ch.stream.push(id) {
            Ok(p) => ch.buf.push_str(&p),
            Err(e) => {
                let _ = a.events.send(Event::Failed(format!("detokenizing: {e}")));
                return self.end_job(j);
            }
        }
        // A stop string ends the choice; its text is not sent.
        let from = ch.sent.saturating_sub(crate::api::MAX_STOP_LEN);
        let from = (0..=from)
            .rev()
            .find(|&i| ch.buf.is_char_boundary(i))
            .unwrap_or(0);
        if let Some(k) = a
            .stop
            .iter()
            .filter_map(|s| ch.buf[from..].find(s.as_str()).map(|k| from + k))
            .min()
        {
            ch.buf.truncate(k);
            return self.finish(j, c, Finish::Stop);
        }
        let safe = ch.buf.len() - flint_answer::held_back(&ch.buf, &a.stop);
        if safe > ch.sent {
            let piece = ch.buf[ch.sent..safe].to_string();
            ch.sent = safe;
            let _ = a.events.send(Event::Text {
                choice: c,
                text: piece,
            });
        }
        if ch.req.is_some_and(|r| self.eng.finished(r)) {
            self.finish(j, c, Finish::Length);
        }
    }

    /// Sends the rest of choice `c`'s text and its end; its sequence goes to the prefix cache.
    fn finish(&mut self, j: usize, c: usize, how: Finish) {
        let Some(a) = self.jobs[j].as_mut() else {
            return;
        };
        let ch = &mut a.choices[c];
        let Some(r) = ch.req else {
            return;
        };
        if ch.buf.len() > ch.sent {
            let piece = ch.buf[ch.sent..].to_string();
            ch.sent = ch.buf.len();
            let _ = a.events.send(Event::Text {
                choice: c,
                text: piece,
            });
        }
        let _ = a.events.send(Event::Done {
            choice: c,
            finish: how,
            tokens: ch.tokens,
        });
        // What the sequence holds: the prompt, then every generated token but the last (never fed back).
        let mut tokens = a.prompt.clone();
        tokens.extend(self.eng.output(r).iter().map(|&id| id as u64));
        a.choices[c].req = None;
        self.owner.remove(&r);
        if let Some(seq) = self.eng.detach(r) {
            match self.eng.len(seq) {
                Ok(len) if len <= tokens.len() => {
                    tokens.truncate(len);
                    self.cache.insert(&mut self.eng, seq, tokens);
                }
                _ => self.eng.free(seq),
            }
        }
        self.drop_if_done(j);
    }

    /// Frees choice `c`'s sequence.
    fn release(&mut self, j: usize, c: usize) {
        let Some(a) = self.jobs[j].as_mut() else {
            return;
        };
        if let Some(r) = a.choices[c].req.take() {
            self.owner.remove(&r);
            self.eng.release(r);
        }
        self.drop_if_done(j);
    }

    /// A job ends with its last choice.
    fn drop_if_done(&mut self, j: usize) {
        if self.jobs[j]
            .as_ref()
            .is_some_and(|a| a.choices.iter().all(|c| c.req.is_none()))
        {
            self.jobs[j] = None;
        }
    }

    fn end_job(&mut self, j: usize) {
        let n = self.jobs[j].as_ref().map_or(0, |a| a.choices.len());
        for c in 0..n {
            self.release(j, c);
        }
    }
}
