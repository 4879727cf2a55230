//! An image folder with one fuzzed file, decoded as PNG or JPEG (the first byte picks the
//! file's extension; the decoder also sniffs the content).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let ext = ["png", "jpg", "jpeg", "PNG"][pick as usize % 4];
    let root = microtask_fuzz::scratch().join("images");
    let _ = std::fs::remove_dir_all(&root);
    microtask_fuzz::put(&format!("images/3/a.{ext}"), bytes);
    if let Ok(set) = microtask::data::images::load_dir(&root) {
        assert_eq!(set.pixels.len(), set.len() * set.features());
        assert_eq!(set.labels.as_deref(), Some(&[3u8][..]));
    }
});
