"""microtask.Model and microtask.train on NumPy arrays: shapes, agreement between predict,
predict_votes and predict_proba, the backends, and bad input."""

import os
import subprocess
import time

import numpy as np
import pytest

import microtask

FEATURES = 784


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    m = microtask.train(data="synth:3000:7", workers=3, epochs=1, backend="cpu")
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    m.save(str(path))
    return path


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(1000, FEATURES), dtype=np.uint8)


def test_load_predict_and_probabilities_agree(model, items):
    m = microtask.Model.load(str(model), backend="cpu")
    assert (m.workers, m.classes, m.features, m.shape) == (3, 10, FEATURES, (28, 28))
    labels, conf = m.predict_votes(items)
    assert labels.shape == conf.shape == (1000, 3)
    proba = m.predict_proba(items)
    assert proba.shape == (1000, 3, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-5)
    # Each vote is its worker's most probable class, with that probability (off near-ties).
    top2 = np.sort(proba, axis=2)[:, :, -2:]
    clear = (top2[:, :, 1] - top2[:, :, 0]) > 1e-5
    assert (proba.argmax(axis=2) == labels)[clear].all()
    np.testing.assert_allclose(proba.max(axis=2), conf, atol=1e-5)
    # predict is the majority of the votes.
    pred = m.predict(items)
    assert pred.shape == (1000,) and pred.dtype == np.int64
    counts = np.apply_along_axis(np.bincount, 1, labels, minlength=10)
    assert (counts[np.arange(1000), pred] == counts.max(axis=1)).all()


def test_weights_round_trip(model, tmp_path):
    m = microtask.Model.load(str(model), backend="cpu")
    assert m.weight.shape == (3, 10, FEATURES) and m.bias.shape == (3, 10)
    m.save(str(tmp_path / "again.safetensors"))
    again = microtask.Model.load(str(tmp_path / "again.safetensors"), backend="cpu")
    np.testing.assert_array_equal(again.weight, m.weight)


def test_train_from_arrays_learns(items):
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=len(items))
    x = items.copy()
    x[y == 1, :100] = 255  # class 1: a bright band
    x[y == 0, :100] = 0
    m = microtask.train(x, y, workers=2, epochs=3, backend="cpu")
    assert m.classes == 2 and m.shape == (28, 28)
    assert (m.predict(x) == y).mean() > 0.95


def test_views_and_copies_give_the_same_answer(model, items):
    m = microtask.Model.load(str(model), backend="cpu")
    wide = np.zeros((len(items), FEATURES * 2), dtype=np.uint8)
    wide[:, ::2] = items
    strided = wide[:, ::2]  # not C-contiguous: copied, same result
    np.testing.assert_array_equal(m.predict(strided), m.predict(items))
    assert m.predict(items[:0]).shape == (0,)


def test_gpu_backend_agrees_with_cpu(model, items):
    try:
        gpu = microtask.Model.load(str(model), backend="gpu")
    except RuntimeError as e:
        if os.environ.get("MICROTASK_REQUIRE_GPU") == "1":
            pytest.fail(f"MICROTASK_REQUIRE_GPU=1 but no GPU adapter: {e}")
        pytest.skip(f"no GPU adapter: {e}")
    cpu = microtask.Model.load(str(model), backend="cpu")
    lg, _ = gpu.predict_votes(items)
    lc, _ = cpu.predict_votes(items)
    assert (lg == lc).mean() > 0.999


def test_matches_the_cli(model, items, tmp_path, cli):
    # An IDX images file (magic 2051, big-endian n x 28 x 28), which every CLI version reads.
    header = np.array([2051, len(items), 28, 28], dtype=">u4").tobytes()
    (tmp_path / "x-idx3-ubyte").write_bytes(header + items.tobytes())
    out = tmp_path / "votes.csv"
    r = subprocess.run(
        [str(cli), "classify", "--model", str(model), "--data", str(tmp_path / "x-idx3-ubyte"),
         "--backend", "cpu", "--out", str(out)],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    import pandas as pd

    votes = pd.read_csv(out)
    labels, _ = microtask.Model.load(str(model), backend="cpu").predict_votes(items)
    assert (votes["label"].to_numpy().reshape(-1, 3) == labels).all()


def test_large_batch_rate(model):
    """Rows per second from Python, printed (the CLI's rate is in `microtask bench`)."""
    m = microtask.Model.load(str(model), backend="cpu")
    x = np.random.default_rng(1).integers(0, 256, size=(100_000, FEATURES), dtype=np.uint8)
    m.predict_votes(x[:1000])
    t0 = time.perf_counter()
    m.predict_votes(x)
    dt = time.perf_counter() - t0
    print(f"\npredict_votes: {len(x) / dt / 1e6:.2f} M rows/s ({len(x)} x {FEATURES} u8, 3 workers, cpu)")


@pytest.mark.parametrize(
    "x,error,words",
    [
        (np.zeros((4, 28, 28), np.uint8), ValueError, "2-D"),
        (np.zeros((4, 100), np.uint8), ValueError, "100 features"),
        (np.zeros((4, FEATURES), np.float32), TypeError, "float"),
        (np.zeros((4, FEATURES), np.int64), TypeError, "uint8"),
        ([[0] * FEATURES], TypeError, "NumPy array"),
    ],
    ids=["3-D", "wrong-width", "float32", "int64", "list"],
)
def test_bad_arrays_name_the_problem(model, x, error, words):
    m = microtask.Model.load(str(model), backend="cpu")
    for f in (m.predict, m.predict_votes, m.predict_proba):
        with pytest.raises(error, match=words):
            f(x)


def test_bad_files_and_settings(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        microtask.Model.load(str(tmp_path / "nope.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="safetensors"):
        microtask.Model.load(str(tmp_path / "junk.safetensors"), backend="cpu")
    with pytest.raises(ValueError, match="backend"):
        microtask.Model.load(str(tmp_path / "junk.safetensors"), backend="tpu")
    with pytest.raises(ValueError, match="0..63"):
        microtask.train(np.zeros((10, 4), np.uint8), np.full(10, 70), workers=1)
    with pytest.raises(ValueError, match="either"):
        microtask.train(data="synth:10", x=np.zeros((10, 4), np.uint8), y=np.zeros(10, np.uint8))
