//! `microtask synth-votes`: simulated crowd answers for tests and benchmarks.

use super::numbers;
use microtask::data::parquet::csv_only;
use microtask::data::synth_votes::{generate, CrowdConfig};
use microtask::output::Outputs;
use std::path::PathBuf;
use std::time::Instant;

/// Write simulated crowd answers: workers of varied skill (each with a confusion matrix, some of
/// them spammers) answer tasks of known class. The same seed gives the same files.
#[derive(Debug, clap::Args)]
pub struct SynthVotesArgs {
    /// Number of tasks (named 0..N).
    #[arg(long, default_value_t = 10_000, value_parser = numbers::at_least_one)]
    pub tasks: usize,

    /// Number of workers (named w0..wW).
    #[arg(long, default_value_t = 100, value_parser = numbers::at_least_one)]
    pub workers: usize,

    /// Distinct workers answering each task.
    #[arg(long, default_value_t = 5, value_parser = numbers::at_least_one)]
    pub per_task: usize,

    /// Number of classes (labels 0..C).
    #[arg(long, default_value_t = 2)]
    pub classes: usize,

    /// Fraction of workers who are spammers (half answer at random, half always the same).
    #[arg(long, default_value_t = 0.1, value_parser = numbers::fraction_f32)]
    pub spammers: f32,

    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Where to write the answers: CSV `task,worker,label` (Parquet when the name ends in
    /// `.parquet`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Where to write every task's true class: CSV `task,label`.
    #[arg(long, value_name = "FILE")]
    pub gold_out: Option<PathBuf>,
}

pub fn run(args: SynthVotesArgs) -> anyhow::Result<()> {
    csv_only("--gold-out", args.gold_out.as_deref())?;
    let mut outs = Outputs::new();
    outs.output("--out", &args.out);
    if let Some(g) = &args.gold_out {
        outs.output("--gold-out", g);
    }
    outs.check()?;
    let t = Instant::now();
    let cfg = CrowdConfig {
        spammers: args.spammers,
        ..CrowdConfig::new(
            args.tasks,
            args.workers,
            args.per_task,
            args.classes,
            args.seed,
        )
    };
    let crowd = generate(&cfg)?;
    // The answers and their gold are renamed together.
    outs.commit(|| {
        crowd.write_votes(&args.out)?;
        if let Some(g) = &args.gold_out {
            crowd.write_gold(g)?;
        }
        Ok(())
    })?;
    println!(
        "wrote {} answers on {} tasks from {} workers ({} classes) to {} in {:.2} s",
        crowd.worker.len(),
        args.tasks,
        args.workers,
        args.classes,
        args.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
