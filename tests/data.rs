//! Loaders against the shared data and tiny fixtures written here; bad files give clear errors.

mod common;

use common::*;
use flate2::write::GzEncoder;
use microtask::data::{self, idx, synth, Dataset};
use microtask::Error;
use std::io::Write;
use std::path::Path;

fn write_gz(path: &Path, bytes: &[u8]) {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

fn idx_bytes(set: &Dataset) -> Vec<u8> {
    let mut out = Vec::new();
    idx::write_images(&mut out, set).unwrap();
    out
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn mnist_test_set_loads_with_labels_and_known_class_counts() {
    let set = data::load(&mnist("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!((set.len(), set.height, set.width), (10000, 28, 28));
    let labels = set.labels.as_ref().expect("labels file beside the images");
    let mut counts = [0usize; 10];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
}

#[test]
fn png_folder_holds_the_same_pixels_in_the_same_order_as_idx() {
    let idx_set = data::load(&mnist("t10k-images-idx3-ubyte.gz")).unwrap();
    let png = shared_data().join("mnist-png/test");
    let png_set = data::load(png.to_str().unwrap()).unwrap();
    assert_eq!(png_set.len(), 10000);
    assert!(png_set.pixels == idx_set.pixels, "pixels differ");
    assert_eq!(png_set.labels, idx_set.labels);
}

#[test]
fn raw_and_gzip_idx_round_trip() {
    let dir = tempdir();
    let set = synth::generate(37, 5);
    let raw = dir.path().join("x-images-idx3-ubyte");
    std::fs::write(&raw, idx_bytes(&set)).unwrap();
    let gz = dir.path().join("y-images-idx3-ubyte.gz");
    write_gz(&gz, &idx_bytes(&set));
    for p in [&raw, &gz] {
        let back = data::load(p.to_str().unwrap()).unwrap();
        assert_eq!(back.pixels, set.pixels);
        assert_eq!(back.labels, None, "no labels file beside it");
    }
    // With a labels file beside the images, labels are read too.
    let mut lab = Vec::new();
    idx::write_labels(&mut lab, set.labels.as_ref().unwrap()).unwrap();
    std::fs::write(dir.path().join("x-labels-idx1-ubyte"), lab).unwrap();
    assert_eq!(
        data::load(raw.to_str().unwrap()).unwrap().labels,
        set.labels
    );
}

#[test]
fn synth_is_deterministic_and_sliceable() {
    let a = synth::generate(200, 9);
    let b = synth::generate_range(150..200, 9);
    assert_eq!(&a.pixels[150 * 784..], &b.pixels[..]);
    assert_eq!(&a.labels.as_ref().unwrap()[150..], &b.labels.unwrap()[..]);
    assert_ne!(a.pixels, synth::generate(200, 10).pixels);
    let labels = a.labels.unwrap();
    assert!(labels.iter().all(|&l| l < 10));
    assert!((0..10).all(|c| labels.contains(&c)), "every class appears");
    assert_eq!(data::load("synth:12").unwrap().len(), 12);
    for bad in ["synth:", "synth:0", "synth:x", "synth:5:y", "synth:5:1:2"] {
        assert!(data::load(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn truncated_gzip_is_a_clear_error() {
    let dir = tempdir();
    let bytes = idx_bytes(&synth::generate(50, 1));
    let full = dir.path().join("full.gz");
    write_gz(&full, &bytes);
    let compressed = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut-images-idx3-ubyte.gz");
    std::fs::write(&cut, &compressed[..compressed.len() / 2]).unwrap();
    let msg = message(data::load(cut.to_str().unwrap()).unwrap_err());
    assert!(msg.contains("cut-images-idx3-ubyte.gz"), "{msg}");
    assert!(
        msg.contains("truncated") || msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn wrong_magic_is_a_clear_error() {
    let dir = tempdir();
    let p = dir.path().join("labels-as-images");
    let mut lab = Vec::new();
    idx::write_labels(&mut lab, &[1; 20]).unwrap();
    std::fs::write(&p, lab).unwrap();
    let msg = message(data::load(p.to_str().unwrap()).unwrap_err());
    assert!(msg.contains("magic number 2049"), "{msg}");
}

#[test]
fn header_claiming_more_items_than_the_file_holds_is_refused() {
    let dir = tempdir();
    let mut bytes = idx_bytes(&synth::generate(3, 1));
    // Claim 2^31 items: reading must fail on the data, never allocate for the claim.
    bytes[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes());
    let raw = dir.path().join("liar");
    std::fs::write(&raw, &bytes).unwrap();
    let msg = message(data::load(raw.to_str().unwrap()).unwrap_err());
    assert!(
        msg.contains("truncated") && msg.contains("2147483648"),
        "{msg}"
    );
    let gz = dir.path().join("liar.gz");
    write_gz(&gz, &bytes);
    let msg = message(data::load(gz.to_str().unwrap()).unwrap_err());
    assert!(
        msg.contains("truncated") && msg.contains("liar.gz"),
        "{msg}"
    );
}

#[test]
fn image_folder_with_one_odd_size_names_that_file() {
    let dir = tempdir();
    for (class, name, side) in [("0", "1.png", 28), ("1", "2.png", 28), ("1", "3.png", 20)] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        image::GrayImage::new(side, side)
            .save(dir.path().join(class).join(name))
            .unwrap();
    }
    let msg = message(data::load(dir.path().to_str().unwrap()).unwrap_err());
    assert!(msg.contains("3.png") && msg.contains("20x20"), "{msg}");
}

#[test]
fn corrupt_image_and_empty_folder_are_clear_errors() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("0")).unwrap();
    assert!(message(data::load(dir.path().to_str().unwrap()).unwrap_err()).contains("no PNG"));
    std::fs::write(dir.path().join("0/bad.png"), b"not a png").unwrap();
    let msg = message(data::load(dir.path().to_str().unwrap()).unwrap_err());
    assert!(msg.contains("bad.png"), "{msg}");
}

#[test]
fn streamed_chunks_of_raw_and_gzip_idx_equal_the_whole_set() {
    let dir = tempdir();
    let set = synth::generate(1000, 4);
    let raw = dir.path().join("s-images-idx3-ubyte");
    std::fs::write(&raw, idx_bytes(&set)).unwrap();
    let mut lab = Vec::new();
    idx::write_labels(&mut lab, set.labels.as_ref().unwrap()).unwrap();
    std::fs::write(dir.path().join("s-labels-idx1-ubyte"), lab).unwrap();
    let gz = dir.path().join("g-images-idx3-ubyte.gz");
    write_gz(&gz, &idx_bytes(&set));
    for (path, labelled) in [(&raw, true), (&gz, false)] {
        let mut stream = microtask::data::stream::ItemStream::open(path.to_str().unwrap()).unwrap();
        let (mut pixels, mut labels, mut next) = (Vec::new(), Vec::new(), 0);
        while let Some(chunk) = stream.next_chunk(333).unwrap() {
            assert_eq!(chunk.start, next);
            next += chunk.pixels.len() / 784;
            pixels.extend_from_slice(&chunk.pixels);
            labels.extend(chunk.labels.unwrap_or_default());
        }
        assert!(pixels == set.pixels, "{}", path.display());
        assert_eq!(labelled, labels == *set.labels.as_ref().unwrap());
    }
}

/// Loads `path` whole and through the chunked stream: both must fail; returns the messages.
fn both_refuse(path: &Path) -> [String; 2] {
    let spec = path.to_str().unwrap();
    let whole = message(data::load(spec).unwrap_err());
    let streamed = match microtask::data::stream::ItemStream::open(spec) {
        Err(e) => message(e),
        Ok(mut stream) => loop {
            match stream.next_chunk(7) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("{} streamed without an error", path.display()),
                Err(e) => break message(e),
            }
        },
    };
    [whole, streamed]
}

fn gz_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_with_a_bad_crc_or_length_is_refused() {
    let dir = tempdir();
    let good = gz_bytes(&idx_bytes(&synth::generate(50, 1)));
    let n = good.len();
    // The member ends with CRC32 (4 bytes) then the uncompressed length mod 2^32 (4 bytes).
    for (name, at) in [("crc", n - 8), ("length", n - 4)] {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        let p = dir.path().join(format!("bad-{name}-images-idx3-ubyte.gz"));
        std::fs::write(&p, &bad).unwrap();
        for msg in both_refuse(&p) {
            assert!(msg.contains(&format!("bad-{name}-images")), "{msg}");
            assert!(msg.contains("corrupt gzip"), "{msg}");
        }
    }
}

#[test]
fn gzip_cut_short_anywhere_is_refused() {
    let dir = tempdir();
    let good = gz_bytes(&idx_bytes(&synth::generate(50, 1)));
    // Inside the trailer (all items decompress, the CRC is missing), and inside the data.
    for cut in [1, 4, 8, 9, good.len() / 2] {
        let p = dir.path().join(format!("cut{cut}-images-idx3-ubyte.gz"));
        std::fs::write(&p, &good[..good.len() - cut]).unwrap();
        for msg in both_refuse(&p) {
            assert!(msg.contains(&format!("cut{cut}-images")), "{msg}");
            assert!(msg.contains("truncated"), "{msg}");
        }
    }
}

#[test]
fn gzip_with_bytes_after_its_member_or_more_data_than_its_header_is_refused() {
    let dir = tempdir();
    let bytes = idx_bytes(&synth::generate(50, 1));
    let good = gz_bytes(&bytes);
    let garbage = dir.path().join("garbage-images-idx3-ubyte.gz");
    std::fs::write(&garbage, [&good[..], b"junk"].concat()).unwrap();
    let second = dir.path().join("second-images-idx3-ubyte.gz");
    std::fs::write(&second, [&good[..], &gz_bytes(b"more")[..]].concat()).unwrap();
    for p in [&garbage, &second] {
        for msg in both_refuse(p) {
            assert!(msg.contains("after the end of the gzip data"), "{msg}");
        }
    }
    let longer = dir.path().join("longer-images-idx3-ubyte.gz");
    std::fs::write(&longer, gz_bytes(&[&bytes[..], &[0]].concat())).unwrap();
    for msg in both_refuse(&longer) {
        assert!(
            msg.contains("longer-images") && msg.contains("size mismatch"),
            "{msg}"
        );
    }
}

#[test]
fn raw_idx_one_byte_longer_or_shorter_names_both_sizes() {
    let dir = tempdir();
    let bytes = idx_bytes(&synth::generate(50, 1));
    let need = bytes.len(); // 16 + 50 * 784 = 39216
    let long = dir.path().join("long-images-idx3-ubyte");
    std::fs::write(&long, [&bytes[..], &[0]].concat()).unwrap();
    let short = dir.path().join("short-images-idx3-ubyte");
    std::fs::write(&short, &bytes[..need - 1]).unwrap();
    for (p, len) in [(&long, need + 1), (&short, need - 1)] {
        for msg in both_refuse(p) {
            assert!(msg.contains(p.to_str().unwrap()), "{msg}");
            assert!(
                msg.contains(&format!("{need} bytes")) && msg.contains(&format!("{len} bytes")),
                "{msg}"
            );
            assert!(msg.contains("50 images of 28x28"), "{msg}");
        }
    }
    // A labels file beside good images, one byte too long, is refused as well.
    let good = dir.path().join("ok-images-idx3-ubyte");
    std::fs::write(&good, &bytes).unwrap();
    let mut lab = Vec::new();
    idx::write_labels(&mut lab, &[1; 50]).unwrap();
    lab.push(1);
    let lp = dir.path().join("ok-labels-idx1-ubyte");
    std::fs::write(&lp, &lab).unwrap();
    for msg in both_refuse(&good) {
        assert!(
            msg.contains("ok-labels-idx1-ubyte") && msg.contains("59 bytes"),
            "{msg}"
        );
    }
}

/// A Python with NumPy: `python3`, else the shared bench venv's; `None` when neither has it.
fn python_with_numpy() -> Option<std::path::PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/.venv/bin/python");
    [std::path::PathBuf::from("python3"), venv]
        .into_iter()
        .find(|py| {
            std::process::Command::new(py)
                .args(["-c", "import numpy"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn numpy_reads_our_npy_and_we_read_numpys_when_numpy_is_there() {
    use microtask::data::npy;
    let Some(py) = python_with_numpy() else {
        eprintln!("skipped: no python with numpy (the byte-level tests in data::npy still run)");
        return;
    };
    let dir = tempdir();
    let ours = dir.path().join("ours.npy");
    let data: Vec<f32> = (0..24).map(|v| v as f32 / 3.0).collect();
    npy::write_npy_f32(&ours, &[2, 3, 4], &data).unwrap();
    let script = format!(
        "import numpy as np\n\
         a = np.load({ours:?})\n\
         assert a.shape == (2, 3, 4) and a.dtype == np.float32, (a.shape, a.dtype)\n\
         assert (a.ravel() == np.arange(24, dtype=np.float32) / np.float32(3)).all()\n\
         x = (np.arange(12, dtype=np.float32) / 7).reshape(3, 4)\n\
         d = {dir:?}\n\
         np.save(d + '/f32.npy', x)\n\
         np.save(d + '/f16.npy', x.astype(np.float16))\n\
         np.save(d + '/u8.npy', (np.arange(12) * 20).astype(np.uint8).reshape(3, 4))\n\
         np.save(d + '/y.npy', np.array([0, 3, 9], dtype=np.int64))\n",
        ours = ours.to_str().unwrap(),
        dir = dir.path().to_str().unwrap()
    );
    let out = std::process::Command::new(&py)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f32s = npy::NpyMatrix::open(&dir.path().join("f32.npy")).unwrap();
    assert_eq!((f32s.rows, f32s.cols, f32s.dtype), (3, 4, npy::Dtype::F32));
    let want: Vec<u8> = (0..12)
        .flat_map(|v| (v as f32 / 7.0).to_le_bytes())
        .collect();
    assert_eq!(f32s.rows_bytes(0..3), &want[..]);
    let f16s = npy::NpyMatrix::open(&dir.path().join("f16.npy")).unwrap();
    assert_eq!((f16s.dtype, f16s.row_bytes()), (npy::Dtype::F16, 8));
    // 1/7 in half precision is 0x3092.
    assert_eq!(&f16s.rows_bytes(0..1)[2..4], &0x3092u16.to_le_bytes());
    let u8s = npy::NpyMatrix::open(&dir.path().join("u8.npy")).unwrap();
    assert_eq!(u8s.rows_bytes(2..3), &[160, 180, 200, 220]);
    assert_eq!(
        npy::load_labels(&dir.path().join("y.npy")).unwrap(),
        [0, 3, 9]
    );
}
