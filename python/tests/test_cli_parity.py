"""Python against the CLI on the same data: predict_proba equals `classify --probs-out` bit for
bit on the MNIST test set, and the rate of predicting 1M x 512 float32 rows from Python next to
the CLI's on the same .npy (printed, with their ratio; timing is not asserted)."""

import gzip
import os
import subprocess
import time

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


def _features_npy(xs, ys, rows, d, seed=11, chunk=100_000):
    """A (rows, d) float32 .npy written chunk by chunk (no 2 GB array in memory) and its
    labels: the argmax of the first 10 features."""
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(xs, mode="w+", dtype=np.float32, shape=(rows, d))
    y = np.empty(rows, np.uint8)
    for i in range(0, rows, chunk):
        part = rng.standard_normal((min(chunk, rows - i), d), dtype=np.float32)
        x[i : i + len(part)] = part
        y[i : i + len(part)] = part[:, :10].argmax(axis=1)
    x.flush()
    del x
    np.save(ys, y)


def _number(line, before):
    """The number just before `before` in `line` ("... (123 items/s) ..." -> 123.0)."""
    head = line[: line.index(before)].rstrip()
    return float(head.split()[-1].lstrip("("))


def test_rate_of_float32_rows_against_the_cli(cli, tmp_path):
    """MICROTASK_RATE_ROWS rows (default 1M) x 512 float32, one worker, on the CPU. Python maps
    the same .npy (np.load(mmap_mode="r"): read in place, no copy) and predicts its votes; the
    CLI's rate is the items/s it prints for `classify` (reading, classifying and writing the
    votes, overlapped)."""
    try:
        _rate(cli, tmp_path)
    finally:
        # 2 GB of rows: not left to pytest's retention of temporary folders.
        for f in tmp_path.iterdir():
            f.unlink()


def _rate(cli, tmp_path):
    rows, d = int(os.environ.get("MICROTASK_RATE_ROWS", 1_000_000)), 512
    xs, ys, model = tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "m.safetensors"
    _features_npy(xs, ys, rows, d)
    _run(cli, "train", "--data", xs, "--labels", ys, "--workers", 1, "--epochs", 1, "--out", model)
    out = tmp_path / "votes.csv"
    r = _run(cli, "classify", "--model", model, "--data", xs, "--backend", "cpu", "--out", out)
    lines = r.stdout.splitlines()
    summary = next(l for l in lines if l.startswith("classified "))
    stages = next((l for l in lines if "stages" in l), "")
    cli_rate = _number(summary, "items/s")
    m = microtask.Model.load(str(model), backend="cpu")
    assert m.input == "features" and m.features == d
    x = np.load(xs, mmap_mode="r")
    m.predict_votes(x[:1000])  # warm: the backend's threads, the first pages
    t0 = time.perf_counter()
    labels, _ = m.predict_votes(x)
    py = time.perf_counter() - t0
    votes = np.loadtxt(out, delimiter=",", skiprows=1, usecols=2, dtype=np.int64, max_rows=1000)
    assert (votes == labels[:1000, 0]).all(), "Python's votes are not the CLI's"
    py_rate = rows / py
    msg = (
        f"\n{rows} x {d} f32, 1 worker, cpu: Python predict_votes {py_rate / 1e6:.2f} M rows/s "
        f"({py:.2f} s); CLI classify {cli_rate / 1e6:.2f} M rows/s; "
        f"ratio {py_rate / cli_rate:.2f} (target >= 0.9)\nCLI: {summary.strip()}"
    )
    if stages:
        compute = _number(stages, "s, tally")
        msg += f"\nCLI: {stages.strip()} (compute alone: {rows / compute / 1e6:.2f} M rows/s)"
    print(msg)
