//! A raw IDX file (images or labels): header, size check and body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = microtask_fuzz::put("raw-images-idx3-ubyte", data);
    microtask_fuzz::read_idx_every_way(&path);
});
