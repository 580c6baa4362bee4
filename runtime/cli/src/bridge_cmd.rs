//! `flint bridge`: owned by the firmware-bridge work.
#[derive(clap::Args, Debug)]
pub struct BridgeArgs {}
pub fn run(_a: BridgeArgs) -> anyhow::Result<()> {
    anyhow::bail!("flint bridge: not built yet")
}
