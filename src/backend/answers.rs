//! Crowd answers in the layouts the Dawid-Skene kernels read (CPU twins and WGSL alike).
//!
//! With C classes and W workers, an answer is the row `worker * C + label` of its worker's
//! confusion matrix (stored answer-major: `log_conf[(w * C + l) * C + c]`).
//! - Grouped by task (CSR, [`TaskAnswers`]): task `t`'s answers are `row[start[t]..start[t + 1]]`.
//! - Grouped by worker (CSR, [`ds_by_worker`]): worker `w`'s answers are entries
//!   `worker_start[w]..worker_start[w + 1]` of `worker_task` / `worker_label`, in task order.

/// `clamp[t]` for a task that is not clamped to a gold class. The shaders use the same value.
pub const NO_CLAMP: u32 = u32::MAX;

/// The answers of every task, grouped by task, as the E-step reads them.
#[derive(Debug, Clone, Copy)]
pub struct TaskAnswers<'a> {
    pub classes: usize,
    /// `tasks + 1` offsets into `row`.
    pub start: &'a [u32],
    /// Per answer: `worker * classes + label`.
    pub row: &'a [u32],
    /// Per task: the gold class it is clamped to, or [`NO_CLAMP`].
    pub clamp: &'a [u32],
}

impl TaskAnswers<'_> {
    pub fn tasks(&self) -> usize {
        self.start.len().saturating_sub(1)
    }
}

/// Answers grouped by worker, from answers grouped by task: `(worker_start, task, label)`, where
/// worker `w`'s answers are entries `worker_start[w]..worker_start[w + 1]`, in task order.
/// What the by-worker M-step (`backend::cpu::dawid_skene::m_step` and its GPU twin) reads.
pub fn ds_by_worker(a: TaskAnswers, workers: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let c = a.classes.max(1) as u32;
    let mut start = vec![0u32; workers + 1];
    for &r in a.row {
        start[(r / c) as usize + 1] += 1;
    }
    for w in 0..workers {
        start[w + 1] += start[w];
    }
    let mut fill = start.clone();
    let (mut task, mut label) = (vec![0u32; a.row.len()], vec![0u32; a.row.len()]);
    for t in 0..a.tasks() {
        for &r in &a.row[a.start[t] as usize..a.start[t + 1] as usize] {
            let f = &mut fill[(r / c) as usize];
            task[*f as usize] = t as u32;
            label[*f as usize] = r % c;
            *f += 1;
        }
    }
    (start, task, label)
}
