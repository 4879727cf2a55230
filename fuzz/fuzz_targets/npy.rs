//! A `.npy` file as an item matrix (header, size, then every row read and checked for NaN) and
//! as a labels file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use microtask::data::npy;

fuzz_target!(|data: &[u8]| {
    let path = microtask_fuzz::put("x.npy", data);
    if let Ok(m) = npy::NpyMatrix::open(&path) {
        let all = 0..m.rows;
        assert_eq!(m.rows_bytes(all.clone()).len(), m.rows * m.row_bytes());
        assert_eq!(m.byte_range(all.clone()).end, m.map.len());
        let _ = m.check_finite(all);
    }
    let _ = npy::load_labels(&path);
});
