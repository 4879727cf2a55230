//! Placeholder until the owner of this subcommand fills it in.

#[derive(Debug, clap::Args)]
pub struct InfoArgs {}

pub fn run(_args: InfoArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
