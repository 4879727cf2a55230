//! Model files: round trip, and refusal of NaN and wrong shapes.

mod common;

use common::tempdir;
use microtask::model::Ensemble;
use std::collections::HashMap;
use std::path::Path;

fn model() -> Ensemble {
    let mut m = Ensemble::zeros(2, 3, 2, 2);
    m.weight
        .iter_mut()
        .enumerate()
        .for_each(|(i, w)| *w = i as f32 * 0.5);
    m.bias = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    m
}

#[test]
fn safetensors_round_trip() {
    let dir = tempdir();
    let p = dir.path().join("m.safetensors");
    model().save(&p).unwrap();
    assert_eq!(Ensemble::load(&p).unwrap(), model());
    assert_eq!(model().worker(1).bias, vec![4.0, 5.0, 6.0]);
}

#[test]
fn nan_weights_are_refused() {
    let mut m = model();
    m.weight[3] = f32::NAN;
    let bytes = m.to_bytes().unwrap();
    let msg = Ensemble::from_bytes(&bytes, Path::new("nan.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nan.safetensors") && msg.contains("NaN"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_is_refused() {
    // A weight tensor whose shape disagrees with the metadata.
    let w = vec![0f32; 5 * 4];
    let b = vec![0f32; 6];
    let views = [
        (
            "weight",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![5, 4],
                bytemuck::cast_slice(&w),
            )
            .unwrap(),
        ),
        (
            "bias",
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![6],
                bytemuck::cast_slice(&b),
            )
            .unwrap(),
        ),
    ];
    let meta: HashMap<String, String> = [
        ("workers", "2"),
        ("classes", "3"),
        ("height", "2"),
        ("width", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    let bytes = safetensors::serialize(views, &Some(meta)).unwrap();
    let msg = Ensemble::from_bytes(&bytes, Path::new("shape.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("wrong shape"), "{msg}");
    let msg = Ensemble::from_bytes(b"garbage", Path::new("g.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not a safetensors model"), "{msg}");
}
