//! `microtask tally`: aggregate votes/answers into one label per task, with quality control.

use super::numbers;
use super::values::{BackendArg, MethodArg};
use anyhow::{bail, Context};
use microtask::aggregate::{self, quality, review, DsOptions, Method, ModelProbs, Options};
use microtask::backend::cpu::CpuBackend;
use microtask::backend::{select, Backend};
use microtask::data::parquet::csv_only;
use microtask::data::votes::{describe_paths, read_gold, read_votes};
use microtask::job::merge::expand_votes;
use microtask::output::Outputs;
use microtask::Error;
use std::path::PathBuf;
use std::time::Instant;

/// Aggregate answers (`task,worker,label[,confidence]` CSV: model votes, crowd answers, or both)
/// into one label per task. Task, worker and label are strings; the outputs use them as given.
#[derive(Debug, clap::Args)]
pub struct TallyArgs {
    /// Votes file(s), header `task,worker,label[,confidence]`. Repeat the flag (or list several
    /// files) to merge model votes, crowd answers and answers that came back from review. When a
    /// worker answered a task more than once, its last answer counts. A folder of classify
    /// shards (`classify --shard I/N --out DIR`) reads its part files, checked as `merge` does.
    /// A name ending in `.parquet` is read as Parquet: columns task, worker, label (strings or
    /// integers) and optionally confidence.
    #[arg(long = "votes", value_name = "FILE", required = true, num_args = 1..)]
    pub votes: Vec<PathBuf>,

    /// Where to write the labels: CSV `task,label,confidence,answers` (Parquet when the name
    /// ends in `.parquet`).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Aggregation method. The default, bayes, has the best mean rank over the shared crowd sets
    /// and synthetic crowds of many shapes (docs/aggregation.md).
    #[arg(long, value_enum, default_value_t = MethodArg::Bayes)]
    pub method: MethodArg,

    /// A model's class probabilities, .npy f32 [items, members, classes] or [items, classes]
    /// (row i = the task whose id is i; members averaged; column c = the class named c). They
    /// enter the bayes aggregate with a weight fitted from their agreement with the annotators;
    /// rows nobody answered are candidates for --review-out.
    #[arg(long, value_name = "FILE")]
    pub model_probs: Option<PathBuf>,

    /// Gold labels, CSV `task,label`: prints the accuracy of the aggregate (and per worker in
    /// --workers-out). Unless --gold-score-only, wmv weights workers by their gold accuracy and
    /// ds and bayes clamp gold tasks to their label (the accuracy printed is then that of the
    /// label the answers alone give on those tasks); the other methods use gold for scoring only.
    /// Gold tasks absent from the votes are ignored with a warning; a gold label that is not
    /// among the votes' labels is an error.
    #[arg(long, value_name = "FILE")]
    pub gold: Option<PathBuf>,

    /// Use --gold only to score the aggregate, not to fit it: an honest accuracy estimate.
    #[arg(long, requires = "gold")]
    pub gold_score_only: bool,

    /// Dawid-Skene: at most this many EM iterations.
    #[arg(long, default_value_t = 100, value_parser = numbers::at_least_one)]
    pub max_iters: usize,

    /// Dawid-Skene: stop when the mean log-likelihood per answer gains less than this;
    /// 0 runs exactly --max-iters iterations.
    #[arg(long, default_value_t = 1e-6, value_parser = numbers::non_negative_f64)]
    pub tol: f64,

    /// Dawid-Skene: pseudo-count added to every confusion count and class total.
    #[arg(long, default_value_t = aggregate::dawid_skene::DEFAULT_SMOOTHING, value_parser = numbers::positive_f32)]
    pub smoothing: f32,

    /// Per-worker quality, CSV with the columns worker, answers, agreement (with the aggregate),
    /// estimated_accuracy (from the method's parameters: skills, spamming probabilities,
    /// confusion diagonals; from the posteriors with ds; agreement with mv, wmv and kos),
    /// gold_answers and gold_accuracy (empty without gold answers).
    #[arg(long, value_name = "FILE")]
    pub workers_out: Option<PathBuf>,

    /// Tasks to review: CSV `task,label,confidence,answers,suggested_answers,value` with the
    /// tasks whose confidence is below --review-below, ranked by the expected value of one more
    /// answer (the expected rise of the probability that the label is right); with
    /// --model-probs also the tasks nobody answered yet (answers 0). Collect the suggested extra
    /// answers and pass them back as another --votes file.
    #[arg(long, value_name = "FILE", requires = "review_below")]
    pub review_out: Option<PathBuf>,

    /// Confidence threshold (0..=1) for --review-out.
    #[arg(long, value_name = "P", requires = "review_out", value_parser = numbers::fraction_f32)]
    pub review_below: Option<f32>,

    /// Per-task class probabilities: CSV `task,<class>...` (vote shares for mv, weight shares
    /// for wmv, posteriors for the others; one-hot for kos); Parquet when the name ends in
    /// `.parquet`.
    #[arg(long, value_name = "FILE")]
    pub posteriors_out: Option<PathBuf>,

    /// Print a one-line JSON summary instead of the text report.
    #[arg(long)]
    pub json: bool,

    /// Where the majority vote and Dawid-Skene's passes over the answers run (the rest of wmv
    /// runs on the CPU). `auto` looks for a GPU only from 1,000,000 answers on.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
}

/// `--backend auto` looks for a GPU only for this many answers or more: below, the CPU is done
/// in about the time it takes to open a device, and looking for adapters wakes the drivers
/// (and their messages) for nothing.
const AUTO_GPU_MIN_ANSWERS: usize = 1_000_000;

fn choose_backend(arg: BackendArg, answers: usize) -> microtask::Result<Box<dyn Backend>> {
    if arg == BackendArg::Auto && answers < AUTO_GPU_MIN_ANSWERS {
        return Ok(Box::new(CpuBackend::new(format!(
            "--backend auto: {answers} answers, fewer than the {AUTO_GPU_MIN_ANSWERS} a GPU is looked for at"
        ))));
    }
    select(arg.into())
}

pub fn run(args: TallyArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    // A folder of classify shards stands for its part files, checked as `merge` checks them.
    let votes_files = expand_votes(&args.votes)?;
    csv_only("--workers-out", args.workers_out.as_deref())?;
    csv_only("--review-out", args.review_out.as_deref())?;
    let mut outs = Outputs::new();
    for v in &votes_files {
        outs.input("--votes", v);
    }
    if let Some(g) = &args.gold {
        outs.input("--gold", g);
    }
    outs.output("--out", &args.out);
    for (flag, path) in [
        ("--workers-out", &args.workers_out),
        ("--review-out", &args.review_out),
        ("--posteriors-out", &args.posteriors_out),
    ] {
        if let Some(p) = path {
            outs.output(flag, p);
        }
    }
    let method: Method = args.method.into();
    if let Some(p) = &args.model_probs {
        if method != Method::Bayes {
            bail!("--model-probs works with --method bayes (the default), not {method}");
        }
        outs.input("--model-probs", p);
    }
    outs.check()?;
    let loaded = read_votes(&votes_files)?;
    let votes = &loaded.table;
    let backend = choose_backend(args.backend, votes.len())?;
    if loaded.duplicates > 0 {
        eprintln!(
            "note: {} repeated answers (same worker, same task) replaced by that worker's last answer",
            loaded.duplicates
        );
    }
    let gold = match &args.gold {
        Some(path) => {
            let g = read_gold(path, votes)?;
            if g.absent > 0 {
                eprintln!(
                    "warning: {}: {} gold tasks do not appear in the votes and are ignored",
                    path.display(),
                    g.absent
                );
            }
            Some(g)
        }
        None => None,
    };
    let model = match &args.model_probs {
        Some(p) => Some(ModelProbs::read(p)?),
        None => None,
    };
    let opts = Options {
        method,
        ds: DsOptions {
            max_iters: args.max_iters,
            tol: args.tol,
            smoothing: args.smoothing,
        },
        posteriors: args.posteriors_out.is_some() || args.review_out.is_some(),
    };
    let fit_gold = if args.gold_score_only {
        None
    } else {
        gold.as_ref()
    };
    let agg = match &model {
        Some(m) => aggregate::fitted::aggregate(votes, fit_gold, method, Some(m)),
        None => aggregate::aggregate(votes, fit_gold, &opts, backend.as_ref()),
    }
    .with_context(|| format!("aggregating {}", describe_paths(&args.votes)))?;
    let score = gold.as_ref().map(|g| quality::score(&agg, g));

    let need_workers = args.workers_out.is_some() || args.review_out.is_some();
    let workers = need_workers.then(|| quality::workers(votes, &agg, gold.as_ref()));
    let review_items = match (args.review_below, &workers) {
        (Some(p), Some(w)) => Some(review::by_value(
            &agg,
            p,
            votes.n_classes(),
            quality::mean_accuracy(w),
        )),
        _ => None,
    };

    // Every output or none: the files are renamed together once all are written.
    outs.commit(|| {
        aggregate::write_labels(&args.out, votes, &agg.labels)?;
        if let (Some(path), Some(w)) = (&args.workers_out, &workers) {
            quality::write_workers(path, votes, w)?;
        }
        if let (Some(path), Some(items)) = (&args.review_out, &review_items) {
            review::write_review(path, votes, items)?;
        }
        if let Some(path) = &args.posteriors_out {
            match &agg.posteriors {
                Some(p) => aggregate::write_posteriors(path, votes, p)?,
                None => return Err(Error::Invalid("no posteriors were computed".into())),
            }
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();

    if args.json {
        let mut j = serde_json::json!({
            "method": agg.method.name(),
            "iterations": agg.iterations,
            "log_likelihood": agg.log_likelihood,
            "seconds": seconds,
            "tasks": votes.n_tasks(),
            "answers": votes.len(),
            "workers": votes.n_workers(),
            "classes": votes.n_classes(),
            "duplicates": loaded.duplicates,
            "backend": backend.describe(),
        });
        if let Some(s) = score {
            j["accuracy"] = s.accuracy().into();
            j["gold_tasks"] = s.tasks.into();
        }
        if let Some(items) = &review_items {
            j["under_review"] = items.len().into();
        }
        if let Some(o) = agg.objective {
            j["objective"] = o.into();
        }
        if let Some(m) = &agg.with_model {
            j["model_weight"] = m.weight.into();
            j["model_tasks"] = m.covered_tasks.into();
            j["model_unanswered"] = m.unanswered.len().into();
        }
        println!("{j}");
    } else {
        println!(
            "tally: {} tasks, {} answers, {} workers, {} classes; method {}{}",
            votes.n_tasks(),
            votes.len(),
            votes.n_workers(),
            votes.n_classes(),
            agg.method,
            match (agg.method, agg.log_likelihood) {
                (Method::Ds, Some(ll)) =>
                    format!(" ({} iterations, log-likelihood {ll:.4})", agg.iterations),
                (Method::Ds, None) => " (0 iterations: vote shares)".to_string(),
                (Method::Mv | Method::Wmv, _) => String::new(),
                _ => format!(" ({} iterations)", agg.iterations),
            }
        );
        if let Some(m) = &agg.with_model {
            println!(
                "model: weight {:.3} on {} answered tasks; {} tasks without answers",
                m.weight,
                m.covered_tasks,
                m.unanswered.len()
            );
        }
        if let Some(s) = score {
            println!(
                "accuracy on {} gold tasks: {:.4} ({} correct)",
                s.tasks,
                s.accuracy(),
                s.correct
            );
        }
        if let (Some(items), Some(p)) = (&review_items, args.review_below) {
            println!("{} tasks with confidence below {p} to review", items.len());
        }
        println!(
            "wrote {} in {seconds:.3} s ({})",
            args.out.display(),
            backend.describe()
        );
    }
    Ok(())
}
