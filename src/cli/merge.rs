//! `microtask merge`: a folder of classify shards, checked and joined into one votes file.

use microtask::data::parquet::is_parquet;
use microtask::error::Error;
use microtask::job::ShardSet;
use microtask::output::Outputs;
use std::path::PathBuf;

/// Join the shards of a classify job (`classify --shard I/N --out DIR`) into one votes file, the
/// same bytes one run over all the items writes. Refuses missing, duplicate, overlapping or
/// mismatched shards (another model, other data, another microtask version) and part files that
/// changed since their manifest was written.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The folder the shards wrote (`part-I-of-N.csv` and `part-I-of-N.json`).
    pub dir: PathBuf,
    /// The merged votes file (a name ending in `.gz` is compressed).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(a: MergeArgs) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    if is_parquet(&a.out) {
        return Err(Error::Usage(format!(
            "--out {}: merge writes the CSV of one run; for Parquet, run `tally` on the folder or \
             classify with --out NAME.parquet on one machine",
            a.out.display()
        ))
        .into());
    }
    let set = ShardSet::open(&a.dir)?;
    let mut outs = Outputs::new();
    for f in set.files() {
        outs.input("a shard", f);
    }
    outs.output("--out", &a.out);
    outs.check()?;
    set.merge(&a.out)?;
    let counts = set.counts();
    let workers = counts.worker_correct.len();
    let stats = microtask::job::Counts::to_stats(&counts, workers);
    println!(
        "merged {} shards of {}: {} items x {workers} workers in {:.2} s",
        set.parts.len(),
        a.dir.display(),
        stats.items,
        t.elapsed().as_secs_f64()
    );
    if stats.labelled > 0 {
        for r in 0..workers {
            println!(
                "  worker {r}: accuracy {:.4}",
                stats.worker_accuracy(r).unwrap_or(0.0)
            );
        }
        println!(
            "  majority vote: accuracy {:.4}",
            stats.majority_accuracy().unwrap_or(0.0)
        );
    }
    println!("votes -> {}", a.out.display());
    Ok(())
}
