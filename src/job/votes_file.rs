//! A classify job's votes file that survives `kill -9`: rows go to a partial file beside the
//! output with a journal of committed chunks (see [`super::journal`]); `resume` goes on from the
//! last commit; the partial file becomes the output by one rename at the end. A shard's part file
//! is written the same way, then its manifest.

use super::identity::{Counts, JobId};
use super::journal::{journal_path, partial_path, Commit, Header, Journal};
use super::manifest::Manifest;
use super::shard::Shard;
use crate::classify::{ClassifyJob, ClassifyStats, Part, VotesSink};
use crate::data::stream::ItemStream;
use crate::error::{Error, Result};
use crate::output::{self, parent_dir, sync_dir, OutputWriter};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How often a journaled run commits (at the next chunk boundary after this long): an fsync of
/// the output and of the journal each time, so the cost stays small at any speed.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// One journaled votes file: the job, which items, and how to start.
pub struct VotesFile<'a> {
    pub job: &'a ClassifyJob<'a>,
    pub id: JobId,
    /// The items the file holds: all of them, or a shard's.
    pub items: Range<usize>,
    /// Go on from the journal of an interrupted run when there is one (else start afresh).
    pub resume: bool,
    /// Set by a signal handler: stop at the next chunk boundary, commit, and return
    /// [`Error::Interrupted`].
    pub stop: Option<&'a AtomicBool>,
}

/// What a finished votes file run did.
#[derive(Debug)]
pub struct Written {
    /// Counts over every item of the file (the resumed part included); timings of this run only.
    pub stats: ClassifyStats,
    /// The item this run started from when it resumed an interrupted run.
    pub resumed_at: Option<usize>,
}

/// How a run starts.
enum Start {
    Fresh,
    Resume(Journal, Option<Commit>),
    /// The run had finished but died before removing its journal.
    Finished(Journal, Commit),
}

/// Rows into the partial file; commits into the journal.
struct JournalSink<'a> {
    out: &'a Path,
    file: BufWriter<File>,
    journal: Journal,
    bytes: u64,
    /// The last chunk boundary written: (end item, bytes, counts).
    written: Option<(usize, u64, Counts)>,
    committed: Option<usize>,
    last_commit: Instant,
}

impl JournalSink<'_> {
    fn commit(&mut self) -> Result<()> {
        let Some((end, bytes, counts)) = self.written.clone() else {
            return Ok(());
        };
        if self.committed == Some(end) {
            return Ok(());
        }
        let io = |e| Error::io(self.out, e);
        self.file.flush().map_err(io)?;
        self.file.get_ref().sync_data().map_err(io)?;
        self.journal.commit(&Commit { end, bytes, counts })?;
        self.committed = Some(end);
        self.last_commit = Instant::now();
        Ok(())
    }
}

impl VotesSink for JournalSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(self.out, e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn chunk_done(&mut self, end: usize, stats: &ClassifyStats) -> Result<()> {
        self.written = Some((end, self.bytes, Counts::of(stats)));
        if self.last_commit.elapsed() >= COMMIT_EVERY {
            self.commit()?;
        }
        Ok(())
    }
}

impl VotesFile<'_> {
    /// Classifies the items into `out` (through its partial file and journal). `finish` runs
    /// once the file is at its final path and before the journal goes (a shard writes its
    /// manifest there), so a crash in between is finished by the next run.
    pub fn write(
        &self,
        stream: ItemStream,
        out: &Path,
        finish: &dyn Fn(&Path, &Counts) -> Result<()>,
    ) -> Result<Written> {
        let target = output::resolve(out)?;
        let (jpath, ppath) = (journal_path(&target), partial_path(&target));
        let header = Header::new(self.id.clone(), &self.items);
        let workers = self.job.model.workers;
        let (journal, file, from, counts) = match self.start(&jpath, &ppath, &target, &header)? {
            Start::Finished(journal, commit) => {
                finish(&target, &commit.counts)?;
                journal.remove()?;
                return Ok(Written {
                    stats: commit.counts.to_stats(workers),
                    resumed_at: Some(commit.end),
                });
            }
            Start::Resume(journal, commit) => {
                let bytes = commit.as_ref().map_or(0, |c| c.bytes);
                let io = |e| Error::io(&ppath, e);
                let mut file = OpenOptions::new().write(true).open(&ppath).map_err(io)?;
                let len = file.metadata().map_err(io)?.len();
                if len < bytes {
                    return Err(Error::format(
                        &ppath,
                        format!(
                            "{len} bytes, shorter than the {bytes} its journal {} committed: delete both to start over",
                            jpath.display()
                        ),
                    ));
                }
                file.set_len(bytes).map_err(io)?;
                file.seek(SeekFrom::Start(bytes)).map_err(io)?;
                match commit {
                    Some(c) => (journal, file, c.end, c.counts),
                    None => (journal, file, self.items.start, Counts::default()),
                }
            }
            Start::Fresh => {
                let journal = Journal::create(&jpath, &header)?;
                let file = File::create(&ppath).map_err(|e| Error::io(&ppath, e))?;
                (journal, file, self.items.start, Counts::default())
            }
        };
        let resumed_at = (from != self.items.start).then_some(from);
        let bytes = file.metadata().map_err(|e| Error::io(&ppath, e))?.len();
        let mut sink = JournalSink {
            out,
            file: BufWriter::with_capacity(1 << 20, file),
            journal,
            bytes,
            written: None,
            committed: resumed_at,
            last_commit: Instant::now(),
        };
        let part = Part {
            items: self.items.clone(),
            from,
            stats: counts.to_stats(workers),
            stop: self.stop,
        };
        let result = self.job.run_part(stream, part, Some(&mut sink));
        // Whatever happened, the chunks written so far are committed for a later --resume.
        let committed = sink.commit();
        let stats = match result {
            Ok(stats) => stats,
            Err(e) => {
                // An I/O or device failure may pass, and --resume goes on; corrupt input does
                // not (a resumed run stops at the same item), so its partial file goes too.
                let may_pass = matches!(e, Error::Io { .. } | Error::Gpu(_));
                if sink.committed.is_none() || !may_pass {
                    // Nothing to resume: leave nothing behind.
                    let journal = sink.journal;
                    let _ = std::fs::remove_file(&ppath);
                    let _ = journal.remove();
                }
                return Err(e);
            }
        };
        committed?;
        let done = sink.committed.unwrap_or(self.items.start);
        if done < self.items.end {
            return Err(Error::Interrupted(format!(
                "stopped by a signal after item {done} of {}..{}, every row before it committed to {}: \
                 run the same command with --resume to go on",
                self.items.start,
                self.items.end,
                sink.journal.path().display()
            )));
        }
        let JournalSink { file, journal, .. } = sink;
        let file = file
            .into_inner()
            .map_err(|e| Error::io(out, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(out, e))?;
        drop(file);
        if let Ok(old) = std::fs::metadata(&target) {
            std::fs::set_permissions(&ppath, old.permissions()).map_err(|e| Error::io(out, e))?;
        }
        std::fs::rename(&ppath, &target).map_err(|e| Error::io(out, e))?;
        sync_dir(parent_dir(&target))?;
        finish(&target, &Counts::of(&stats))?;
        journal.remove()?;
        Ok(Written { stats, resumed_at })
    }

    /// Decides how to start from what is beside the output.
    fn start(&self, jpath: &Path, ppath: &Path, target: &Path, header: &Header) -> Result<Start> {
        if !jpath.exists() {
            // A partial file without a journal holds nothing committed.
            if ppath.exists() {
                std::fs::remove_file(ppath).map_err(|e| Error::io(ppath, e))?;
            }
            return Ok(Start::Fresh);
        }
        let (journal, found, last) = Journal::open(jpath)?;
        let same = found == *header;
        if !ppath.exists() {
            return match last {
                Some(c) if same && c.end == header.end && target.exists() => {
                    Ok(Start::Finished(journal, c))
                }
                // Nothing a run could go on from.
                _ => {
                    journal.remove()?;
                    Ok(Start::Fresh)
                }
            };
        }
        let shown = |p: &Path| p.display().to_string();
        if !self.resume {
            let done = last.as_ref().map_or(found.start, |c| c.end);
            return Err(Error::Usage(format!(
                "{}: an interrupted run of {} left its journal ({} of {} items committed): add --resume \
                 to go on from it, or delete it and {} to start over",
                shown(jpath),
                shown(target),
                done - found.start,
                found.end - found.start,
                shown(ppath)
            )));
        }
        if !same {
            let mut why = found.job.differences(&header.job);
            if (found.start, found.end) != (header.start, header.end) {
                why.push(format!(
                    "items {}..{} vs {}..{}",
                    found.start, found.end, header.start, header.end
                ));
            }
            return Err(Error::Usage(format!(
                "{}: cannot resume: the journal is of another job ({}); delete it and {} to start over",
                shown(jpath),
                why.join(", "),
                shown(ppath)
            )));
        }
        Ok(Start::Resume(journal, last))
    }

    /// Runs shard `shard` into `dir/part-I-of-N.csv` and its manifest `part-I-of-N.json`
    /// (written last). A shard whose manifest matches this job and whose part file matches the
    /// manifest is not run again.
    pub fn shard(&self, stream: ItemStream, dir: &Path, shard: Shard) -> Result<ShardRun> {
        let part = dir.join(shard.file_name("csv"));
        let mpath = dir.join(shard.file_name("json"));
        let mut redone = None;
        if mpath.exists() {
            let m = Manifest::read(&mpath)?;
            let mut why = m.job.differences(&self.id);
            if m.shard != shard || (m.start, m.end) != (self.items.start, self.items.end) {
                why.push(format!(
                    "shard {} with items {}..{}, not {shard} with {}..{}",
                    m.shard, m.start, m.end, self.items.start, self.items.end
                ));
            }
            if !why.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: a shard of another job is there ({}): use another --out folder",
                    mpath.display(),
                    why.join(", ")
                )));
            }
            match m.check_part(&part)? {
                None => return Ok(ShardRun::Skipped(m)),
                Some(why) => {
                    // The manifest goes first, so no reader trusts it while the part is redone.
                    std::fs::remove_file(&mpath).map_err(|e| Error::io(&mpath, e))?;
                    redone = Some(why);
                }
            }
        }
        let workers = self.job.model.workers;
        let written = self.write(stream, &part, &|path, counts| {
            Manifest::of_part(
                self.id.clone(),
                shard,
                self.items.clone(),
                workers,
                counts.clone(),
                path,
            )?
            .write(&mpath)
        })?;
        Ok(ShardRun::Done {
            written,
            manifest: Manifest::read(&mpath)?,
            redone,
        })
    }
}

/// What running a shard did.
#[derive(Debug)]
pub enum ShardRun {
    /// A valid manifest was there: nothing was done.
    Skipped(Manifest),
    /// The shard ran (or finished a run); `redone` says why an earlier part file was replaced.
    Done {
        written: Written,
        manifest: Manifest,
        redone: Option<String>,
    },
}

/// A writer that names its file in errors, as a sink (a `.gz` votes file, which is not
/// journaled: a compressed stream cannot be cut at a commit and continued byte-identically).
pub struct NamedSink<'a> {
    pub writer: &'a mut OutputWriter,
    pub path: &'a Path,
}

impl VotesSink for NamedSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .map_err(|e| Error::io(self.path, e))
    }
    fn chunk_done(&mut self, _end: usize, _stats: &ClassifyStats) -> Result<()> {
        Ok(())
    }
}
