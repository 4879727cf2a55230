//! Placeholder until the owner of this subcommand fills it in.

#[derive(Debug, clap::Args)]
pub struct TallyArgs {}

pub fn run(_args: TallyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
