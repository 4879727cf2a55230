//! Inputs the fuzz targets (fuzz/, see docs/fuzzing.md) found to crash, hang or exhaust memory,
//! each with what the fixed parser must do with it instead.

use flate2::write::GzEncoder;
use microtask::data::{self, stream::ItemStream};
use microtask::job::ShardSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Items per chunk, as `classify` and `export` read them.
const CHUNK_ITEMS: usize = 1 << 16;

fn write_gz(path: &Path, bytes: &[u8]) {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

/// idx_gz: a 25-byte IDX header behind gzip claiming 452,984,832 images of 65,564 x 28 (the
/// size of a `.gz` file is not checked against its header) made the first 65,536-item chunk
/// allocate 120 GB before reading a byte: out of memory. Memory now grows with the data read.
#[test]
fn gz_idx_claiming_huge_images_fails_as_truncated_without_allocating_them() {
    const CRASH: [u8; 25] = [
        0x00, 0x00, 0x08, 0x03, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x1c, 0x00, 0x00, 0x00,
        0x1c, 0x00, 0x00, 0x00, 0x08, 0x07, 0xb0, 0x15, 0x1c, 0x9c,
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-images-idx3-ubyte.gz");
    write_gz(&path, &CRASH);
    let spec = path.to_str().unwrap();
    let started = Instant::now();

    let mut stream = ItemStream::open(spec).unwrap();
    assert_eq!(
        (stream.len, stream.height, stream.width),
        (452_984_832, 65_564, 28)
    );
    let e = stream.next_chunk(CHUNK_ITEMS).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");

    // A shard or a resumed run skips items first: the same, through `seek`.
    let mut stream = ItemStream::open(spec).unwrap();
    let e = stream.seek(10_000).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");

    let e = data::load(spec).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// manifest: a shard manifest claiming a split into 10^15 shards made `merge` (and `tally DIR`)
/// name every missing shard, 10^15 of them: a hang, then out of memory. Found by reading the
/// code while writing the `manifest` target (10^6 executions did not reach such a count); the
/// target runs it in 2 ms now. The message names a few and counts the rest.
#[test]
fn manifest_claiming_a_huge_split_is_refused_at_once() {
    const PART: &[u8] = b"task,worker,label,confidence\n0,w0,3,0.9\n";
    const MANIFEST: &str = r#"{"format":"microtask-shard/1","job":{"version":"0.1.0","model_sha256":"a6cb73b99dc35d9c9847596e4a15f3c0e56ca4db996ce335361c5040c4f439b5","model_name":"m","resize":false,"data":"synth:10:7","items":10,"chunk_items":65536},"shard":{"index":0,"count":1000000000000000},"start":0,"end":10,"rows":10,"bytes":40,"sha256":"7d83a1372ee708f04602748c07c5aa4a98b1360bca7bcab78166228061ee94a2","counts":{"items":10,"labelled":10,"worker_correct":[1],"majority_correct":1}}"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("part-0-of-1.csv"), PART).unwrap();
    std::fs::write(dir.path().join("part-0-of-1.json"), MANIFEST).unwrap();
    let started = Instant::now();
    let e = ShardSet::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("missing shards of 1000000000000000: part-1-of-1000000000000000.json"),
        "{e}"
    );
    assert!(e.contains("and 999999999999979 more"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// images: a 44-byte PNG whose header claims 8194 x 1052688 pixels (first byte 0: `.png`,
/// grayscale, no required size; the fuzz build's PNG decoder skips CRCs, so the header's CRC is
/// made right here). The folder's item size comes from the first image's header,
/// and 8.6 GB of pixels were allocated before any image was decoded (out of memory). An item
/// above the image decoder's own limit (512 MiB) is now refused before anything is allocated.
#[test]
fn png_header_claiming_a_huge_image_is_refused_before_allocating() {
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x20, 0x02, 0x00, 0x10, 0x10, 0x10, 0x10, 0x00, 0x00, 0x00, 0x00, 0xd4,
        0xaa, 0x0f, 0x19, 0x00, 0x00, 0x00, 0x0e, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x82,
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("3")).unwrap();
    std::fs::write(dir.path().join("3/a.png"), PNG).unwrap();
    let opts = data::images::ImageOptions::default();
    let e = data::images::load_dir(dir.path(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.png") && e.contains("8194x1052688"), "{e}");
    assert!(e.contains("512 MiB"), "{e}");
}
