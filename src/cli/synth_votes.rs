//! Placeholder until the owner of this subcommand fills it in.

#[derive(Debug, clap::Args)]
pub struct SynthVotesArgs {}

pub fn run(_args: SynthVotesArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
