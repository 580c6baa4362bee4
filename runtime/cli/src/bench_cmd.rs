//! `flint bench`: prompt-processing and decode speed, printed as llama-bench-style rows
//! (`pp128: <tok/s>` and `tg64: <tok/s>`), each the best of `--reps` runs.

use crate::common::{load, ModelArgs};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt tokens.
    #[arg(short = 'p', long, default_value_t = 128)]
    pub prompt: usize,
    /// Decoded tokens.
    #[arg(short = 'n', long, default_value_t = 64)]
    pub gen: usize,
    /// Repetitions (the best is reported).
    #[arg(short = 'r', long, default_value_t = 3)]
    pub reps: usize,
}

pub fn run(a: BenchArgs, board: Option<&str>) -> anyhow::Result<()> {
    let (model, load_s) = load(&a.model, board)?;
    let ctx = model.config.max_position_embeddings;
    if a.prompt.max(1) > ctx || a.gen >= ctx {
        anyhow::bail!(
            "-p {} / -n {}: the model's context is {ctx} positions",
            a.prompt,
            a.gen
        );
    }
    let vocab = model.config.vocab_size as u32;
    // Deterministic, spread-out token ids: the speed does not depend on which tokens they are.
    let ids: Vec<u32> = (0..a.prompt.max(1) as u32)
        .map(|i| (i * 7919 + 13) % vocab)
        .collect();
    let (mut best_pp, mut best_tg) = (0f64, 0f64);
    for _ in 0..a.reps.max(1) {
        let mut cache = model.new_cache();
        let t = Instant::now();
        model.forward(&ids, &mut cache, false, None)?;
        best_pp = best_pp.max(ids.len() as f64 / t.elapsed().as_secs_f64());
        if a.gen > 0 {
            let mut cache = model.new_cache();
            model.forward(&ids[..1], &mut cache, false, None)?;
            let t = Instant::now();
            let mut tok = ids[0];
            for _ in 0..a.gen {
                let l = model.forward(&[tok], &mut cache, false, None)?;
                tok = flint_model::sampler::argmax(&l);
            }
            best_tg = best_tg.max(a.gen as f64 / t.elapsed().as_secs_f64());
        }
    }
    println!(
        "model: {} | {} | threads {} | kernels {} | load {:.3} s",
        a.model.model.display(),
        model
            .file()
            .meta("general.weight_type")
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        flint_kernels::threads(),
        flint_kernels::active_isa().name(),
        load_s
    );
    println!("pp{}: {:.2} tok/s", ids.len(), best_pp);
    if a.gen > 0 {
        println!("tg{}: {:.2} tok/s", a.gen, best_tg);
    }
    Ok(())
}
