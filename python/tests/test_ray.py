"""The Ray Data example, run for real on a local Ray: the labels equal Model.predict's."""

import sys
from pathlib import Path

import numpy as np

import microtask
from conftest import need

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def test_ray_map_batches_over_npy_shards(tmp_path, monkeypatch):
    ray = need("ray", "the scale-out example runs on Ray Data")
    need("pyarrow", "Ray Data's blocks")
    import ray_classify

    model = tmp_path / "m.safetensors"
    microtask.train(data="synth:2000:3", workers=3, epochs=1, backend="cpu").save(str(model))
    rng = np.random.default_rng(0)
    shards = tmp_path / "shards"
    shards.mkdir()
    parts = [rng.integers(0, 256, size=(n, 784), dtype=np.uint8) for n in (700, 1300, 5)]
    for i, p in enumerate(parts):
        np.save(shards / f"part-{i:03d}.npy", p)

    # Ray's workers put the driver's working directory on their path: away from python/, whose
    # microtask/ source folder (without the built engine) would shadow the installed wheel.
    monkeypatch.chdir(tmp_path)
    # Logical CPUs: the read tasks need one besides the two actors' (else Ray Data waits forever).
    ray.init(num_cpus=4, include_dashboard=False, ignore_reinit_error=True)
    try:
        ds = ray_classify.classify_shards(str(model), str(shards), actors=2, batch_size=512, backend="cpu")
        rows = ds.to_pandas()
        ray_classify.main(
            ["--model", str(model), "--shards", str(shards), "--out", str(tmp_path / "out"),
             "--backend", "cpu", "--batch-size", "512"]
        )
    finally:
        ray.shutdown()

    want = microtask.Model.load(str(model), backend="cpu").predict(np.concatenate(parts))
    assert len(rows) == len(want)
    np.testing.assert_array_equal(rows["label"].to_numpy(), want)
    assert [Path(p).name for p in rows["path"].unique()] == [f"part-{i:03d}.npy" for i in range(3)]
    assert list((tmp_path / "out").glob("*.parquet"))
