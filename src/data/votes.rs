//! Votes (answers): `task,worker,label[,confidence]`, mapped to dense integer ids.

/// Answers in columns, with dense ids; the name tables map ids back to the original strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoteTable {
    pub task: Vec<u32>,
    pub worker: Vec<u32>,
    pub label: Vec<u32>,
    /// 1.0 when the source gave no confidence.
    pub confidence: Vec<f32>,
    pub tasks: Vec<String>,
    pub workers: Vec<String>,
    pub classes: Vec<String>,
}

impl VoteTable {
    pub fn len(&self) -> usize {
        self.task.len()
    }

    pub fn is_empty(&self) -> bool {
        self.task.is_empty()
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
}
