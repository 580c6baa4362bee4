//! `flint boards`: owned by the ARM-targets work.
#[derive(clap::Args, Debug)]
pub struct BoardsArgs {}
pub fn run(_a: BoardsArgs) -> anyhow::Result<()> {
    anyhow::bail!("flint boards: not built yet")
}
