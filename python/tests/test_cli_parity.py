"""Python against the CLI on the same data: predict_proba equals `classify --probs-out` bit for
bit on the MNIST test set."""

import gzip
import subprocess

import numpy as np

import microtask
from conftest import REPO


def _run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert r.returncode == 0, f"{args[1]} failed ({r.returncode}): {r.stderr}"
    return r


def _idx_images(path):
    raw = gzip.decompress(path.read_bytes())
    n, h, w = np.frombuffer(raw[4:16], dtype=">u4")
    assert int.from_bytes(raw[:4], "big") == 2051, f"{path}: not an IDX images file"
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h * w)


def test_predict_proba_is_the_clis_probs_out(cli, mnist_test, tmp_path):
    model = REPO / "assets" / "mnist-5workers.safetensors"
    _run(cli, "classify", "--model", model, "--data", mnist_test,
         "--out", tmp_path / "votes.csv", "--probs-out", tmp_path / "p.npy")
    theirs = np.load(tmp_path / "p.npy")
    x = _idx_images(mnist_test)
    for backend in ("cpu", "auto"):  # the probabilities come from the CPU whatever the backend
        ours = microtask.Model.load(str(model), backend=backend).predict_proba(x)
        assert ours.shape == theirs.shape == (10000, 5, 10)
        assert ours.dtype == theirs.dtype == np.float32
        # Bit for bit: the same float32 words, not merely close.
        differ = int((ours.view(np.uint32) != theirs.view(np.uint32)).sum())
        assert differ == 0, f"{differ} of {ours.size} probabilities differ from the CLI's ({backend})"
