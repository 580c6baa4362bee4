//! `flint run`: generate text from a prompt, streaming tokens to stdout and timings to stderr.

use crate::common::{load, ModelArgs};
use anyhow::{bail, Context};
use flint_model::{generate, Message, Sampler, SamplerConfig, Text, TextStream};
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(short, long)]
    pub prompt: String,
    /// Tokens to generate at most.
    #[arg(short = 'n', long, default_value_t = 128)]
    pub max_tokens: usize,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Sampling temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(a: RunArgs, board: Option<&str>) -> anyhow::Result<()> {
    if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
        bail!("--temp must be a finite number >= 0, got {}", a.temperature);
    }
    if !(a.top_p > 0.0 && a.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1], got {}", a.top_p);
    }
    let (model, load_s) = load(&a.model, board)?;
    let text = Text::from_file(model.file())?.with_context(|| {
        format!(
            "{} has no tokenizer: use `flint logits --ids`",
            a.model.model.display()
        )
    })?;
    let prompt = if a.chat {
        let msgs = [Message {
            role: "user".into(),
            content: a.prompt.clone(),
        }];
        text.encode(&text.apply_chat_template(&msgs)?, false)?
    } else {
        text.encode(&a.prompt, true)?
    };
    let mut stop = model.config.eos_token_ids.clone();
    if a.chat {
        // Chat models end a turn with their end-of-turn token, which may differ from the config's eos.
        stop.extend(
            ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"]
                .iter()
                .filter_map(|t| text.token_id(t)),
        );
    }
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
    });
    let mut stream = TextStream::new(&text);
    let mut out = std::io::stdout().lock();
    let mut io_err = None;
    let (_, stats) = generate(&model, &prompt, a.max_tokens, &mut sampler, &stop, |id| {
        let piece = match stream.push(id) {
            Ok(p) => p,
            Err(e) => {
                io_err = Some(anyhow::Error::from(e));
                return false;
            }
        };
        if let Err(e) = out.write_all(piece.as_bytes()).and_then(|_| out.flush()) {
            io_err = Some(e.into());
            return false;
        }
        true
    })?;
    if let Some(e) = io_err {
        return Err(e.context("writing the answer"));
    }
    writeln!(out)?;
    eprintln!(
        "load {:.3} s | prompt {} tok, {:.1} tok/s | decode {} tok, {:.1} tok/s | threads {}, kernels {}",
        load_s,
        stats.prompt_tokens,
        stats.prompt_tok_s(),
        stats.generated,
        stats.decode_tok_s(),
        flint_kernels::threads(),
        flint_kernels::active_isa().name(),
    );
    Ok(())
}
