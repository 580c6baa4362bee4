//! `flint-quantize`: the offline model tool.

use anyhow::Context;
use clap::{Parser, Subcommand};
use flint_format::DType;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "flint-quantize",
    version,
    about = "Import and quantize checkpoints into .flint files"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Import a Hugging Face folder (config.json + *.safetensors) or a GGUF file.
    Import {
        /// The checkpoint: a folder or a .gguf file.
        src: PathBuf,
        /// Output .flint file (written atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Element type of the weight matrices (norms stay f32).
        #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "bf16"])]
        dtype: String,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Import { src, output, dtype } => {
            let dtype = DType::from_name(&dtype).context("dtype")?;
            let t0 = Instant::now();
            let ck = flint_quantize::import::open(&src)
                .with_context(|| format!("importing {}", src.display()))?;
            let bar = indicatif::ProgressBar::new(ck.plan.items.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} tensors")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_message(format!("writing {}", output.display()));
            flint_quantize::import::write(&ck, &output, dtype, |done, _| {
                bar.set_position(done as u64)
            })
            .with_context(|| format!("writing {}", output.display()))?;
            bar.finish_and_clear();
            let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "imported {} ({}, {} layers{}) -> {} ({:.1} MB, {dtype}) in {:.1}s",
                src.display(),
                ck.config.arch,
                ck.config.num_layers,
                ck.config
                    .moe
                    .as_ref()
                    .map(|m| format!(", {} experts top-{}", m.num_experts, m.top_k))
                    .unwrap_or_default(),
                output.display(),
                size as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
