//! `flint run`: generate text from a prompt, streaming tokens to stdout and timings to stderr. One agent runs a
//! turn of the library ([`flint_engine::Turn`]); several run Contemplating mode (`run_agents.rs`).

use crate::common::{load, ModelArgs};
use crate::escalate::When;
use anyhow::{bail, Context};
use flint_engine::{Event, Flint};
use flint_model::SamplerConfig;
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
    /// Sampling temperature (0 = greedy; default 0, or 0.7 with --agents above 1).
    #[arg(long = "temp")]
    pub temperature: Option<f32>,
    /// Keep only the K most likely tokens (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Contemplating mode: N agents decode the prompt in parallel (one shared prefill, one batch per step, seeds
    /// seed..seed+N); their answers are aggregated by majority vote, or else by a last pass that reads them all.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub agents: u16,
    /// Print each agent's answer on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub media: crate::media::MediaArgs,
    /// Draw the boxes and points of the answer onto the (one) --image, as a PNG.
    #[arg(long, value_name = "PNG")]
    pub overlay: Option<std::path::PathBuf>,
    /// How the model writes boxes (default: its family's; qwen2.5-vl, qwen3-vl, qwen2-vl, paligemma, florence2).
    #[arg(long)]
    pub box_format: Option<flint_answer::Format>,
    /// Reasoning tokens at most: at the budget Flint closes the reasoning section itself and the answer follows;
    /// 0 skips reasoning. Reasoning goes to stderr, the answer to stdout.
    #[arg(long, value_name = "N")]
    pub think_budget: Option<usize>,
    /// Where the chat format puts reasoning: think (`<think>`…`</think>`) or muse (channels); default: what the
    /// chat template renders.
    #[arg(long)]
    pub reasoning_format: Option<flint_answer::ReasoningFormat>,
    /// The chat template's reasoning control (Muse: `reasoning_strength`; others: `reasoning_effort`).
    #[arg(long, value_parser = ["low", "medium", "high"])]
    pub reasoning_effort: Option<String>,
    #[command(flatten)]
    pub constrain: crate::constrain::ConstrainArgs,
    #[command(flatten)]
    pub escalate: crate::escalate::EscalateArgs,
}

pub fn run(a: RunArgs, board: Option<&str>) -> anyhow::Result<()> {
    let agents = a.agents as usize;
    let temperature = a.temperature.unwrap_or(if agents > 1 { 0.7 } else { 0.0 });
    if !(temperature >= 0.0 && temperature.is_finite()) {
        bail!("--temp must be a finite number >= 0, got {temperature}");
    }
    if !(a.top_p > 0.0 && a.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1], got {}", a.top_p);
    }
    let reasoning = a.think_budget.is_some() || a.reasoning_format.is_some();
    if reasoning && (!a.chat || agents > 1) {
        bail!("--think-budget and --reasoning-format apply to a --chat turn of one agent");
    }
    if a.reasoning_effort.is_some() && !a.chat {
        bail!("--reasoning-effort is passed to the chat template: it needs --chat");
    }
    if a.constrain.is_set() && agents > 1 {
        bail!("--json-schema and --grammar apply to one agent");
    }
    a.escalate.check()?;
    let escalate = a
        .escalate
        .escalate
        .as_ref()
        .map(|_| a.escalate.escalate_when);
    if escalate.is_some() && a.constrain.is_set() {
        bail!("--escalate cannot keep the remote's answer to --json-schema or --grammar: use one or the other");
    }
    if escalate == Some(When::AgentsDisagree) && agents < 2 {
        bail!("--escalate-when agents-disagree needs --agents 2 or more");
    }
    if escalate == Some(When::LowConfidence) && agents > 1 {
        bail!(
            "--escalate-when low-confidence applies to one agent (with --agents: agents-disagree)"
        );
    }
    let files = a.media.files(board)?;
    if a.overlay.is_some() && (files.images.len() != 1 || agents > 1) {
        bail!("--overlay draws onto one --image, with one agent");
    }
    let grammar = a.constrain.grammar()?;
    // Always: the remote first, before the local model is even loaded (it is needed only if the remote fails,
    // or to find the box format of an overlay).
    let mut remote_first = None;
    if escalate == Some(When::Always) {
        remote_first = a.escalate.answer(&ask(&a, &files, temperature));
        if let Some(answer) = &remote_first {
            println!("{}", answer.trim());
            if a.overlay.is_none() {
                return Ok(());
            }
        }
    }
    let (model, load_s) = load(&a.model, board)?;
    let flint = Flint::from_model(model)
        .with_context(|| format!("{}: use `flint logits --ids`", a.model.model.display()))?;
    let sampler = SamplerConfig {
        temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
    };
    let out = Out {
        a: &a,
        flint: &flint,
        files: &files,
        temperature,
    };
    if let Some(answer) = remote_first {
        return out.overlay(&answer, None, true);
    }
    if agents > 1 {
        return crate::run_agents::run(&out, agents, sampler, load_s, escalate);
    }
    let kv = a.model.kv_options();
    let mut chat = if a.chat {
        flint.chat_with(kv)
    } else {
        flint.raw(kv)
    };
    let mut turn = chat
        .turn(&a.prompt)
        .media(files.clone())
        .max_tokens(a.max_tokens)
        .sampling(sampler)
        .confidence();
    if let Some(f) = a.reasoning_format {
        turn = turn.reasoning_format(f);
    }
    if let Some(b) = a.think_budget {
        turn = turn.think_budget(b);
    }
    if let Some(e) = &a.reasoning_effort {
        turn = turn.reasoning_effort(e);
    }
    if let Some(g) = grammar {
        turn = turn.grammar(g);
    }
    // The answer is printed at the end when a grammar must first be complete or the remote may replace it.
    let hold = a.constrain.is_set() || escalate == Some(When::LowConfidence);
    let reply = out.stream(turn, hold)?;
    let mut answer = reply.answer.clone();
    let mut from_remote = false;
    if a.constrain.is_set() {
        if !reply.complete {
            bail!(
                "the answer is not complete under {} after {} tokens (finish: {}): nothing printed",
                a.constrain.source(),
                reply.stats.generated,
                if reply.stats.generated >= a.max_tokens {
                    "length; raise -n"
                } else {
                    "stop"
                }
            );
        }
        println!("{}", answer.trim_start());
        eprintln!(
            "constraint: {:.3} ms over {} tokens ({:.1} us per token)",
            reply.constraint_secs * 1e3,
            reply.stats.generated,
            reply.constraint_secs * 1e6 / reply.stats.generated.max(1) as f64
        );
    } else if hold {
        let conf = reply.confidence.unwrap_or(0.0);
        eprintln!(
            "confidence {conf:.3} (mean token probability; threshold {})",
            a.escalate.escalate_threshold
        );
        if conf < a.escalate.escalate_threshold {
            if let Some(r) = out.remote() {
                answer = r;
                from_remote = true;
            }
        }
        println!("{}", answer.trim());
    }
    if reasoning {
        eprintln!(
            "reasoning: {} tokens{}{}",
            reply.reasoning_tokens,
            a.think_budget
                .map_or(String::new(), |b| format!(" (budget {b})")),
            if reply.budget_closed {
                ", closed by the budget"
            } else {
                ""
            }
        );
    }
    out.overlay(&answer, reply.frames.first(), from_remote)?;
    let stats = &reply.stats;
    eprintln!(
        "load {:.3} s | prompt {} tok, {:.1} tok/s | decode {} tok, {:.1} tok/s | threads {}, kernels {}",
        load_s,
        stats.prompt_tokens,
        stats.prompt_tok_s(),
        stats.generated,
        stats.decode_tok_s(),
        flint.model().exec().threads(),
        flint.model().exec().isa().name(),
    );
    Ok(())
}

/// What the remote is asked: the run's prompt, media and sampling.
fn ask<'r>(
    a: &'r RunArgs,
    files: &'r flint_prompt::MediaFiles,
    temperature: f32,
) -> crate::escalate::Ask<'r> {
    crate::escalate::Ask {
        prompt: &a.prompt,
        images: &files.images,
        audio: &files.audio,
        max_tokens: a.max_tokens,
        temperature,
        seed: a.seed,
    }
}

/// What one run prints and draws, and where its remote is.
pub struct Out<'r> {
    pub a: &'r RunArgs,
    pub flint: &'r Flint,
    pub files: &'r flint_prompt::MediaFiles,
    pub temperature: f32,
}

impl Out<'_> {
    /// Runs a turn: the answer streams to stdout (unless `hold`), reasoning to stderr; the stages' timings
    /// follow on stderr.
    pub fn stream(
        &self,
        turn: flint_engine::Turn<'_, '_>,
        hold: bool,
    ) -> anyhow::Result<flint_engine::Reply> {
        let mut stdout = std::io::stdout().lock();
        let mut err = None;
        let reply = turn.run(|e| match e {
            Event::Answer(t) if !hold && err.is_none() => {
                err = stdout
                    .write_all(t.as_bytes())
                    .and_then(|_| stdout.flush())
                    .err();
            }
            Event::Reasoning(t) => eprint!("{t}"),
            _ => {}
        })?;
        if let Some(e) = err {
            return Err(anyhow::Error::from(e).context("writing the answer"));
        }
        if !hold {
            writeln!(stdout)?;
        }
        for (stage, secs, what) in &reply.stages {
            eprintln!("{stage}: {secs:.3} s ({what})");
        }
        Ok(reply)
    }

    /// The remote's answer, or `None` (said on stderr) when it has none in time.
    pub fn remote(&self) -> Option<String> {
        self.a
            .escalate
            .answer(&ask(self.a, self.files, self.temperature))
    }

    /// Draws the answer's boxes onto the (one) image with `--overlay`; a remote answer says so on the image.
    pub fn overlay(
        &self,
        answer: &str,
        frame: Option<&flint_engine::Frame>,
        from_remote: bool,
    ) -> anyhow::Result<()> {
        let Some(out) = &self.a.overlay else {
            return Ok(());
        };
        let arch = self
            .flint
            .model()
            .file()
            .meta("general.architecture")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let format = self
            .a
            .box_format
            .or_else(|| flint_answer::Format::for_architecture(arch))
            .with_context(|| format!("no box format is known for `{arch}`: pass --box-format"))?;
        let resized = frame.map(|f| (f.resized_width, f.resized_height));
        let note = from_remote.then_some("answer: remote");
        crate::overlay::render(&self.files.images[0], resized, format, answer, note, out)
    }
}
