//! The printed report of `microtask run`.

use microtask::pipeline::RunReport;
use std::fmt;

/// `RunReport` as the text `microtask run` prints.
pub struct Text<'a>(pub &'a RunReport);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = self.0;
        writeln!(f, "microtask run")?;
        writeln!(
            f,
            "  train data : {} ({} items)",
            run.train_source, run.train_items
        )?;
        writeln!(
            f,
            "  test data  : {} ({} items)",
            run.test_source, run.test_items
        )?;
        writeln!(
            f,
            "  model      : {} workers x {} classes x {} features",
            run.model.workers,
            run.model.classes,
            run.model.features()
        )?;
        writeln!(f, "  backend    : {}", run.backend)?;
        writeln!(f)?;
        writeln!(f, "accuracy on the test items")?;
        let c = &run.classify;
        if c.labelled == 0 {
            match &run.test_unlabelled {
                Some(why) => writeln!(f, "  (the test items carry no labels: {why})")?,
                None => writeln!(f, "  (the test items carry no labels)")?,
            }
        }
        let mut mean = 0.0;
        for r in 0..c.workers {
            if let Some(a) = c.worker_accuracy(r) {
                writeln!(f, "  worker {r:<3}       {a:.4}")?;
                mean += a / c.workers as f64;
            }
        }
        if c.labelled > 0 {
            writeln!(f, "  mean worker      {mean:.4}")?;
        }
        if let Some(a) = run.majority_accuracy {
            writeln!(f, "  majority vote    {a:.4}")?;
        }
        if let Some(a) = run.ds_accuracy {
            writeln!(
                f,
                "  dawid-skene      {a:.4}  ({} EM iterations, no gold)",
                run.ds.iterations
            )?;
        }
        if let Some(a) = run.ds_gold_accuracy {
            writeln!(
                f,
                "  dawid-skene+gold {a:.4}  ({} gold questions clamped; scored on the other items)",
                run.gold_questions
            )?;
        }
        writeln!(f)?;
        writeln!(f, "worker quality")?;
        writeln!(
            f,
            "  {:<10} {:>8} {:>16} {:>14}",
            "worker", "true", "ds (no gold)", "gold questions"
        )?;
        for (r, q) in run.quality_no_gold.iter().enumerate() {
            let truth = c
                .worker_accuracy(r)
                .map_or("-".into(), |a| format!("{a:.4}"));
            let gold = run
                .quality_gold
                .get(r)
                .and_then(|g| g.gold_accuracy())
                .map_or("-".into(), |a| format!("{a:.4}"));
            writeln!(
                f,
                "  {:<10} {:>8} {:>16.4} {:>14}",
                microtask::classify::worker_name(microtask::pipeline::MODEL_NAME, r),
                truth,
                q.estimated_accuracy,
                gold
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "review: {} of {} items have Dawid-Skene confidence below {:.2}",
            run.under_review, run.test_items, run.review_below
        )?;
        writeln!(f)?;
        writeln!(f, "throughput")?;
        for s in &run.stages {
            writeln!(
                f,
                "  {:<12} {:>9.3} s  {:>12.0} {}/s",
                s.name,
                s.seconds,
                s.items_per_second(),
                if s.name.starts_with("tally") {
                    "answers"
                } else {
                    "items"
                }
            )?;
        }
        Ok(())
    }
}
