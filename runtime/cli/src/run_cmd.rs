//! `flint run`: generate text from a prompt, streaming tokens to stdout and timings to stderr.

use crate::common::{load, ModelArgs};
use anyhow::{bail, Context};
use flint_model::agents::{majority, run_agents_prompt, synthesis_prompt, AgentsOptions};
use flint_model::multimodal::{MediaPrompt, Towers};
use flint_model::{Sampler, SamplerConfig, Session, Step, Text, TextStream};
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
    let (model, load_s) = load(&a.model, board)?;
    let text = Text::from_file(model.file())?.with_context(|| {
        format!(
            "{} has no tokenizer: use `flint logits --ids`",
            a.model.model.display()
        )
    })?;
    let reasoning = match (a.think_budget, a.reasoning_format) {
        (None, None) => None,
        (_, Some(f)) => Some(f),
        (Some(_), None) => Some(
            text.template()
                .and_then(flint_answer::ReasoningFormat::for_template)
                .context("--think-budget: the chat template has no reasoning section: pass --reasoning-format")?,
        ),
    };
    if reasoning.is_some() && (!a.chat || agents > 1) {
        bail!("--think-budget and --reasoning-format apply to a --chat turn of one agent");
    }
    // A budget of 0 skips reasoning: the prompt closes the section before the model writes.
    let skip = reasoning
        .filter(|_| a.think_budget == Some(0))
        .map(|f| f.skip())
        .unwrap_or("");
    let render = |content: &str| -> anyhow::Result<Vec<u32>> {
        let rendered = flint_prompt::render(&text, a.chat, content)? + skip;
        Ok(text.encode(&rendered, !a.chat)?)
    };
    let files = a.media.files(board)?;
    if a.overlay.is_some() && (files.images.len() != 1 || agents > 1) {
        bail!("--overlay draws onto one --image, with one agent");
    }
    let mut resized = None;
    let media_prompt = if a.media.is_empty() {
        MediaPrompt::text(&model, render(&a.prompt)?)
    } else {
        let prepared = flint_prompt::prepare(&model, &files)?;
        resized = prepared
            .resized
            .first()
            .map(|r| (r.width as u32, r.height as u32));
        let mut ids = flint_prompt::prompt_ids(&text, a.chat, &prepared, &a.prompt)?;
        ids.extend(text.encode(skip, false)?);
        let towers = Towers::load(&model)?;
        let (mp, st) = MediaPrompt::encode(&model, &towers, model.exec(), ids, &prepared.media)?;
        for (stage, secs, what) in &prepared.stages {
            eprintln!("{stage}: {secs:.3} s ({what})");
        }
        if st.vision_rows > 0 {
            eprintln!(
                "vision encode: {:.3} s ({} tokens)",
                st.vision_secs, st.vision_rows
            );
        }
        if st.audio_rows > 0 {
            eprintln!(
                "audio encode: {:.3} s ({} tokens)",
                st.audio_secs, st.audio_rows
            );
        }
        mp
    };
    let stop = crate::common::stop_ids(&model, &text, a.chat);
    let sampler = SamplerConfig {
        temperature,
        top_k: a.top_k,
        top_p: a.top_p,
        seed: a.seed,
    };
    let threads = model.exec().threads();
    let isa = model.exec().isa().name();
    if agents == 1 {
        let mut session = Session::new(&model, a.model.kv_options());
        let mut reasoner = reasoning.map(|f| flint_answer::Reasoner::new(f, a.think_budget));
        let (answer, stats) = stream_turn(
            &mut session,
            &text,
            &media_prompt,
            a.max_tokens,
            sampler,
            &stop,
            reasoner.as_mut(),
        )?;
        if let Some(r) = &reasoner {
            eprintln!(
                "reasoning: {} tokens{}{}",
                r.spent(),
                a.think_budget
                    .map_or(String::new(), |b| format!(" (budget {b})")),
                if r.forced() {
                    ", closed by the budget"
                } else {
                    ""
                }
            );
        }
        if let Some(out) = &a.overlay {
            let arch = model
                .file()
                .meta("general.architecture")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let format = a
                .box_format
                .or_else(|| flint_answer::Format::for_architecture(arch))
                .with_context(|| {
                    format!("no box format is known for `{arch}`: pass --box-format")
                })?;
            crate::overlay::render(&files.images[0], resized, format, &answer, out)?;
        }
        eprintln!(
            "load {:.3} s | prompt {} tok, {:.1} tok/s | decode {} tok, {:.1} tok/s | threads {threads}, kernels {isa}",
            load_s,
            stats.prompt_tokens,
            stats.prompt_tok_s(),
            stats.generated,
            stats.decode_tok_s(),
        );
        return Ok(());
    }
    let opts = AgentsOptions {
        agents,
        max_new: a.max_tokens,
        sampler: sampler.clone(),
        stop: stop.clone(),
        kv: a.model.kv_options(),
    };
    let outcome = run_agents_prompt(&model, &media_prompt, &opts)?;
    let answers: Vec<String> = outcome
        .answers
        .iter()
        .map(|ids| {
            let ids: Vec<u32> = ids.iter().copied().filter(|t| !stop.contains(t)).collect();
            text.decode(&ids, true)
        })
        .collect::<Result<_, _>>()?;
    if a.verbose {
        for (i, ans) in answers.iter().enumerate() {
            eprintln!(
                "--- agent {i} (seed {}):\n{}",
                a.seed + i as u64,
                ans.trim()
            );
        }
    }
    let how = match majority(&answers) {
        Some(i) => {
            println!("{}", answers[i].trim());
            format!("majority vote (agent {i})")
        }
        None => {
            // No vote possible: the model reads the candidates and writes one answer, greedily.
            let p = render(&synthesis_prompt(&a.prompt, &answers))?;
            let mut session = Session::new(&model, a.model.kv_options());
            let greedy = SamplerConfig {
                temperature: 0.0,
                ..sampler
            };
            let p = MediaPrompt::text(&model, p);
            stream_turn(&mut session, &text, &p, a.max_tokens, greedy, &stop, None)?;
            "a last pass over the answers".to_string()
        }
    };
    eprintln!(
        "load {:.3} s | {agents} agents, prompt {} tok prefilled once in {:.3} s | decode {} tok in {} steps, {:.3} s | aggregated by {how} | threads {threads}, kernels {isa}",
        load_s,
        outcome.prompt_tokens,
        outcome.prefill_time.as_secs_f64(),
        outcome.generated,
        outcome.steps,
        outcome.decode_time.as_secs_f64(),
    );
    Ok(())
}

/// Generates one turn, streaming whole UTF-8 pieces to stdout; returns the answer's text too. With a
/// `reasoner`, reasoning goes to stderr and only the answer to stdout, and at its budget the reasoner's closing
/// text is fed to the model.
fn stream_turn(
    session: &mut Session<'_>,
    text: &Text,
    prompt: &MediaPrompt,
    max_new: usize,
    sampler: SamplerConfig,
    stop: &[u32],
    mut reasoner: Option<&mut flint_answer::Reasoner>,
) -> anyhow::Result<(String, flint_model::GenStats)> {
    let mut sampler = Sampler::new(sampler);
    let mut stream = TextStream::new(text);
    let mut out = std::io::stdout().lock();
    let mut answer = String::new();
    let mut io_err = None;
    let mut write = |answer_piece: &str, reasoning: &str| -> std::io::Result<()> {
        if !reasoning.is_empty() {
            eprint!("{reasoning}");
        }
        answer.push_str(answer_piece);
        out.write_all(answer_piece.as_bytes())?;
        out.flush()
    };
    let (_, stats, _) = session.generate_with(prompt, max_new, &mut sampler, stop, |id| {
        let piece = match stream.push(id) {
            Ok(p) => p,
            Err(e) => {
                io_err = Some(anyhow::Error::from(e));
                return Step::Stop;
            }
        };
        let (split, force) = match reasoner.as_deref_mut() {
            Some(r) => {
                let s = r.push(&piece);
                let force = s.force.map(|f| text.encode(f, false));
                ((s.answer, s.reasoning), force)
            }
            None => ((piece, String::new()), None),
        };
        if let Err(e) = write(&split.0, &split.1) {
            io_err = Some(e.into());
            return Step::Stop;
        }
        match force {
            None => Step::Continue,
            Some(Ok(ids)) => Step::Force(ids),
            Some(Err(e)) => {
                io_err = Some(e.into());
                Step::Stop
            }
        }
    })?;
    if let Some(r) = reasoner {
        let s = r.finish();
        write(&s.answer, &s.reasoning)?;
    }
    if let Some(e) = io_err {
        return Err(e.context("writing the answer"));
    }
    writeln!(out)?;
    Ok((answer, stats))
}
