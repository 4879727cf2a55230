"""Python against the CLI on the same data: predict_proba equals `classify --probs-out` bit for
bit on the MNIST test set, and the rate of predicting 1M x 512 float32 rows from Python next to
the CLI's on the same .npy, labels and probabilities (printed, with their ratios; timing is not
asserted)."""

import gzip
import os
import resource
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


def _cpu(who):
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def test_rate_of_float32_rows_against_the_cli(cli, tmp_path):
    """MICROTASK_RATE_ROWS rows (default 1M) x 512 float32, one worker, on the CPU, measured
    MICROTASK_RATE_REPS times (default 3), the CLI and Python in turn: `classify` against
    `Model.predict` (labels), and `classify --probs-out` against `Model.predict_proba`. Python
    maps the same .npy afresh each time (np.load(mmap_mode="r"): read in place, no copy), as the
    CLI maps it. Printed, medians over the repetitions: the rates by wall clock (the CLI's is the
    items/s it prints: reading, classifying and writing, overlapped) and by CPU time (rows per
    CPU-second; the CLI's counts its whole process: start, model load, CSV writing); their ratios.
    Timing is not asserted."""
    try:
        _rate(cli, tmp_path)
    finally:
        # 2 GB of rows: not left to pytest's retention of temporary folders.
        for f in tmp_path.iterdir():
            f.unlink()


def _rate(cli, tmp_path):
    rows, d = int(os.environ.get("MICROTASK_RATE_ROWS", 1_000_000)), 512
    reps = int(os.environ.get("MICROTASK_RATE_REPS", 3))
    xs, ys, model = tmp_path / "x.npy", tmp_path / "y.npy", tmp_path / "m.safetensors"
    _features_npy(xs, ys, rows, d)
    _run(cli, "train", "--data", xs, "--labels", ys, "--workers", 1, "--epochs", 1, "--out", model)
    m = microtask.Model.load(str(model), backend="cpu")
    assert m.input == "features" and m.features == d
    m.predict(np.load(xs, mmap_mode="r")[:1000])  # warm: the backend's threads
    out, probs = tmp_path / "votes.csv", tmp_path / "p.npy"
    kinds = {"predict": ((), m.predict), "predict_proba": (("--probs-out", probs), m.predict_proba)}
    rates = {k: {"cli wall": [], "cli cpu": [], "py wall": [], "py cpu": []} for k in kinds}
    for rep in range(reps):
        for kind, (flags, predict) in kinds.items():
            c0 = _cpu(resource.RUSAGE_CHILDREN)
            r = _run(cli, "classify", "--model", model, "--data", xs, "--backend", "cpu", "--out", out, *flags)
            cli_cpu = _cpu(resource.RUSAGE_CHILDREN) - c0
            summary = next(l for l in r.stdout.splitlines() if l.startswith("classified "))
            x = np.load(xs, mmap_mode="r")  # a fresh mapping, as the CLI's
            c0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
            got = predict(x)
            py, py_cpu = time.perf_counter() - t0, _cpu(resource.RUSAGE_SELF) - c0
            del x
            if rep == 0:  # the same answers as the CLI's
                if kind == "predict":
                    votes = np.loadtxt(out, delimiter=",", skiprows=1, usecols=2, dtype=np.int64, max_rows=1000)
                    assert (votes == got[:1000]).all(), "Python's labels are not the CLI's"
                else:
                    theirs = np.load(probs, mmap_mode="r")[:1000]
                    assert (got[:1000].view(np.uint32) == theirs.view(np.uint32)).all(), \
                        "Python's probabilities are not the CLI's"
            del got
            for key, value in (("cli wall", _number(summary, "items/s")), ("cli cpu", rows / cli_cpu),
                               ("py wall", rows / py), ("py cpu", rows / py_cpu)):
                rates[kind][key].append(value)
    lines = [f"\n{rows} x {d} f32, 1 worker, cpu, medians of {reps} (M rows/s):"]
    for kind, r in rates.items():
        med = {k: float(np.median(v)) for k, v in r.items()}
        lines.append(
            f"  {kind:13s} wall: Python {med['py wall'] / 1e6:.2f}, CLI {med['cli wall'] / 1e6:.2f}, "
            f"ratio {med['py wall'] / med['cli wall']:.2f}; CPU: Python {med['py cpu'] / 1e6:.2f}, "
            f"CLI {med['cli cpu'] / 1e6:.2f}, ratio {med['py cpu'] / med['cli cpu']:.2f} (target >= 0.9)"
        )
    lines.append(f"  load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    print("\n".join(lines))
