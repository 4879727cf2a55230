//! A votes CSV (`task,worker,label[,confidence]`, header, quoting, BOM, duplicates).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = microtask_fuzz::put("votes.csv", data);
    if let Ok(v) = microtask::data::votes::read_votes(&[path]) {
        let t = &v.table;
        assert_eq!(t.task.len(), t.worker.len());
        assert_eq!(t.task.len(), t.label.len());
        assert!(t.task.iter().all(|&i| (i as usize) < t.n_tasks()));
        assert!(t.worker.iter().all(|&i| (i as usize) < t.n_workers()));
        let _ = t.validate();
    }
});
