//! `flint run --agents N`: Contemplating mode. The prompt is prefilled once, N agents decode it together, and
//! their answers are aggregated: a majority vote, else the remote (`--escalate-when agents-disagree`), else a
//! last greedy pass in which the model reads them all.

use crate::escalate::When;
use crate::run_cmd::Out;
use flint_model::agents::{majority, run_agents_prompt, synthesis_prompt, AgentsOptions};
use flint_model::multimodal::MediaPrompt;
use flint_model::SamplerConfig;

pub fn run(
    out: &Out<'_>,
    agents: usize,
    sampler: SamplerConfig,
    load_s: f64,
    escalate: Option<When>,
) -> anyhow::Result<()> {
    let (a, flint) = (out.a, out.flint);
    let (model, text) = (flint.model(), flint.text());
    let opts = flint_model::ChatOptions {
        reasoning_effort: a.reasoning_effort.clone(),
        ..Default::default()
    };
    let render = |content: &str| -> anyhow::Result<Vec<u32>> {
        let rendered = flint_prompt::render_with(text, a.chat, content, &opts)?;
        Ok(text.encode(&rendered, !a.chat)?)
    };
    let prompt = if out.files.is_empty() {
        MediaPrompt::text(model, render(&a.prompt)?)
    } else {
        let prepared = flint_prompt::prepare(model, out.files)?;
        let ids = flint_prompt::prompt_ids_with(text, a.chat, &prepared, &a.prompt, &opts)?;
        let towers = flint_model::multimodal::Towers::load(model)?;
        let (mp, st) = MediaPrompt::encode(model, &towers, model.exec(), ids, &prepared.media)?;
        for (stage, secs, what) in &prepared.stages {
            eprintln!("{stage}: {secs:.3} s ({what})");
        }
        if st.vision_rows + st.audio_rows > 0 {
            eprintln!(
                "towers: {:.3} s ({} vision, {} audio tokens)",
                st.vision_secs + st.audio_secs,
                st.vision_rows,
                st.audio_rows
            );
        }
        mp
    };
    let stop = flint.stop_ids(a.chat);
    let opts = AgentsOptions {
        agents,
        max_new: a.max_tokens,
        sampler: sampler.clone(),
        stop: stop.clone(),
        kv: a.model.kv_options(),
    };
    let outcome = run_agents_prompt(model, &prompt, &opts)?;
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
    let remote = || {
        (escalate == Some(When::AgentsDisagree))
            .then(|| out.remote())
            .flatten()
    };
    let how = match majority(&answers) {
        Some(i) => {
            println!("{}", answers[i].trim());
            format!("majority vote (agent {i})")
        }
        None => match remote() {
            Some(t) => {
                println!("{}", t.trim());
                "the remote (the agents disagreed)".to_string()
            }
            None => {
                // No vote possible: the model reads the candidates and writes one answer, greedily.
                let kv = a.model.kv_options();
                let mut chat = if a.chat {
                    flint.chat_with(kv)
                } else {
                    flint.raw(kv)
                };
                let greedy = SamplerConfig {
                    temperature: 0.0,
                    ..sampler
                };
                let mut turn = chat
                    .turn(&synthesis_prompt(&a.prompt, &answers))
                    .max_tokens(a.max_tokens)
                    .sampling(greedy);
                if let Some(e) = &a.reasoning_effort {
                    turn = turn.reasoning_effort(e);
                }
                out.stream(turn, false)?;
                "a last pass over the answers".to_string()
            }
        },
    };
    eprintln!(
        "load {:.3} s | {agents} agents, prompt {} tok prefilled once in {:.3} s | decode {} tok in {} steps, {:.3} s | aggregated by {how} | threads {}, kernels {}",
        load_s,
        outcome.prompt_tokens,
        outcome.prefill_time.as_secs_f64(),
        outcome.generated,
        outcome.steps,
        outcome.decode_time.as_secs_f64(),
        model.exec().threads(),
        model.exec().isa().name(),
    );
    Ok(())
}
