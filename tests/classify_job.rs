//! The classify job as the CLI drives it (votes written through `output::write_atomic`): a
//! reader that fails midway fails the job and leaves no votes file, not a truncated one.

mod common;

use microtask::backend::cpu::CpuBackend;
use microtask::classify::{ClassifyJob, PANIC_READER_AT_CHUNK};
use microtask::data::stream::ItemStream;
use microtask::model::Ensemble;
use std::sync::atomic::Ordering;

const ITEMS: usize = 1000;
const CHUNK: usize = 100;

/// Classifies `synth:1000:1` into `path` as `microtask classify --out` does.
fn classify_to(path: &std::path::Path) -> microtask::Result<u64> {
    let backend = CpuBackend::new("test");
    let model = Ensemble::zeros(2, 10, 28, 28);
    let job = ClassifyJob {
        backend: &backend,
        model: &model,
        model_name: "m",
        chunk_items: CHUNK,
        keep_predictions: false,
        progress: &|_| {},
    };
    let stream = ItemStream::open(&format!("synth:{ITEMS}:1"))?;
    let mut items = 0;
    microtask::output::write_atomic(path, |w| {
        items = job.run(stream, Some(w))?.items;
        Ok(())
    })?;
    Ok(items)
}

#[test]
fn a_reader_panic_fails_the_job_and_leaves_no_votes_file() {
    let dir = common::tempdir();
    let path = dir.path().join("votes.csv");

    // The same job without the fault writes every item.
    assert_eq!(classify_to(&path).expect("classify"), ITEMS as u64);
    let rows = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(rows, 1 + ITEMS * 2);
    std::fs::remove_file(&path).unwrap();

    PANIC_READER_AT_CHUNK.store(3, Ordering::SeqCst);
    let result = classify_to(&path);
    PANIC_READER_AT_CHUNK.store(usize::MAX, Ordering::SeqCst);
    let err = match result {
        Ok(items) => panic!("the job succeeded with {items} of {ITEMS} items"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("reader"), "{err}");
    assert!(!path.exists(), "a votes file was left behind");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}
