//! `flint`: the runtime's command line.
//!
//! Each subcommand lives in its own module; this file only parses and dispatches.

mod boards_cmd;
mod bridge_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "flint", version, about = "On-device runtime for multimodal Mixture-of-Experts models")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the board profiles in targets/.
    Boards(boards_cmd::BoardsArgs),
    /// Firmware bridge tools: decode, encode, simulate.
    Bridge(bridge_cmd::BridgeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Boards(a) => boards_cmd::run(a),
        Cmd::Bridge(a) => bridge_cmd::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
