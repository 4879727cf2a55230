//! An image folder with one fuzzed file, decoded as PNG or JPEG. The first byte picks the
//! file's extension (the decoder also sniffs the content), grayscale or RGB, and whether the
//! image must be 28x28 (refused otherwise, or resized).
#![no_main]
use libfuzzer_sys::fuzz_target;
use microtask::data::images::{load_dir, ImageOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let ext = ["png", "jpg", "jpeg", "PNG"][pick as usize % 4];
    let opts = ImageOptions {
        channels: if pick & 4 != 0 { 3 } else { 1 },
        size: (pick & 8 != 0).then_some((28, 28)),
        resize: pick & 16 != 0,
        ..ImageOptions::default()
    };
    let root = microtask_fuzz::scratch().join("images");
    let _ = std::fs::remove_dir_all(&root);
    microtask_fuzz::put(&format!("images/3/a.{ext}"), bytes);
    if let Ok(set) = load_dir(&root, &opts) {
        assert_eq!(set.pixels.len(), set.len() * set.features());
        assert_eq!(set.channels, opts.channels);
        if let Some(size) = opts.size {
            assert_eq!((set.height, set.width), size);
        }
        assert_eq!(set.labels.as_deref(), Some(&[3u8][..]));
    }
});
