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
//!   freed. When nothing is live the engine's cache is dropped, so an idle server holds no KV memory.

use crate::api::ApiError;
use crate::metrics::Metrics;
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
    pub prompt: Vec<u32>,
    /// One sampler per choice.
    pub samplers: Vec<SamplerConfig>,
    /// Tokens per choice at most (the scheduler also stops at the model's context).
    pub max_new: usize,
    pub stop: Vec<String>,
    /// Generate past the end-of-turn tokens (benchmarks; llama-server and vLLM take `ignore_eos` too).
    pub ignore_eos: bool,
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
        model: Model,
        text: Arc<Text>,
        stop_ids: Vec<u32>,
        opts: Options,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Scheduler> {
        let (tx, rx) = sync_channel(opts.queue.max(1));
        let m = metrics.clone();
        std::thread::Builder::new()
            .name("flint-engine".into())
            .spawn(move || run(&model, &text, &stop_ids, rx, opts, &m))?;
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
    choices: Vec<Choice<'t>>,
}

fn run(
    model: &Model,
    text: &Text,
    stop_ids: &[u32],
    rx: Receiver<Job>,
    opts: Options,
    metrics: &Metrics,
) {
    let mut eng = Engine::new(model, opts.kv);
    let mut jobs: Vec<Option<Active<'_>>> = Vec::new();
    let mut owner: HashMap<ReqId, (usize, usize)> = HashMap::new();
    let mut pending: Option<Job> = None;
    let mut open = true;
    let mut used = false;
    loop {
        if owner.is_empty() && used {
            // Idle: give the cache's memory back before waiting.
            eng = Engine::new(model, opts.kv);
            jobs.clear();
            used = false;
            metrics.kv_bytes.store(0, Relaxed);
            metrics.live.store(0, Relaxed);
        }
        // Admit what fits, and prefill it in one pass.
        let mut batch: Vec<Job> = Vec::new();
        let (mut choices, mut tokens) = (owner.len(), 0);
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
            let fits = choices + job.samplers.len() <= opts.parallel
                && tokens + job.prompt.len() <= PREFILL_TOKENS;
            if choices > 0 && !fits {
                pending = Some(job);
                break;
            }
            Metrics::sub(&metrics.queued, 1);
            if job.events.is_closed() {
                Metrics::add(&metrics.cancelled, 1);
                continue;
            }
            choices += job.samplers.len();
            tokens += job.prompt.len();
            batch.push(job);
        }
        if !batch.is_empty() {
            used = true;
            admit(
                model, text, stop_ids, &mut eng, batch, &mut jobs, &mut owner, metrics,
            );
        }
        if !open && owner.is_empty() && pending.is_none() {
            return;
        }
        // Release the choices of clients that went away.
        for j in 0..jobs.len() {
            if jobs[j].as_ref().is_some_and(|a| a.events.is_closed()) {
                Metrics::add(&metrics.cancelled, 1);
                end_job(&mut eng, &mut jobs, &mut owner, j);
            }
        }
        if owner.is_empty() {
            continue;
        }
        let t = Instant::now();
        let news = match eng.step() {
            Ok(n) => n,
            Err(e) => {
                for j in 0..jobs.len() {
                    if let Some(a) = &jobs[j] {
                        let _ = a.events.send(Event::Failed(format!("decode failed: {e}")));
                    }
                    end_job(&mut eng, &mut jobs, &mut owner, j);
                }
                continue;
            }
        };
        let dt = t.elapsed();
        Metrics::add(&metrics.decode_steps, 1);
        Metrics::add(&metrics.decode_us, dt.as_micros() as u64);
        Metrics::add(&metrics.generated_tokens, news.len() as u64);
        metrics.last_step_milli_tok_s.store(
            (news.len() as f64 / dt.as_secs_f64().max(1e-9) * 1000.0) as u64,
            Relaxed,
        );
        for (rid, id) in news {
            if let Some(&(j, c)) = owner.get(&rid) {
                on_token(&mut eng, &mut jobs, &mut owner, j, c, id);
            }
        }
        // Choices the engine ended without a token (the context is full).
        let ended: Vec<(ReqId, (usize, usize))> = owner
            .iter()
            .filter(|(r, _)| eng.finished(**r))
            .map(|(r, o)| (*r, *o))
            .collect();
        for (_, (j, c)) in ended {
            finish(&mut eng, &mut jobs, &mut owner, j, c, Finish::Length);
        }
        metrics.live.store(owner.len() as u64, Relaxed);
        metrics.kv_bytes.store(eng.kv().bytes() as u64, Relaxed);
    }
}

/// Prefills `batch` in one forward pass and starts its choices (forked from each prompt's sequence).
#[allow(clippy::too_many_arguments)]
fn admit<'t>(
    model: &Model,
    text: &'t Text,
    stop_ids: &[u32],
    eng: &mut Engine<'_>,
    batch: Vec<Job>,
    jobs: &mut Vec<Option<Active<'t>>>,
    owner: &mut HashMap<ReqId, (usize, usize)>,
    metrics: &Metrics,
) {
    let limit = model.config.max_position_embeddings;
    let (ok, bad): (Vec<Job>, Vec<Job>) = batch
        .into_iter()
        .partition(|j| !j.prompt.is_empty() && j.prompt.len() < limit);
    for job in bad {
        let _ = job.events.send(Event::Failed(format!(
            "a prompt of {} tokens does not fit the model's context of {limit}",
            job.prompt.len()
        )));
    }
    let prompts: Vec<&[u32]> = ok.iter().map(|j| j.prompt.as_slice()).collect();
    let prefilled = match eng.prefill_many(&prompts) {
        Ok(p) => p,
        Err(e) => {
            for job in ok {
                let _ = job
                    .events
                    .send(Event::Failed(format!("prefill failed: {e}")));
            }
            return;
        }
    };
    for (job, (seq, logits)) in ok.into_iter().zip(prefilled) {
        start(
            eng, text, stop_ids, job, seq, &logits, limit, jobs, owner, metrics,
        );
    }
}

/// Starts the choices of a prefilled job.
#[allow(clippy::too_many_arguments)]
fn start<'t>(
    eng: &mut Engine<'_>,
    text: &'t Text,
    stop_ids: &[u32],
    job: Job,
    seq: SeqId,
    logits: &[f32],
    limit: usize,
    jobs: &mut Vec<Option<Active<'t>>>,
    owner: &mut HashMap<ReqId, (usize, usize)>,
    metrics: &Metrics,
) {
    Metrics::add(&metrics.prompt_tokens, job.prompt.len() as u64);
    let _ = job.events.send(Event::Started {
        prompt_tokens: job.prompt.len(),
    });
    let max_new = job.max_new.min(limit - job.prompt.len());
    let j = match jobs.iter().position(Option::is_none) {
        Some(j) => j,
        None => {
            jobs.push(None);
            jobs.len() - 1
        }
    };
    let n = job.samplers.len();
    let mut seqs = vec![seq];
    for _ in 1..n {
        match eng.fork(seq) {
            Ok(s) => seqs.push(s),
            Err(e) => {
                let _ = job.events.send(Event::Failed(format!("fork failed: {e}")));
                seqs.into_iter().for_each(|s| eng.free(s));
                return;
            }
        }
    }
    let ids = if job.ignore_eos {
        Vec::new()
    } else {
        stop_ids.to_vec()
    };
    let mut active = Active {
        events: job.events,
        stop: job.stop,
        ids: ids.clone(),
        choices: Vec::with_capacity(n),
    };
    let mut firsts = Vec::with_capacity(n);
    for (c, (s, cfg)) in seqs.into_iter().zip(job.samplers).enumerate() {
        let r = eng.start(s, logits, Sampler::new(cfg), ids.clone(), max_new);
        owner.insert(r, (j, c));
        active.choices.push(Choice {
            req: Some(r),
            stream: TextStream::new(text),
            buf: String::new(),
            sent: 0,
            tokens: 0,
        });
        firsts.push((c, eng.output(r).first().copied()));
    }
    jobs[j] = Some(active);
    Metrics::add(&metrics.generated_tokens, firsts.len() as u64);
    for (c, id) in firsts {
        match id {
            Some(id) => on_token(eng, jobs, owner, j, c, id),
            None => finish(eng, jobs, owner, j, c, Finish::Length),
        }
    }
}

/// One new token of choice `c` of job `j`.
fn on_token(
    eng: &mut Engine<'_>,
    jobs: &mut [Option<Active<'_>>],
    owner: &mut HashMap<ReqId, (usize, usize)>,
    j: usize,
    c: usize,
    id: u32,
) {
    let Some(a) = jobs[j].as_mut() else { return };
    let ch = &mut a.choices[c];
    if a.ids.contains(&id) {
        return finish(eng, jobs, owner, j, c, Finish::Stop);
    }
    ch.tokens += 1;
    match ch.stream.push(id) {
        Ok(p) => ch.buf.push_str(&p),
        Err(e) => {
            let _ = a.events.send(Event::Failed(format!("detokenizing: {e}")));
            let n = a.choices.len();
            return (0..n).for_each(|c| release(eng, jobs, owner, j, c));
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
        return finish(eng, jobs, owner, j, c, Finish::Stop);
    }
    let safe = ch.buf.len() - held_back(&ch.buf, &a.stop);
    if safe > ch.sent {
        let piece = ch.buf[ch.sent..safe].to_string();
        ch.sent = safe;
        let _ = a.events.send(Event::Text {
            choice: c,
            text: piece,
        });
    }
    if ch.req.is_some_and(|r| eng.finished(r)) {
        finish(eng, jobs, owner, j, c, Finish::Length);
    }
}

/// Bytes at the end of `buf` that begin some stop string (they may still become one).
fn held_back(buf: &str, stops: &[String]) -> usize {
    let mut hold = 0;
    for s in stops {
        for k in (1..s.len().min(buf.len() + 1)).rev() {
            if k <= hold {
                break;
            }
            if s.is_char_boundary(k) && buf.ends_with(&s[..k]) {
                hold = k;
                break;
            }
        }
    }
    hold
}

/// Sends the rest of choice `c`'s text and its end, and releases it.
fn finish(
    eng: &mut Engine<'_>,
    jobs: &mut [Option<Active<'_>>],
    owner: &mut HashMap<ReqId, (usize, usize)>,
    j: usize,
    c: usize,
    how: Finish,
) {
    let Some(a) = jobs[j].as_mut() else { return };
    let ch = &mut a.choices[c];
    if ch.req.is_none() {
        return;
    }
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
    release(eng, jobs, owner, j, c);
}

/// Frees choice `c`'s sequence; the job ends with its last choice.
fn release(
    eng: &mut Engine<'_>,
    jobs: &mut [Option<Active<'_>>],
    owner: &mut HashMap<ReqId, (usize, usize)>,
    j: usize,
    c: usize,
) {
    let Some(a) = jobs[j].as_mut() else { return };
    if let Some(r) = a.choices[c].req.take() {
        owner.remove(&r);
        eng.release(r);
    }
    if a.choices.iter().all(|c| c.req.is_none()) {
        jobs[j] = None;
    }
}

fn end_job(
    eng: &mut Engine<'_>,
    jobs: &mut [Option<Active<'_>>],
    owner: &mut HashMap<ReqId, (usize, usize)>,
    j: usize,
) {
    let n = jobs[j].as_ref().map_or(0, |a| a.choices.len());
    for c in 0..n {
        release(eng, jobs, owner, j, c);
    }
}

#[cfg(test)]
mod tests {
    use super::held_back;

    #[test]
    fn holds_back_what_may_become_a_stop_string() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(held_back("hello wor", &s(&["world"])), 3);
        assert_eq!(held_back("hello", &s(&["world"])), 0);
        assert_eq!(held_back("ab\n", &s(&["\n\n", "xyz"])), 1);
        assert_eq!(held_back("", &s(&["x"])), 0);
        // Multi-byte stop strings are cut at character boundaries only.
        assert_eq!(held_back("a\u{e9}", &s(&["\u{e9}t\u{e9}"])), 2);
    }
}
