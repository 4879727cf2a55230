//! A gold CSV (`task,label`) against a fixed votes table.
#![no_main]
use libfuzzer_sys::fuzz_target;
use microtask::data::votes::{read_gold, read_votes, VoteTable};
use std::sync::OnceLock;

const VOTES: &[u8] =
    b"task,worker,label\nt1,w1,cat\nt1,w2,dog\nt2,w1,dog\n\"t,3\",w2,cat\n7,w3,1\n";

fn table() -> &'static VoteTable {
    static TABLE: OnceLock<VoteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let path = microtask_fuzz::put("gold-votes.csv", VOTES);
        read_votes(&[path]).expect("the fixed votes").table
    })
}

fuzz_target!(|data: &[u8]| {
    let table = table();
    let path = microtask_fuzz::put("gold.csv", data);
    if let Ok(gold) = read_gold(&path, table) {
        assert_eq!(gold.label.len(), table.n_tasks());
    }
});
