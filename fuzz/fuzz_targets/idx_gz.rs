//! An IDX file behind the gzip path: the input is compressed here so that every execution
//! reaches the IDX parser as a `.gz` file is read (no size check against the header there).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("in memory");
    let bytes = gz.finish().expect("in memory");
    let path = microtask_fuzz::put("gz-images-idx3-ubyte.gz", &bytes);
    microtask_fuzz::read_idx_every_way(&path);
});
