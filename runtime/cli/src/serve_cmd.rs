//! `flint serve`: the OpenAI-compatible HTTP server (the flint-serve crate) over a loaded model.

use crate::common::{load, ModelArgs};
use anyhow::Context;
use flint_model::Text;
use std::net::IpAddr;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on. Anything but loopback needs --api-key.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port (0: any free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on /v1 and /metrics (default: the FLINT_API_KEY variable, if set).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Choices decoded together at most (one batch per step).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Requests waiting at most; more get 503.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub queue: u32,
    /// Largest request body in bytes (more: 413).
    #[arg(long, default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    pub max_body: u64,
    /// Tokens of finished prompts and answers kept in the KV cache, so a request that starts the same way (a
    /// system prompt, the next turn of a chat) prefills only what is new (0: off).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    pub prefix_cache: u64,
    /// Let content parts name image and WAV files under this folder (otherwise only data URLs are taken).
    #[arg(long)]
    pub allow_path: Option<std::path::PathBuf>,
    /// max_tokens of a request that sets none.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub default_max_tokens: u64,
}

pub fn run(a: ServeArgs, board: Option<&str>) -> anyhow::Result<()> {
    let api_key = a
        .api_key
        .clone()
        .or_else(|| std::env::var("FLINT_API_KEY").ok())
        .filter(|k| !k.is_empty());
    // Before loading: a refused address should not wait for the model.
    flint_serve::check_exposure(a.host, api_key.as_deref())?;
    let (model, _) = load(&a.model, board)?;
    let text = Text::from_file(model.file())?
        .with_context(|| format!("{} has no tokenizer", a.model.model.display()))?;
    let stop = flint_model::stop_ids(&model, &text, true);
    let id = a
        .model
        .model
        .file_stem()
        .map_or("flint".to_string(), |s| s.to_string_lossy().into_owned());
    let opts = flint_serve::ServeOptions {
        host: a.host,
        port: a.port,
        api_key,
        parallel: a.parallel as usize,
        queue: a.queue as usize,
        max_body: a.max_body as usize,
        default_max_tokens: a.default_max_tokens as usize,
        kv: a.model.kv_options(),
        prefix_cache: a.prefix_cache as usize,
        allow_path: a.allow_path,
    };
    flint_serve::serve(model, text, stop, id, opts)
}
