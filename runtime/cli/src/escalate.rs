//! `--escalate URL`: hand a request to a bigger engine (vLLM, llama-server, another `flint serve`) through its
//! OpenAI chat-completions endpoint, when asked: always, when the local answer's confidence (the mean probability
//! the model gave its own tokens) is below a threshold, or when the contemplating agents disagree. A remote that
//! fails, refuses or is slower than `--escalate-timeout` leaves the local answer standing.
//!
//! The request carries the prompt as one user turn, with the prompt's images as base64 data URLs and its WAV
//! clips as `input_audio`, so the remote model sees what the local one saw. Plain `http://` only: the endpoint
//! is on the wearer's own network.

use anyhow::{bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// When to escalate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// Every request goes to the remote; the local engine answers only if the remote cannot.
    Always,
    /// The local answer's mean token probability is below `--escalate-threshold`.
    LowConfidence,
    /// The agents of `--agents N` reach no majority.
    AgentsDisagree,
}

#[derive(clap::Args, Debug)]
pub struct EscalateArgs {
    /// An OpenAI-compatible endpoint (`http://host:port`, with or without `/v1`) to hand the request to.
    #[arg(long, value_name = "URL")]
    pub escalate: Option<String>,
    #[arg(long, value_enum, default_value_t = When::LowConfidence, requires = "escalate")]
    pub escalate_when: When,
    /// With low-confidence: escalate when the mean token probability is below this.
    #[arg(long, default_value_t = 0.5, requires = "escalate")]
    pub escalate_threshold: f64,
    /// Seconds to wait for the remote's whole answer.
    #[arg(long, default_value_t = 30.0, requires = "escalate")]
    pub escalate_timeout: f64,
    /// The model name to ask the remote for (default: its first in /v1/models).
    #[arg(long, requires = "escalate")]
    pub escalate_model: Option<String>,
    /// The remote's API key (also FLINT_ESCALATE_KEY).
    #[arg(long, requires = "escalate")]
    pub escalate_key: Option<String>,
}

/// What the remote is asked.
#[derive(Debug)]
pub struct Ask<'a> {
    pub prompt: &'a str,
    pub images: &'a [PathBuf],
    pub audio: &'a [PathBuf],
    pub max_tokens: usize,
    pub temperature: f32,
    pub seed: u64,
}

impl EscalateArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        let Some(url) = &self.escalate else {
            return Ok(());
        };
        if !url.starts_with("http://") {
            bail!("--escalate {url}: only http:// endpoints are supported");
        }
        if !(self.escalate_timeout > 0.0 && self.escalate_timeout <= 3600.0) {
            bail!("--escalate-timeout must be in (0, 3600] seconds");
        }
        if !(0.0..=1.0).contains(&self.escalate_threshold) {
            bail!("--escalate-threshold must be in [0, 1]");
        }
        Ok(())
    }

    /// The base URL, ending in `/v1`.
    fn base(&self) -> String {
        let u = self.escalate.as_deref().unwrap_or("").trim_end_matches('/');
        if u.ends_with("/v1") {
            u.to_string()
        } else {
            format!("{u}/v1")
        }
    }

    /// The remote's answer, or `None` (said on stderr, with why) when it has none in time.
    pub fn answer(&self, a: &Ask<'_>) -> Option<String> {
        match self.ask(a) {
            Ok(t) => {
                eprintln!(
                    "escalated: the answer comes from {}",
                    self.escalate.as_deref().unwrap_or("")
                );
                Some(t)
            }
            Err(e) => {
                eprintln!("escalation failed ({e:#}): the local answer stands");
                None
            }
        }
    }

    /// Asks the remote; its answer, or why there is none.
    fn ask(&self, a: &Ask<'_>) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.escalate_timeout);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs_f64(self.escalate_timeout)))
            .http_status_as_error(false)
            .build()
            .into();
        let base = self.base();
        let key = self
            .escalate_key
            .clone()
            .or_else(|| std::env::var("FLINT_ESCALATE_KEY").ok());
        let auth = key.map(|k| format!("Bearer {k}"));
        let model = match &self.escalate_model {
            Some(m) => m.clone(),
            None => {
                let mut req = agent.get(&format!("{base}/models"));
                if let Some(h) = &auth {
                    req = req.header("Authorization", h);
                }
                let v = read_json(req.call(), "GET /v1/models")?;
                v.pointer("/data/0/id")
                    .and_then(Value::as_str)
                    .context("GET /v1/models: no model listed")?
                    .to_string()
            }
        };
        let body = json!({
            "model": model,
            "messages": [{"role": "user", "content": content(a)?}],
            "max_tokens": a.max_tokens,
            "temperature": a.temperature,
            "seed": a.seed,
            "stream": false,
        });
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out after {} s", self.escalate_timeout);
        }
        let mut req = agent
            .post(&format!("{base}/chat/completions"))
            .config()
            .timeout_global(Some(left))
            .build();
        if let Some(h) = &auth {
            req = req.header("Authorization", h);
        }
        let v = read_json(req.send_json(&body), "POST /v1/chat/completions")?;
        v.pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .map(str::to_string)
            .context("POST /v1/chat/completions: the response has no choices[0].message.content")
    }
}

/// The user turn's content: text alone, or parts with the media.
fn content(a: &Ask<'_>) -> anyhow::Result<Value> {
    if a.images.is_empty() && a.audio.is_empty() {
        return Ok(Value::String(a.prompt.to_string()));
    }
    let b64 = |p: &PathBuf| -> anyhow::Result<String> {
        let bytes = std::fs::read(p).with_context(|| p.display().to_string())?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let mut parts = Vec::new();
    for p in a.images {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mime = if ext == "png" {
            "image/png"
        } else {
            "image/jpeg"
        };
        parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{}", b64(p)?)}}));
    }
    for p in a.audio {
        parts.push(
            json!({"type": "input_audio", "input_audio": {"data": b64(p)?, "format": "wav"}}),
        );
    }
    parts.push(json!({"type": "text", "text": a.prompt}));
    Ok(Value::Array(parts))
}

/// A response's JSON, or an error with the status and the server's message.
fn read_json(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    what: &str,
) -> anyhow::Result<Value> {
    let mut r = r.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let status = r.status();
    let body = r
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| anyhow::anyhow!("{what}: reading the response: {e}"))?;
    if !status.is_success() {
        let msg = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.chars().take(200).collect());
        bail!("{what}: HTTP {status}: {msg}");
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: the response is not JSON"))
}
