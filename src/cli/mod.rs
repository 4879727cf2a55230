//! Subcommands, one file each.

mod bench;
mod checks;
mod classify;
mod device;
mod export;
mod info;
mod merge;
mod numbers;
mod plot;
mod progress;
mod report;
mod run;
pub mod runtime_dir;
mod synth_votes;
mod tally;
mod train;
mod values;

use clap::{Parser, Subcommand};

/// microtask: split a big labelling job into microtasks, classify them with an ensemble of
/// softmax workers on the GPU or CPU, and aggregate the votes (and crowd answers) into trusted
/// labels with quality control.
#[derive(Debug, Parser)]
#[command(name = "microtask", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole pipeline: train an ensemble, classify, tally, report (synthetic data by default).
    Run(run::RunArgs),
    /// Train an ensemble of softmax workers, each on its own shard, and save it.
    Train(train::TrainArgs),
    /// Classify items with every worker of a model and write the votes file.
    Classify(classify::ClassifyArgs),
    /// Join the shards of a classify job into one votes file, checked.
    Merge(merge::MergeArgs),
    /// Write a data set (e.g. synth:N) as a raw IDX file, for scale tests.
    Export(export::ExportArgs),
    /// Time classification on every backend (and the peers), side by side.
    Bench(bench::BenchArgs),
    /// Aggregate votes/answers into one label per task.
    Tally(tally::TallyArgs),
    /// Write simulated crowd answers (workers of varied skill) for tests and benchmarks.
    SynthVotes(synth_votes::SynthVotesArgs),
    /// List GPU adapters, the one `auto` would choose, and their limits.
    Info(info::InfoArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Train(a) => train::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Export(a) => export::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Tally(a) => tally::run(a),
        Command::SynthVotes(a) => synth_votes::run(a),
        Command::Info(a) => info::run(a),
    }
}

/// The exit code of a failed command: 2 for a usage error, 75 for an interrupted job, else 1.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use microtask::Error;
    let found = e.chain().find_map(|c| c.downcast_ref::<Error>());
    match found {
        Some(Error::Usage(_)) => 2,
        Some(Error::Interrupted(_)) => microtask::error::INTERRUPTED_EXIT,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
