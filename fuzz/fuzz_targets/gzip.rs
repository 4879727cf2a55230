//! Gzip input as given: bad members, CRCs, lengths, trailing bytes, then the IDX inside.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = microtask_fuzz::put("gzip-images-idx3-ubyte.gz", data);
    microtask_fuzz::read_idx_every_way(&path);
});
