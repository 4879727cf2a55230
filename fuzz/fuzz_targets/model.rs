//! A safetensors model file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use microtask::model::Ensemble;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Ensemble::from_bytes(data, Path::new("fuzz.safetensors")) {
        assert_eq!(m.weight.len(), m.rows() * m.features());
        assert_eq!(m.bias.len(), m.rows());
    }
});
