//! The HTTP side: routes, the API key, request bodies to jobs, and events back to JSON or server-sent events.

use crate::api::{self, ApiError, Params};
use crate::api::{Segment, Source};
use crate::metrics::Metrics;
use crate::scheduler::{Event, Finish, Job, Scheduler};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flint_model::multimodal::Media;
use flint_model::{ChatOptions, Message, Model, SamplerConfig, Text};
use futures_util::stream::{self, Stream};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub scheduler: Scheduler,
    pub metrics: Arc<Metrics>,
    pub text: Arc<Text>,
    /// The model's name in responses (`/v1/models`).
    pub model_id: String,
    pub context: usize,
    /// The most tokens a choice may generate when the request sets no `max_tokens`.
    pub default_max_tokens: usize,
    pub api_key: Option<String>,
    pub next_id: AtomicU64,
    /// For the processors (images, audio) on the request side.
    pub model: Arc<Model>,
    /// Files under this directory (canonical) may be named in content parts.
    pub allow_path: Option<PathBuf>,
    /// Tools, grammars and answers in the model's chat format.
    pub shaper: crate::shape::Shaper,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

pub fn router(state: Arc<AppState>, max_body: usize) -> Router {
    let protected = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(protected)
        .fallback(|| async { ApiError::status(404, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn auth(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(key) = &s.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compared in constant time, so the key cannot be guessed byte by byte from response times.
        if !given.is_some_and(|g| constant_eq(g.as_bytes(), key.as_bytes())) {
            return ApiError::status(
                401,
                "invalid_api_key",
                "a valid API key is required (Authorization: Bearer ...)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn models(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": s.model_id, "object": "model", "created": now(), "owned_by": "flint"}],
    }))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn chat(State(s): State<Arc<AppState>>, _h: HeaderMap, body: Bytes) -> Response {
    // Templates, tokenizers and image decoding are CPU work: off the thread that serves the sockets.
    let s2 = s.clone();
    let started = tokio::task::spawn_blocking(move || start(&s2, &body))
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::status(
                500,
                "server_error",
                format!("request task failed: {e}"),
            ))
        });
    match started {
        Ok((p, rx, prompt_tokens)) => {
            let id = format!("chatcmpl-{}", s.next_id.fetch_add(1, Ordering::Relaxed));
            if p.stream {
                stream_response(s, p, rx, id).into_response()
            } else {
                whole_response(&s, &p, rx, id, prompt_tokens).await
            }
        }
        Err(e) => e.into_response(),
    }
}

/// Checks the request, renders and tokenizes its prompt (processing its images and audio), and queues it.
fn start(s: &AppState, body: &[u8]) -> Result<(Params, UnboundedReceiver<Event>, usize), ApiError> {
    let p = api::parse(body)?;
    let constraint = s.shaper.constraint(&s.text, &p)?;
    let (prompt, media) = if p
        .messages
        .iter()
        .all(|m| api::text_of(&m.content).is_some())
    {
        let contents = p
            .messages
            .iter()
            .map(|m| api::text_of(&m.content).unwrap_or_default())
            .collect();
        let (messages, opts) = s.shaper.messages(&p, contents);
        let rendered = render(s, &messages, &opts)?;
        (encode(s, &rendered)?, None)
    } else {
        let (ids, media) = with_media(s, &p)?;
        (ids, Some(media))
    };
    if prompt.len() >= s.context {
        return Err(ApiError::bad(
            "messages",
            format!(
                "the prompt has {} tokens; this model's context is {} tokens",
                prompt.len(),
                s.context
            ),
        ));
    }
    let samplers = (0..p.n)
        .map(|i| SamplerConfig {
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            seed: p.seed.wrapping_add(i as u64),
        })
        .collect();
    let (tx, rx) = unbounded_channel();
    let n_prompt = prompt.len();
    s.scheduler.submit(Job {
        prompt,
        samplers,
        max_new: p.max_tokens.unwrap_or(s.default_max_tokens),
        media,
        stop: p.stop.clone(),
        ignore_eos: p.ignore_eos,
        constraint,
        events: tx,
    })?;
    Ok((p, rx, n_prompt))
}

fn render(s: &AppState, messages: &[Message], opts: &ChatOptions) -> Result<String, ApiError> {
    s.text
        .apply_chat_template_with(messages, opts)
        .map_err(|e| ApiError::bad("messages", format!("the chat template failed: {e}")))
}

fn encode(s: &AppState, rendered: &str) -> Result<Vec<u32>, ApiError> {
    s.text
        .encode(rendered, false)
        .map_err(|e| ApiError::bad("messages", format!("tokenizing the prompt failed: {e}")))
}

/// A prompt with images or audio: each medium is written where the processors read it (a data URL's bytes into a
/// file named for its place in the request, so errors name it), processed with the checkpoint's processors, and
/// stands as its placeholder in the message's content; the chat template renders the messages and the
/// placeholders expand as the processor does.
fn with_media(s: &AppState, p: &Params) -> Result<(Vec<u32>, Media), ApiError> {
    let c = &s.model.config;
    let dir = tempfile::tempdir()
        .map_err(|e| ApiError::status(500, "server_error", format!("a temporary folder: {e}")))?;
    let mut files = flint_prompt::MediaFiles::default();
    let mut contents = Vec::with_capacity(p.messages.len());
    for (i, m) in p.messages.iter().enumerate() {
        let segments = &m.content;
        let mut content = String::new();
        for (j, seg) in segments.iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            match seg {
                Segment::Text(t) => content.push_str(t),
                Segment::Image(src) => {
                    if c.vision.is_none() {
                        return Err(ApiError::bad(
                            &at,
                            "this model has no vision tower: it cannot read images",
                        ));
                    }
                    files.images.push(materialize(s, src, dir.path(), &at)?);
                    content.push_str(flint_prompt::IMAGE_TOKEN);
                }
                Segment::Audio(src) => {
                    // A raw-waveform tower (Muse Spark) or a log-mel encoder (the Omni thinkers).
                    if c.audio.is_none() && c.mel_audio.is_none() {
                        return Err(ApiError::bad(
                            &at,
                            "this model has no audio tower: it cannot hear audio",
                        ));
                    }
                    files.audio.push(materialize(s, src, dir.path(), &at)?);
                    content.push_str(flint_prompt::AUDIO_TOKEN);
                }
            }
        }
        contents.push(content);
    }
    let (messages, opts) = s.shaper.messages(p, contents);
    // Errors name a medium by its place in the request, not by the temporary folder.
    let tmp = format!("{}/", dir.path().display());
    let prepared = flint_prompt::prepare(&s.model, &files)
        .map_err(|e| ApiError::bad("messages", format!("{e:#}").replace(&tmp, "")))?;
    let rendered = render(s, &messages, &opts)?;
    let expanded = prepared
        .expand(&rendered)
        .map_err(|e| ApiError::bad("messages", format!("{e:#}")))?;
    Ok((encode(s, &expanded)?, prepared.media))
}

/// The file a medium is read from.
fn materialize(s: &AppState, src: &Source, dir: &Path, at: &str) -> Result<PathBuf, ApiError> {
    match src {
        Source::Data(bytes) => {
            let f = dir.join(at);
            std::fs::write(&f, bytes)
                .map_err(|e| ApiError::status(500, "server_error", format!("writing {at}: {e}")))?;
            Ok(f)
        }
        Source::Path(path) => {
            let Some(allowed) = &s.allow_path else {
                return Err(ApiError::bad(
                    at,
                    "file paths are not accepted: the server was started without --allow-path",
                ));
            };
            let real = std::fs::canonicalize(path)
                .map_err(|e| ApiError::bad(at, format!("{}: {e}", path.display())))?;
            if !real.starts_with(allowed) {
                return Err(ApiError::bad(
                    at,
                    format!("{} is not under the --allow-path folder", path.display()),
                ));
            }
            Ok(real)
        }
    }
}

async fn whole_response(
    s: &AppState,
    p: &Params,
    mut rx: UnboundedReceiver<Event>,
    id: String,
    prompt_tokens: usize,
) -> Response {
    let mut texts = vec![String::new(); p.n];
    let mut finish: Vec<Option<Finish>> = vec![None; p.n];
    let mut completion = 0;
    while finish.iter().any(Option::is_none) {
        match rx.recv().await {
            Some(Event::Started { .. }) => {}
            Some(Event::Text { choice, text }) => texts[choice].push_str(&text),
            Some(Event::Done {
                choice,
                finish: f,
                tokens,
            }) => {
                finish[choice] = Some(f);
                completion += tokens;
            }
            Some(Event::Failed(m)) => {
                return ApiError::status(500, "server_error", m).into_response()
            }
            None => {
                return ApiError::status(500, "server_error", "the engine dropped the request")
                    .into_response()
            }
        }
    }
    let choices: Vec<Value> = texts
        .into_iter()
        .zip(finish)
        .enumerate()
        .map(|(i, (t, f))| {
            let (message, called) = s.shaper.message(p, &t, &format!("{id}_{i}"));
            json!({
                "index": i,
                "message": message,
                "finish_reason": if called { "tool_calls" } else { f.map_or("stop", Finish::as_str) },
                "logprobs": null,
            })
        })
        .collect();
    Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": s.model_id,
        "choices": choices,
        "usage": usage(prompt_tokens, completion),
    }))
    .into_response()
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// State of one streamed response.
struct Streaming {
    rx: UnboundedReceiver<Event>,
    id: String,
    model: String,
    created: u64,
    left: usize,
    prompt_tokens: usize,
    completion: usize,
    include_usage: bool,
    /// Whether each choice has had its first (role) chunk.
    started: Vec<bool>,
    /// Lines ready to send.
    out: std::collections::VecDeque<String>,
    ended: bool,
    /// With tools, each choice's text is held until it ends, then sent as content and calls.
    calls: Option<(Arc<AppState>, Params)>,
    held: Vec<String>,
    /// Per choice, with a reasoning template: reasoning goes out as `reasoning_content` deltas.
    reasoners: Vec<Option<flint_answer::Reasoner>>,
}

impl Streaming {
    fn chunk(&self, choice: usize, delta: Value, finish: Option<&str>) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": choice, "delta": delta, "finish_reason": finish, "logprobs": null}],
        })
        .to_string()
    }

    fn role(&mut self, choice: usize) {
        if !self.started[choice] {
            self.started[choice] = true;
            let c = self.chunk(choice, json!({"role": "assistant", "content": ""}), None);
            self.out.push_back(c);
        }
    }

    /// A choice's new answer text and reasoning: reasoning is sent, the answer too unless it is held for tools.
    fn text(&mut self, choice: usize, (answer, reasoning): (String, String)) {
        if !reasoning.is_empty() {
            let c = self.chunk(choice, json!({"reasoning_content": reasoning}), None);
            self.out.push_back(c);
        }
        if self.calls.is_some() {
            self.held[choice].push_str(&answer);
        } else if !answer.is_empty() {
            let c = self.chunk(choice, json!({"content": answer}), None);
            self.out.push_back(c);
        }
    }

    /// Turns the next engine event into lines; `false` at the end.
    async fn next(&mut self) -> bool {
        if self.ended {
            return false;
        }
        match self.rx.recv().await {
            Some(Event::Started { prompt_tokens }) => self.prompt_tokens = prompt_tokens,
            Some(Event::Text { choice, text }) => {
                self.role(choice);
                let split = self.reasoners[choice].as_mut().map(|r| r.push(&text));
                self.text(
                    choice,
                    split.map_or((text, String::new()), |s| (s.answer, s.reasoning)),
                );
            }
            Some(Event::Done {
                choice,
                finish,
                tokens,
            }) => {
                self.role(choice);
                self.completion += tokens;
                if let Some(s) = self.reasoners[choice].as_mut().map(|r| r.finish()) {
                    self.text(choice, (s.answer, s.reasoning));
                }
                let mut reason = finish.as_str();
                if let Some((s, p)) = &self.calls {
                    let text = std::mem::take(&mut self.held[choice]);
                    let (m, called) = s.shaper.message(p, &text, &format!("{}_{choice}", self.id));
                    let mut delta = json!({"content": m["content"]});
                    if called {
                        delta["tool_calls"] = m["tool_calls"].clone();
                        reason = "tool_calls";
                    }
                    let c = self.chunk(choice, delta, None);
                    self.out.push_back(c);
                }
                let c = self.chunk(choice, json!({}), Some(reason));
                self.out.push_back(c);
                self.left -= 1;
                if self.left == 0 {
                    if self.include_usage {
                        let u = json!({
                            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.model, "choices": [], "usage": usage(self.prompt_tokens, self.completion),
                        });
                        self.out.push_back(u.to_string());
                    }
                    self.out.push_back("[DONE]".into());
                    self.ended = true;
                }
            }
            Some(Event::Failed(m)) => {
                // Headers are sent: the error goes in the stream, as OpenAI's servers do.
                self.out
                    .push_back(ApiError::status(500, "server_error", m).body().to_string());
                self.ended = true;
            }
            None => {
                self.out.push_back(
                    ApiError::status(500, "server_error", "the engine dropped the request")
                        .body()
                        .to_string(),
                );
                self.ended = true;
            }
        }
        true
    }
}

fn stream_response(
    s: Arc<AppState>,
    p: Params,
    rx: UnboundedReceiver<Event>,
    id: String,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let st = Streaming {
        rx,
        id,
        model: s.model_id.clone(),
        created: now(),
        left: p.n,
        prompt_tokens: 0,
        completion: 0,
        include_usage: p.include_usage,
        started: vec![false; p.n],
        out: Default::default(),
        ended: false,
        held: vec![String::new(); p.n],
        reasoners: (0..p.n).map(|_| s.shaper.reasoner()).collect(),
        calls: crate::shape::Shaper::calls(&p).then(|| (s.clone(), p)),
    };
    let events = stream::unfold(st, |mut st| async move {
        loop {
            if let Some(line) = st.out.pop_front() {
                return Some((Ok(SseEvent::default().data(line)), st));
            }
            if !st.next().await {
                return None;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
