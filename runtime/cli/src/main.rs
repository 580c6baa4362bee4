//! `flint`: the runtime's command line.
//!
//! Each subcommand lives in its own module; this file only parses and dispatches.

mod bench_cmd;
mod boards_cmd;
mod bridge_cmd;
mod common;
mod constrain;
mod escalate;
mod experts;
mod glasses_cmd;
mod info_cmd;
mod inputs;
mod logits_cmd;
mod media;
mod overlay;
mod overlay_cmd;
mod preprocess_cmd;
mod run_agents;
mod run_cmd;
mod serve_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "flint",
    version,
    about = "On-device runtime for multimodal Mixture-of-Experts models"
)]
struct Cli {
    /// Apply a board profile (a name from `flint boards`, or a path to a TOML file). Explicit flags override it.
    #[arg(long, global = true)]
    board: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generate text from a prompt, streaming tokens.
    Run(run_cmd::RunArgs),
    /// Write the logits of a prompt (token ids, or processor outputs with media) as a float32 .npy [positions, vocab].
    Logits(logits_cmd::LogitsArgs),
    /// Write what the processors make of images, video and audio (and a prompt) as safetensors under HF names.
    Preprocess(preprocess_cmd::PreprocessArgs),
    /// Show a model file's metadata and tensors; --verify checks checksums; --cpu shows CPU features and kernels.
    Info(info_cmd::InfoArgs),
    /// Draw the boxes and points of a model's answer onto its frame, as a PNG.
    Overlay(overlay_cmd::OverlayArgs),
    /// Serve an OpenAI-compatible HTTP API (/v1/chat/completions, streaming and not; /v1/models, /health, /metrics).
    Serve(serve_cmd::ServeArgs),
    /// Measure prompt and decode speed.
    Bench(bench_cmd::BenchArgs),
    /// List the board profiles in targets/.
    Boards(boards_cmd::BoardsArgs),
    /// Firmware bridge tools: decode, encode, simulate.
    Bridge(bridge_cmd::BridgeArgs),
    /// The glasses loop: camera and microphone (or a recording) in, the answer on the display.
    Glasses(glasses_cmd::GlassesArgs),
}

/// Parses the command line. Every option accepts a leading `-` as part of its value, so `--threads -1` is refused
/// by the option's own parser, naming it ("invalid value '-1' for '--threads <THREADS>'"), rather than read as an
/// unknown flag `-1`.
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    fn negatives(c: clap::Command) -> clap::Command {
        c.allow_negative_numbers(true).mut_subcommands(negatives)
    }
    let m = negatives(Cli::command()).get_matches();
    Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`flint info m.flint | head`) would panic in println!.
    // Restore the default action: the process ends quietly, as command-line tools do.
    #[cfg(unix)]
    // SAFETY: called first thing, before any thread exists; SIG_DFL is a valid action for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = parse();
    let board = cli.board.as_deref();
    let result = match cli.cmd {
        Cmd::Run(a) => run_cmd::run(a, board),
        Cmd::Logits(a) => logits_cmd::run(a, board),
        Cmd::Preprocess(a) => preprocess_cmd::run(a, board),
        Cmd::Info(a) => info_cmd::run(a),
        Cmd::Overlay(a) => overlay_cmd::run(a),
        Cmd::Serve(a) => serve_cmd::run(a, board),
        Cmd::Bench(a) => bench_cmd::run(a, board),
        Cmd::Boards(a) => boards_cmd::run(a),
        Cmd::Bridge(a) => bridge_cmd::run(a),
        Cmd::Glasses(a) => glasses_cmd::run(a, board),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
