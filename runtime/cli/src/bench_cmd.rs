//! `flint bench`: prompt-processing and decode speed as llama-bench-style rows (`pp128: <tok/s>` and
//! `tg64: <tok/s>`), each the mean over `--reps` runs with its standard deviation and range (llama-bench reports
//! the mean: compare like with like). `-d` measures after that many tokens already in the cache; `--agents N`
//! times Contemplating mode (one prefill, N forks decoded together) as prefill, decode-only and total seconds.

use crate::common::{load, ModelArgs};
use anyhow::Context;
use flint_model::agents::{run_agents, AgentsOptions};
use flint_model::{Model, SamplerConfig};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt tokens.
    #[arg(short = 'p', long, default_value_t = 128)]
    pub prompt: usize,
    /// Decoded tokens (per agent with --agents).
    #[arg(short = 'n', long, default_value_t = 64)]
    pub gen: usize,
    /// Tokens already in the cache before each measurement (llama-bench's -d).
    #[arg(short = 'd', long, default_value_t = 0)]
    pub depth: usize,
    /// Repetitions (the mean and spread are reported).
    #[arg(short = 'r', long, default_value_t = 3)]
    pub reps: usize,
    /// Time Contemplating mode with this many agents sharing the prompt (sampled at temperature 1, seeds 0..N).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub agents: Option<u16>,
    /// Drop the model file from the page cache before loading it (a cold start, as after a reboot).
    #[arg(long)]
    pub cold: bool,
    /// Decode by feeding this text's tokens one at a time (teacher forcing) instead of each step's most likely
    /// token, so the experts are routed as on text (the model's tokenizer; each byte modulo the vocabulary without
    /// one).
    #[arg(long, value_name = "FILE")]
    pub text: Option<std::path::PathBuf>,
}

/// The token ids of `path` for `model`.
fn text_ids(model: &Model, path: &std::path::Path) -> anyhow::Result<Vec<u32>> {
    let text = crate::common::read_text_capped(path, 16 << 20)?;
    let ids = match flint_model::Text::from_file(model.file())? {
        Some(t) => t.encode(&text, false)?,
        None => {
            let v = model.config.vocab_size as u32;
            text.bytes().map(|b| b as u32 % v).collect()
        }
    };
    if ids.is_empty() {
        anyhow::bail!("--text {}: no tokens", path.display());
    }
    Ok(ids)
}

/// Asks the kernel to drop `path`'s cached pages (clean ones; a best effort).
fn drop_cache(path: &std::path::Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let rc = flint_model::paging::drop_cached(&f, 0, 0);
    if rc != 0 {
        anyhow::bail!("{}: posix_fadvise(DONTNEED): error {rc}", path.display());
    }
    Ok(())
}

/// The expert pager's figures for a timed section of `tokens` tokens, summed over its repetitions.
fn paging_row(label: &str, s: &[flint_model::PagingStats], tokens: usize) {
    if s.is_empty() {
        return;
    }
    let sum = |f: fn(&flint_model::PagingStats) -> u64| s.iter().map(f).sum::<u64>();
    let (wanted, hits, predicted, right) = (
        sum(|x| x.wanted),
        sum(|x| x.hits),
        sum(|x| x.predicted),
        sum(|x| x.predicted_right),
    );
    let bytes = sum(|x| x.bytes_read);
    let peak = s.iter().map(|x| x.peak_resident).max().unwrap_or(0);
    let wait: f64 = s.iter().map(|x| x.wait_seconds).sum();
    let n = (tokens * s.len()).max(1) as f64;
    println!(
        "{label} paging: hit rate {:.3} ({hits}/{wanted}), in flight {}, prediction {:.3} ({right}/{predicted}), \
         {:.2} MiB read per token, {:.1} ms waited per token, peak resident {:.1} of {:.1} MiB",
        hits as f64 / wanted.max(1) as f64,
        sum(|x| x.in_flight),
        right as f64 / predicted.max(1) as f64,
        bytes as f64 / n / (1 << 20) as f64,
        1e3 * wait / n,
        peak as f64 / (1 << 20) as f64,
        s[0].budget as f64 / (1 << 20) as f64,
    );
}

/// Mean, standard deviation, minimum and maximum of some samples.
fn summary(xs: &[f64]) -> (f64, f64, f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

fn row(label: &str, xs: &[f64], unit: &str) {
    let (m, sd, lo, hi) = summary(xs);
    println!(
        "{label}: {m:.2} {unit} ± {sd:.2} (min {lo:.2}, max {hi:.2}, {} reps)",
        xs.len()
    );
}

/// Deterministic, spread-out token ids: the speed does not depend on which tokens they are.
fn ids(n: usize, salt: u32, vocab: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(7919).wrapping_add(13 + salt)) % vocab)
        .collect()
}

pub fn run(mut a: BenchArgs, board: Option<&str>) -> anyhow::Result<()> {
    if a.cold {
        drop_cache(&a.model.model)?;
    }
    a.model.kv_tokens = Some(a.depth + a.prompt.max(1) + a.gen);
    let (model, load_s) = load(&a.model, board)?;
    let limit = model.config.max_position_embeddings;
    let need = a.depth + a.prompt.max(1) + a.gen;
    if need > limit {
        anyhow::bail!(
            "-d {} + -p {} + -n {} = {need} positions, more than the model's context of {limit}",
            a.depth,
            a.prompt,
            a.gen
        );
    }
    let vocab = model.config.vocab_size as u32;
    let prompt = ids(a.prompt.max(1), 0, vocab);
    let history = ids(a.depth, 1, vocab);
    let forced = a.text.as_deref().map(|p| text_ids(&model, p)).transpose()?;
    println!(
        "model: {} | {} | threads {} | kernels {} | kv {:?} | depth {} | load {:.3} s",
        a.model.model.display(),
        model
            .file()
            .meta("general.weight_type")
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        model.exec().threads(),
        model.exec().isa().name(),
        a.model.kv,
        a.depth,
        load_s
    );
    let reps = a.reps.max(1);
    if let Some(n) = a.agents {
        return bench_agents(&model, &a, &prompt, n as usize, reps);
    }
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    let (mut pp_paging, mut tg_paging) = (Vec::new(), Vec::new());
    let reset = || model.pager().inspect(|p| p.reset_stats());
    let stats = |into: &mut Vec<flint_model::PagingStats>| {
        if let Some(p) = model.pager() {
            into.push(p.stats());
        }
    };
    for _ in 0..reps {
        // Prefill: the prompt after `depth` tokens of history.
        let mut cache = model.new_cache_with(a.model.kv_options());
        if !history.is_empty() {
            model.forward(&history, &mut cache, false, None)?;
        }
        reset();
        let t = Instant::now();
        model.forward(&prompt, &mut cache, false, None)?;
        pp.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
        stats(&mut pp_paging);
        if a.gen > 0 {
            // Decode: `gen` tokens one at a time after `depth` tokens (or one, when depth is 0).
            let mut cache = model.new_cache_with(a.model.kv_options());
            let start: &[u32] = if history.is_empty() {
                &prompt[..1]
            } else {
                &history
            };
            let mut l = model.forward(start, &mut cache, false, None)?;
            reset();
            let t = Instant::now();
            for i in 0..a.gen {
                let tok = match &forced {
                    Some(t) => t[i % t.len()],
                    None => flint_model::sampler::argmax(&l),
                };
                l = model.forward(&[tok], &mut cache, false, None)?;
            }
            tg.push(a.gen as f64 / t.elapsed().as_secs_f64());
            stats(&mut tg_paging);
        }
    }
    row(&format!("pp{}", prompt.len()), &pp, "tok/s");
    paging_row(&format!("pp{}", prompt.len()), &pp_paging, prompt.len());
    if a.gen > 0 {
        row(&format!("tg{}", a.gen), &tg, "tok/s");
        paging_row(&format!("tg{}", a.gen), &tg_paging, a.gen);
    }
    Ok(())
}

fn bench_agents(
    model: &Model,
    a: &BenchArgs,
    prompt: &[u32],
    n: usize,
    reps: usize,
) -> anyhow::Result<()> {
    let (mut pre, mut dec, mut tot) = (Vec::new(), Vec::new(), Vec::new());
    let mut gen = 0;
    for _ in 0..reps {
        let opts = AgentsOptions {
            agents: n,
            max_new: a.gen.max(1),
            sampler: SamplerConfig {
                temperature: 1.0,
                ..Default::default()
            },
            stop: Vec::new(),
            kv: a.model.kv_options(),
        };
        let mut full = prompt.to_vec();
        let t = Instant::now();
        if a.depth > 0 {
            // History then prompt, as one prefill: agents share all of it.
            let mut h = ids(a.depth, 1, model.config.vocab_size as u32);
            h.extend_from_slice(prompt);
            full = h;
        }
        let o = run_agents(model, &full, &opts)?;
        tot.push(t.elapsed().as_secs_f64());
        pre.push(o.prefill_time.as_secs_f64());
        dec.push(o.decode_time.as_secs_f64());
        gen = o.generated;
    }
    println!(
        "agents{n} pp{}+tg{}: {gen} tokens generated per run",
        prompt.len(),
        a.gen
    );
    row("prefill", &pre, "s");
    row("decode", &dec, "s");
    row("total", &tot, "s");
    let tg: Vec<f64> = dec.iter().map(|d| gen as f64 / d).collect();
    row(&format!("agents{n}_tg"), &tg, "tok/s");
    Ok(())
}
