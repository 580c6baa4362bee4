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
    /// Quantize a float .flint file's weight matrices and measure the loss against it (KL, top-1, per layer).
    Quantize {
        /// The float (f32, f16, bf16) .flint model.
        input: PathBuf,
        /// Output .flint file (written atomically, with the report in its `quantization` metadata).
        #[arg(short, long)]
        output: PathBuf,
        /// Type of the weight matrices (blocks of 32, round to nearest).
        #[arg(long, value_parser = ["q8", "q4", "q4m", "q2m"])]
        weights: String,
        /// Per-tensor override PATTERN=TYPE (`*` wildcard; TYPE f32|f16|bf16|q8|q4|q4m|q2m); repeatable, last match
        /// wins. Routers (`*.ffn_router`, `*.shexp_gate`) keep their input precision unless overridden.
        #[arg(long, value_name = "PATTERN=TYPE")]
        keep: Vec<String>,
        /// Calibration set: a text file, or a folder of .txt text, .jpg/.png images and .wav clips, each medium
        /// with an optional NAME.prompt question (docs/CALIBRATION.md) [default: bench/calibration.txt].
        #[arg(long, value_name = "FILE|DIR")]
        calib: Option<PathBuf>,
        /// Tokens per measurement chunk, each from an empty cache (capped at the model's context).
        #[arg(long, default_value_t = 256)]
        ctx: usize,
        /// Worker threads for the measurement (0 = all cores).
        #[arg(short, long, default_value_t = 1)]
        threads: usize,
        /// Quantize q8 / q4 blocks by plain squared error, without the calibration text's activation statistics
        /// (the importance matrix).
        #[arg(long)]
        no_imatrix: bool,
        /// Collect the activation statistics on this text instead of the calibration text (e.g. to measure the
        /// loss on text the weighting never saw).
        #[arg(long, value_name = "FILE", conflicts_with = "no_imatrix")]
        imatrix_text: Option<PathBuf>,
        /// Choose each expert's precision (each matrix's, in a dense model): `auto` promotes from --weights to q8
        /// where the calibration set's routing and activation statistics say the bytes buy the most accuracy,
        /// within --target-bpw or --target-size.
        #[arg(long, value_parser = ["auto"], conflicts_with = "no_imatrix")]
        experts: Option<String>,
        /// With --experts auto: bits per weight over all the matrices.
        #[arg(
            long,
            value_name = "B",
            requires = "experts",
            conflicts_with = "target_size"
        )]
        target_bpw: Option<f64>,
        /// With --experts auto: the output file's size (bytes, with K, M or G).
        #[arg(long, value_name = "SIZE", requires = "experts")]
        target_size: Option<String>,
    },
}

fn bar_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len}")
        .expect("static template")
        .progress_chars("=> ")
}

/// The quantize options about calibration text.
struct Calibration {
    calib: Option<PathBuf>,
    ctx: usize,
    imatrix: bool,
    imatrix_text: Option<PathBuf>,
    experts: Option<flint_quantize::quant::mix::Target>,
}

/// `--experts auto` with its target, checked.
fn experts_target(
    experts: Option<&str>,
    bpw: Option<f64>,
    size: Option<&str>,
) -> anyhow::Result<Option<flint_quantize::quant::mix::Target>> {
    use flint_quantize::quant::mix::Target;
    if experts.is_none() {
        return Ok(None);
    }
    match (bpw, size) {
        (Some(b), _) if !(b.is_finite() && b > 0.0 && b <= 32.0) => {
            anyhow::bail!("--target-bpw {b}: expected bits per weight in (0, 32]")
        }
        (Some(b), _) => Ok(Some(Target::Bpw(b))),
        (None, Some(s)) if s.trim().ends_with('%') => {
            anyhow::bail!(
                "--target-size {s}: give a size in bytes (with K, M or G), not a percentage"
            )
        }
        (None, Some(s)) => Ok(Some(Target::Size(
            flint_model::paging::parse_size(s, 0)
                .map_err(|e| anyhow::anyhow!("--target-size: {e}"))?,
        ))),
        (None, None) => anyhow::bail!("--experts auto needs --target-bpw B or --target-size SIZE"),
    }
}

fn quantize(
    input: PathBuf,
    output: PathBuf,
    weights: &str,
    keep: &[String],
    threads: usize,
    calibration: Calibration,
) -> anyhow::Result<()> {
    use flint_quantize::quant::{self, KeepRule, Stage};
    let weights = DType::from_name(weights).context("--weights")?;
    let keep = keep
        .iter()
        .map(|k| KeepRule::parse(k))
        .collect::<Result<Vec<_>, _>>()?;
    flint_kernels::select_from_env().context("FLINT_KERNELS")?;
    flint_kernels::set_threads(threads);
    let opts = quant::Options {
        weights,
        keep,
        calib: calibration.calib,
        ctx: calibration.ctx,
        imatrix: calibration.imatrix,
        imatrix_text: calibration.imatrix_text,
        experts: calibration.experts,
    };
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(bar_style());
    let mut stage = None;
    let report = quant::quantize(&input, &output, &opts, |s, done, total| {
        if stage != Some(s) {
            stage = Some(s);
            bar.reset();
            bar.set_length(total as u64);
            bar.set_message(match s {
                Stage::Calibrate => "collecting activation statistics (chunks)".to_string(),
                Stage::Choose => {
                    "--experts auto: each matrix at every level, then a probe per kind (steps)"
                        .to_string()
                }
                Stage::Quantize => format!("quantizing to {weights} (tensors)"),
                Stage::CalibrateMedia => {
                    "collecting activation statistics (media prompts)".to_string()
                }
                Stage::Measure => "measuring against the input (chunks)".to_string(),
                Stage::MeasureMedia => "measuring against the input (media prompts)".to_string(),
                Stage::Write => format!("writing {}", output.display()),
            });
        }
        bar.set_position(done as u64);
    })
    .with_context(|| format!("quantizing {} to {}", input.display(), output.display()))?;
    bar.finish_and_clear();
    println!(
        "{} -> {} ({weights}) in {:.1} s",
        input.display(),
        output.display(),
        t0.elapsed().as_secs_f64()
    );
    println!("{report}");
    Ok(())
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
        Cmd::Quantize {
            input,
            output,
            weights,
            keep,
            calib,
            ctx,
            threads,
            no_imatrix,
            imatrix_text,
            experts,
            target_bpw,
            target_size,
        } => quantize(
            input,
            output,
            &weights,
            &keep,
            threads,
            Calibration {
                calib,
                ctx,
                imatrix: !no_imatrix,
                imatrix_text,
                experts: experts_target(experts.as_deref(), target_bpw, target_size.as_deref())?,
            },
        ),
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
