//! `flint serve`: an OpenAI-compatible HTTP server (axum on tokio) in front of the engine's batched decoding.
//!
//! - `http`: routes (`/v1/models`, `/v1/chat/completions` streaming and not, `/health`, `/metrics`), the API key,
//!   the body cap; a request becomes a [`scheduler::Job`] with one sampler per choice (`n`).
//! - `scheduler`: one engine thread owns the model and steps every live choice of every request in one batch.
//! - `api`: the request as read, and what is refused (fail closed: what the engine cannot enforce is a 400 naming
//!   the field, never a silent fallback).
//! - `shape`: tools and reasoning effort into the chat template, `response_format` and `tools` into a grammar
//!   (flint-constrain) every choice keeps to, and the answer back into content and `tool_calls`.
//! - `prefix`: finished prompts and answers kept in the KV cache, so a request that starts the same way prefills
//!   only what is new.
//! - `metrics`: counters shared by both sides, as Prometheus text.

pub mod api;
pub mod http;
pub mod metrics;
pub mod prefix;
pub mod scheduler;
pub mod shape;

use anyhow::{bail, Context};
use flint_model::{KvOptions, Model, Text};
use metrics::Metrics;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: IpAddr,
    /// 0 picks a free port (printed on stderr).
    pub port: u16,
    /// Required when `host` is not a loopback address.
    pub api_key: Option<String>,
    /// Choices decoded at once at most.
    pub parallel: usize,
    /// Requests waiting at most; beyond, 503.
    pub queue: usize,
    /// Request bodies larger than this are refused (413).
    pub max_body: usize,
    /// `max_tokens` of a request that gives none.
    pub default_max_tokens: usize,
    pub kv: KvOptions,
    /// Tokens of finished prompts and answers kept in the KV cache for requests that start the same way.
    pub prefix_cache: usize,
    /// Content parts may name files under this folder (none: data URLs only).
    pub allow_path: Option<std::path::PathBuf>,
}

/// A server reachable beyond this machine must have an API key.
pub fn check_exposure(host: IpAddr, api_key: Option<&str>) -> anyhow::Result<()> {
    if !host.is_loopback() && api_key.is_none() {
        bail!("refusing to listen on {host} without an API key: pass --api-key (or FLINT_API_KEY), or bind 127.0.0.1");
    }
    Ok(())
}

/// Serves `model` until SIGINT or SIGTERM. `stop_ids` end a turn; `model_id` names the model in responses.
pub fn serve(
    model: Model,
    text: Text,
    stop_ids: Vec<u32>,
    model_id: String,
    opts: ServeOptions,
) -> anyhow::Result<()> {
    check_exposure(opts.host, opts.api_key.as_deref())?;
    if !text.has_template() {
        bail!("the model has no chat template: /v1/chat/completions needs one");
    }
    let context = model.config.max_position_embeddings;
    let allow_path = opts
        .allow_path
        .as_ref()
        .map(|p| std::fs::canonicalize(p).with_context(|| format!("--allow-path {}", p.display())))
        .transpose()?;
    let model = Arc::new(model);
    let metrics = Arc::new(Metrics::default());
    let text = Arc::new(text);
    let sched_opts = scheduler::Options {
        parallel: opts.parallel.max(1),
        queue: opts.queue.max(1),
        kv: opts.kv,
        prefix_cache: opts.prefix_cache,
    };
    let shaper = shape::Shaper::new(&text, stop_ids.clone());
    let scheduler = scheduler::Scheduler::spawn(
        model.clone(),
        text.clone(),
        stop_ids,
        sched_opts,
        metrics.clone(),
    )
    .context("starting the engine thread")?;
    let state = Arc::new(http::AppState {
        scheduler,
        metrics,
        text,
        model_id,
        context,
        default_max_tokens: opts.default_max_tokens,
        api_key: opts.api_key.clone(),
        next_id: AtomicU64::new(0),
        model,
        allow_path,
        shaper,
    });
    // The engine thread does the arithmetic; one thread is plenty for sockets and JSON.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let addr = SocketAddr::new(opts.host, opts.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!(
            "flint serve: listening on http://{local} (model {}, {} parallel, queue {})",
            state.model_id, sched_opts.parallel, sched_opts.queue
        );
        let app = http::router(state, opts.max_body);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving")
    })
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("flint serve: shutting down");
}
