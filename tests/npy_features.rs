//! `.npy` matrices as a user with embeddings has them: MNIST saved as u8 pixels and as f32/f16
//! features (pixels / 255), trained on (one worker, 10 epochs) and classified from the mapped
//! file. Each dtype reaches 0.92 accuracy on the test set; the u8 matrix gives the IDX file's
//! votes; data of another kind or width than the model is refused, naming both.

mod common;

use microtask::backend::cpu::CpuBackend;
use microtask::classify::{ClassifyJob, ClassifyStats};
use microtask::data::npy::{self, Dtype, NpyMatrix};
use microtask::data::stream::ItemStream;
use microtask::model::{Ensemble, InputKind};
use microtask::train::{train_matrix, TrainConfig};
use std::path::{Path, PathBuf};

/// `set` (an IDX file of the shared MNIST) as `dir/NAME-{u8,f32,f16}.npy` with
/// `NAME-...-labels.npy` beside each.
fn save_as_npy(dir: &Path, idx: &Path, name: &str) -> Vec<(Dtype, PathBuf)> {
    let set = microtask::data::load(idx.to_str().unwrap()).expect("MNIST loads");
    let (n, d) = (set.len(), set.features());
    let labels: Vec<u8> = set
        .labels
        .clone()
        .expect("MNIST has labels")
        .iter()
        .flat_map(|&l| (l as i64).to_le_bytes())
        .collect();
    let f: Vec<f32> = set.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let h: Vec<u8> = f
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let f: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = Vec::new();
    for (dtype, bytes) in [(Dtype::U8, &set.pixels), (Dtype::F32, &f), (Dtype::F16, &h)] {
        let p = dir.join(format!("{name}-{}.npy", dtype.name()));
        npy::write_npy_bytes(&p, dtype.descr(), &[n, d], bytes).unwrap();
        npy::write_npy_bytes(&npy::labels_path_for(&p), "<i8", &[n], &labels).unwrap();
        out.push((dtype, p));
    }
    out
}

fn classify(model: &Ensemble, data: &str) -> microtask::Result<(ClassifyStats, String)> {
    let backend = CpuBackend::new("test");
    let job = ClassifyJob {
        backend: &backend,
        model,
        model_name: "m",
        chunk_items: 4096,
        keep_predictions: false,
        progress: &|_| {},
    };
    let mut votes = Vec::new();
    let stats = job.run(ItemStream::open(data)?, Some(&mut votes))?;
    Ok((stats, String::from_utf8(votes).unwrap()))
}

#[test]
fn mnist_as_npy_trains_and_classifies_on_every_dtype() {
    let test = "mnist_as_npy_trains_and_classifies_on_every_dtype";
    let Some(train_idx) = common::shared_file_or_skip(test, "mnist/train-images-idx3-ubyte.gz")
    else {
        return;
    };
    let Some(test_idx) = common::shared_file_or_skip(test, "mnist/t10k-images-idx3-ubyte.gz")
    else {
        return;
    };
    let dir = common::tempdir();
    let trains = save_as_npy(dir.path(), &train_idx, "train");
    let tests = save_as_npy(dir.path(), &test_idx, "test");
    let config = TrainConfig {
        epochs: 10,
        ..Default::default()
    };
    let mut models = Vec::new();
    for ((dtype, train), (_, test)) in trains.iter().zip(&tests) {
        let m = NpyMatrix::open(train).unwrap();
        let labels = npy::labels_for(train, m.rows, None).unwrap().unwrap();
        let model = train_matrix(&m, &labels, 1, &config, &|_| {}).unwrap();
        let kind = if *dtype == Dtype::U8 {
            InputKind::Pixels
        } else {
            InputKind::Features
        };
        assert_eq!((model.input, model.features()), (kind, 784));
        // The kind survives a save and load.
        let path = dir.path().join(format!("{}.safetensors", dtype.name()));
        model.save(&path).unwrap();
        let model = Ensemble::load(&path).unwrap();
        let (stats, votes) = classify(&model, test.to_str().unwrap()).unwrap();
        let accuracy = stats.worker_accuracy(0).unwrap();
        println!("{}: accuracy {accuracy:.4}", dtype.name());
        assert!(accuracy >= 0.92, "{}: accuracy {accuracy}", dtype.name());
        models.push((*dtype, model, votes));
    }

    // The u8 matrix is the IDX file's pixels: the same votes, byte for byte.
    let (_, pixel_model, npy_votes) = &models[0];
    let (_, idx_votes) = classify(pixel_model, test_idx.to_str().unwrap()).unwrap();
    assert_eq!(&idx_votes, npy_votes);

    // Another kind, or another width, is refused naming both.
    let (_, feature_model, _) = &models[1];
    let err = classify(feature_model, tests[0].1.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("uint8 pixels") && err.contains("model takes features"),
        "{err}"
    );
    let err = classify(pixel_model, tests[2].1.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("float16 features") && err.contains("model takes pixels"),
        "{err}"
    );
    let narrow = dir.path().join("narrow.npy");
    npy::write_npy_bytes(&narrow, "<f4", &[3, 512], &[0; 3 * 512 * 4]).unwrap();
    let err = classify(feature_model, narrow.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("512 values each") && err.contains("features of 784 values"),
        "{err}"
    );
}

#[test]
fn labels_beside_a_matrix_must_count_its_rows() {
    let dir = common::tempdir();
    let x = dir.path().join("x.npy");
    npy::write_npy_bytes(&x, "<f4", &[4, 2], &[0; 32]).unwrap();
    assert_eq!(npy::labels_for(&x, 4, None).unwrap(), None);
    npy::write_npy_bytes(&npy::labels_path_for(&x), "|u1", &[3], &[0, 1, 2]).unwrap();
    let err = npy::labels_for(&x, 4, None).unwrap_err().to_string();
    assert!(
        err.contains("x-labels.npy") && err.contains("3 labels for the 4 rows"),
        "{err}"
    );
    let other = dir.path().join("y.npy");
    let ones: Vec<u8> = [1i32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    npy::write_npy_bytes(&other, "<i4", &[4], &ones).unwrap();
    assert_eq!(
        npy::labels_for(&x, 4, Some(&other)).unwrap(),
        Some(vec![1; 4])
    );
    // The stream reads the matrix in chunks, with its labels.
    npy::write_npy_bytes(&npy::labels_path_for(&x), "|u1", &[4], &[0, 1, 2, 3]).unwrap();
    let mut s = ItemStream::open(x.to_str().unwrap()).unwrap();
    assert_eq!((s.len, s.features(), s.dtype()), (4, 2, Dtype::F32));
    let c = s.next_chunk(3).unwrap().unwrap();
    assert_eq!(
        (c.pixels.len(), c.labels.as_deref()),
        (24, Some(&[0, 1, 2][..]))
    );
    let c = s.next_chunk(3).unwrap().unwrap();
    assert_eq!((c.start, c.pixels.len()), (3, 8));
    assert!(s.next_chunk(3).unwrap().is_none());
}

/// A NaN or infinity anywhere in a float matrix (here in the last chunk, after votes for the
/// earlier chunks were computed) fails `classify` and `train` naming the file, row and column,
/// with no output file: corrupt features are never taken as data.
#[test]
fn a_nan_or_infinite_feature_is_refused_wherever_it_is() {
    let dir = common::tempdir();
    let d = dir.path();
    let (n, cols) = (70_000, 4);
    let mut f: Vec<f32> = (0..n * cols).map(|i| (i % 7) as f32 / 7.0).collect();
    let labels: Vec<u8> = (0..n as i64).flat_map(|i| (i % 2).to_le_bytes()).collect();
    let write = |name: &str, dtype: Dtype, values: &[f32]| {
        let p = d.join(name);
        let bytes: Vec<u8> = match dtype {
            Dtype::F16 => values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        npy::write_npy_bytes(&p, dtype.descr(), &[n, cols], &bytes).unwrap();
        npy::write_npy_bytes(&npy::labels_path_for(&p), "<i8", &[n], &labels).unwrap();
        p.to_str().unwrap().to_string()
    };
    let clean = write("clean.npy", Dtype::F32, &f);
    let model = d.join("m.safetensors");
    let m = model.to_str().unwrap();
    let o = common::microtask(&[
        "train",
        "--data",
        &clean,
        "--workers",
        "1",
        "--epochs",
        "1",
        "--out",
        m,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));

    f[(n - 3) * cols + 2] = f32::NAN;
    let nan = write("nan.npy", Dtype::F32, &f);
    f[(n - 3) * cols + 2] = 0.5;
    f[n / 2 * cols + 1] = f32::NEG_INFINITY;
    let inf16 = write("inf16.npy", Dtype::F16, &f);
    let out = d.join("votes.csv");
    for (data, row, col) in [(&nan, n - 3, 2), (&inf16, n / 2, 1)] {
        let o = common::microtask(&[
            "classify",
            "--model",
            m,
            "--data",
            data,
            "--out",
            out.to_str().unwrap(),
        ]);
        let at = format!("row {row}, column {col}");
        common::assert_clean_failure(&o, &[data, &at, "NaN or infinite"]);
        assert!(!out.exists(), "no votes file after refusing {data}");
        let o = common::microtask(&[
            "train",
            "--data",
            data,
            "--out",
            d.join("m2").to_str().unwrap(),
        ]);
        common::assert_clean_failure(&o, &[data, &at, "NaN or infinite"]);
    }
}
