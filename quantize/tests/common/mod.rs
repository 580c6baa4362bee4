//! Shared by the binary's integration tests.

use std::process::Command;

/// The binary, under `FLINT_TEST_RUNNER` (qemu-user) when the tests run emulated.
pub fn quantize_cmd() -> Command {
    let runner = std::env::var("FLINT_TEST_RUNNER").unwrap_or_default();
    let mut parts = runner.split_whitespace();
    let mut c = Command::new(parts.next().unwrap_or(env!("CARGO_BIN_EXE_flint-quantize")));
    if !runner.trim().is_empty() {
        c.args(parts).arg(env!("CARGO_BIN_EXE_flint-quantize"));
    }
    c
}
