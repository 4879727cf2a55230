//! Inputs the fuzz targets (fuzz/, see docs/fuzzing.md) found to crash, hang or exhaust memory,
//! each with what the fixed parser must do with it instead.

use flate2::write::GzEncoder;
use microtask::data::{self, stream::ItemStream};
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
