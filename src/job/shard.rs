//! Shards: shard I of N of a classify job, from `--shard I/N` or from the scheduler's environment
//! (Slurm job arrays, Kubernetes Indexed Jobs), and the items it covers.

use crate::error::{Error, Result};
use crate::task;
use std::ops::Range;

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N`, 0-based: `0/4` .. `3/4`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (such as 0/4), not {s:?}"))?;
        let index = i
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count = n
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        Shard::new(index, count).map_err(|e| e.to_string())
    }
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::Usage(format!(
                "shard {index}/{count}: the index must be below the count (0-based: 0/{count} .. {}/{count})",
                count.max(1) - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// The items of this shard of `len` items classified in chunks of `chunk_items`: whole
    /// microtasks, split as evenly as their count allows, in order (shard 0 first).
    pub fn items(&self, len: usize, chunk_items: usize) -> Range<usize> {
        let tasks = task::microtasks(len, chunk_items);
        let range = &task::shards(tasks.len(), self.count)[self.index];
        match (
            tasks.get(range.start),
            range.end.checked_sub(1).and_then(|l| tasks.get(l)),
        ) {
            (Some(first), Some(last)) if !range.is_empty() => first.items.start..last.items.end,
            // More shards than microtasks: this one is empty, placed where its tasks would be.
            _ => {
                let at = tasks.get(range.start).map_or(len, |t| t.items.start);
                at..at
            }
        }
    }

    /// The file names of this shard in its folder: `part-I-of-N.EXT`.
    pub fn file_name(&self, ext: &str) -> String {
        format!("part-{}-of-{}.{ext}", self.index, self.count)
    }

    /// Reads a shard back from a `part-I-of-N.EXT` file name.
    pub fn from_file_name(name: &str) -> Option<(Shard, &str)> {
        let rest = name.strip_prefix("part-")?;
        let (i, rest) = rest.split_once("-of-")?;
        let (n, ext) = rest.split_once('.')?;
        let (index, count) = (i.parse().ok()?, n.parse().ok()?);
        (index < count).then_some((Shard { index, count }, ext))
    }
}

/// Where a shard came from, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSource {
    Flag,
    Slurm,
    Kubernetes,
}

/// The shard to run: `--shard` when given, else a Slurm job array's task, else a Kubernetes
/// Indexed Job's completion index (whose count Kubernetes does not give: `--shards N`); `None`
/// when none applies. `env` looks a variable up (`std::env::var` in the CLI; a table in tests).
///
/// Slurm: `SLURM_ARRAY_TASK_ID`, `_MIN`, `_STEP` (1 when unset) and `_COUNT`; the index is
/// `(ID - MIN) / STEP`, so arrays such as `--array=1-7:2` (ids 1, 3, 5, 7) map to 0..3. An array
/// whose ids are not evenly spaced (`--array=1,2,9`) cannot be mapped and is refused: pass
/// `--shard I/N` from the job script instead.
pub fn from_env(
    flag: Option<Shard>,
    shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Shard, ShardSource)>> {
    if let Some(s) = flag {
        if shards.is_some_and(|n| n != s.count) {
            return Err(Error::Usage(format!(
                "--shard {s} and --shards {} disagree",
                shards.unwrap_or_default()
            )));
        }
        return Ok(Some((s, ShardSource::Flag)));
    }
    let num = |name: &str| -> Result<Option<usize>> {
        match env(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
                Error::Usage(format!("{name}={v:?} is not a non-negative whole number"))
            }),
        }
    };
    if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count =
            match (num("SLURM_ARRAY_TASK_COUNT")?, shards) {
                (Some(c), Some(n)) if c != n => {
                    return Err(Error::Usage(format!(
                    "the Slurm array has {c} tasks (SLURM_ARRAY_TASK_COUNT) but --shards says {n}"
                )))
                }
                (Some(c), _) | (None, Some(c)) => c,
                (None, None) => return Err(Error::Usage(
                    "SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT: pass --shards N"
                        .into(),
                )),
            };
        if id < min || (id - min) % step != 0 || (id - min) / step >= count {
            return Err(Error::Usage(format!(
                "Slurm array task {id} (min {min}, step {step}, {count} tasks) is not evenly spaced: \
                 pass --shard I/N from the job script"
            )));
        }
        return Shard::new((id - min) / step, count).map(|s| Some((s, ShardSource::Slurm)));
    }
    if let Some(index) = num("JOB_COMPLETION_INDEX")? {
        let count = shards.ok_or_else(|| {
            Error::Usage(
                "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): pass --shards N, the Job's completions".into(),
            )
        })?;
        return Shard::new(index, count).map(|s| Some((s, ShardSource::Kubernetes)));
    }
    if let Some(n) = shards {
        return Err(Error::Usage(format!(
            "--shards {n} needs a shard index: --shard I/{n}, or a Slurm array or Kubernetes Indexed Job environment"
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn shard(vars: &[(&str, &str)], shards: Option<usize>) -> Result<Option<(Shard, ShardSource)>> {
        from_env(None, shards, &env(vars))
    }

    #[test]
    fn flag_parses_and_wins() {
        let s: Shard = "2/4".parse().unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        let got = from_env(Some(s), None, &env(&slurm)).unwrap();
        assert_eq!(got, Some((s, ShardSource::Flag)));
        assert!(from_env(Some(s), Some(3), &env(&[])).is_err());
    }

    #[test]
    fn slurm_arrays_map_to_0_based_indices() {
        let base =
            |id: &'static str, min: &'static str, step: &'static str, count: &'static str| {
                vec![
                    ("SLURM_ARRAY_TASK_ID", id),
                    ("SLURM_ARRAY_TASK_MIN", min),
                    ("SLURM_ARRAY_TASK_STEP", step),
                    ("SLURM_ARRAY_TASK_COUNT", count),
                ]
            };
        // --array=0-3
        let s = shard(&base("2", "0", "1", "4"), None).unwrap().unwrap();
        assert_eq!(
            (s.0, s.1),
            (Shard { index: 2, count: 4 }, ShardSource::Slurm)
        );
        // --array=10-13: ids need not start at 0.
        let s = shard(&base("13", "10", "1", "4"), None).unwrap().unwrap();
        assert_eq!(s.0, Shard { index: 3, count: 4 });
        // --array=1-7:2: ids 1, 3, 5, 7.
        let s = shard(&base("5", "1", "2", "4"), None).unwrap().unwrap();
        assert_eq!(s.0, Shard { index: 2, count: 4 });
        // No step variable: step 1. --shards agreeing with the count is fine.
        let vars = [
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ];
        assert_eq!(
            shard(&vars, Some(2)).unwrap().unwrap().0,
            Shard { index: 0, count: 2 }
        );
        // Refused: not evenly spaced, count disagreeing with --shards, no count, garbage.
        assert!(shard(&base("4", "1", "2", "4"), None).is_err());
        assert!(shard(&base("9", "1", "1", "3"), None).is_err());
        assert!(shard(&base("2", "0", "1", "4"), Some(3)).is_err());
        assert!(shard(&[("SLURM_ARRAY_TASK_ID", "2")], None).is_err());
        assert_eq!(
            shard(&[("SLURM_ARRAY_TASK_ID", "2")], Some(4))
                .unwrap()
                .unwrap()
                .0,
            Shard { index: 2, count: 4 }
        );
        assert!(shard(&base("x", "0", "1", "4"), None).is_err());
    }

    #[test]
    fn kubernetes_indexed_jobs_need_the_count() {
        let k8s = [("JOB_COMPLETION_INDEX", "3")];
        let s = shard(&k8s, Some(4)).unwrap().unwrap();
        assert_eq!(
            (s.0, s.1),
            (Shard { index: 3, count: 4 }, ShardSource::Kubernetes)
        );
        let e = shard(&k8s, None).unwrap_err().to_string();
        assert!(e.contains("--shards"), "{e}");
        assert!(shard(&k8s, Some(3)).is_err(), "index 3 of 3");
        // Slurm wins when both are set; nothing set is no shard.
        let both = [
            ("JOB_COMPLETION_INDEX", "0"),
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ];
        assert_eq!(shard(&both, None).unwrap().unwrap().1, ShardSource::Slurm);
        assert_eq!(shard(&[], None).unwrap(), None);
        assert!(shard(&[], Some(4)).is_err(), "--shards without an index");
    }

    #[test]
    fn shards_are_whole_microtasks_covering_every_item_once() {
        for (len, chunk, n) in [
            (1000, 100, 4),
            (1000, 100, 3),
            (1050, 100, 4),
            (250, 100, 5),
            (0, 10, 2),
        ] {
            let ranges: Vec<_> = (0..n)
                .map(|i| Shard { index: i, count: n }.items(len, chunk))
                .collect();
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges[n - 1].end, len, "{len} {chunk} {n}: {ranges:?}");
            assert!(
                ranges.windows(2).all(|w| w[0].end == w[1].start),
                "{ranges:?}"
            );
            assert!(ranges.iter().all(|r| r.start % chunk == 0));
        }
        assert_eq!(Shard { index: 1, count: 4 }.items(1000, 100), 200..500);
    }

    #[test]
    fn file_names_round_trip() {
        let s = Shard {
            index: 3,
            count: 12,
        };
        assert_eq!(s.file_name("csv"), "part-3-of-12.csv");
        assert_eq!(
            Shard::from_file_name("part-3-of-12.json"),
            Some((s, "json"))
        );
        assert_eq!(Shard::from_file_name("part-3-of-3.csv"), None);
        assert_eq!(Shard::from_file_name("votes.csv"), None);
    }
}
