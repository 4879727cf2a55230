//! A shard manifest in a folder with its part file, read and checked as `merge` and `tally DIR`
//! do.
#![no_main]
use libfuzzer_sys::fuzz_target;
use microtask::job::{Manifest, ShardSet};

fuzz_target!(|data: &[u8]| {
    let dir = microtask_fuzz::scratch().join("shards");
    let _ = std::fs::remove_dir_all(&dir);
    microtask_fuzz::put(
        "shards/part-0-of-1.csv",
        b"task,worker,label,confidence\n0,w0,3,0.9\n",
    );
    let path = microtask_fuzz::put("shards/part-0-of-1.json", data);
    let _ = Manifest::read(&path);
    let _ = ShardSet::open(&dir);
});
