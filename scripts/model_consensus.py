#!/usr/bin/env python3
"""A humans-plus-model job, run through `microtask tally --model-probs` and cleanlab's CROWDLAB
on the same files in the same sitting.

- Items: the 10,000 MNIST test images (../shared/data/mnist), true labels from the IDX file.
- Model: assets/mnist-5workers.safetensors (5 softmax workers), its probabilities as probs.npy
  [N, R, C] f32: from `microtask classify --probs-out` with --probs-from-classify, else computed
  here with NumPy (the two agree within 2e-6).
- Annotators: --annotators simulated people of accuracy uniform in [--acc-lo, --acc-hi]; each item
  gets 1 to 3 answers from distinct annotators; a wrong answer is any other class alike.
- Compared: accuracy of the consensus labels; AUROC of each per-task quality score for finding
  the items whose consensus label is wrong (1.0 = every wrong label scored below every right
  one); humans only (bayes, ds) beside humans + model (bayes --model-probs, CROWDLAB).

Usage: /work/shared/bench/.venv/bin/python scripts/model_consensus.py [--seed 1] [--out DIR]
Needs numpy, pandas, safetensors and cleanlab (`pip install cleanlab`).
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def model_probs(model_path, images):
    from safetensors.numpy import load_file
    from safetensors import safe_open

    meta = safe_open(model_path, "np").metadata()
    r, c = int(meta["workers"]), int(meta["classes"])
    t = load_file(model_path)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    logits = (x @ t["weight"].T + t["bias"]).reshape(len(images), r, c)
    logits -= logits.max(axis=2, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(axis=2, keepdims=True)).astype(np.float32)


def simulate(truth, classes, annotators, acc_lo, acc_hi, seed):
    rng = np.random.default_rng(seed)
    acc = rng.uniform(acc_lo, acc_hi, annotators)
    rows = []
    for t, y in enumerate(truth):
        for w in rng.choice(annotators, size=rng.integers(1, 4), replace=False):
            if rng.random() < acc[w]:
                label = y
            else:
                label = (y + 1 + rng.integers(0, classes - 1)) % classes
            rows.append((t, w, int(label)))
    return rows, acc


def auroc(score, wrong):
    """P(score of a wrong label < score of a right one), ties half."""
    wrong = np.asarray(wrong, bool)
    if wrong.all() or not wrong.any():
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    s = np.asarray(score)[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_w, n_r = wrong.sum(), (~wrong).sum()
    # Mann-Whitney on "right scores higher".
    u = ranks[~wrong].sum() - n_r * (n_r + 1) / 2
    return float(u / (n_w * n_r))


def tally(binary, votes, out_dir, name, extra):
    labels = os.path.join(out_dir, f"{name}.labels.csv")
    cmd = [binary, "tally", "--votes", votes, "--out", labels, "--backend", "cpu", "--json"]
    cmd += extra
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {res.stderr}")
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    import pandas as pd

    df = pd.read_csv(labels)
    return df, summary, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--model", default="assets/mnist-5workers.safetensors")
    ap.add_argument("--binary", default="target/release/microtask")
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--acc-lo", type=float, default=0.55)
    ap.add_argument("--acc-hi", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="keep the files here (default: a temporary folder)")
    ap.add_argument("--probs-from-classify", action="store_true",
                    help="make probs.npy with `microtask classify --probs-out`")
    args = ap.parse_args()

    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"))
    truth = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(int)
    n, k = len(truth), 10
    out_dir = args.out or tempfile.mkdtemp(prefix="model-consensus-")
    os.makedirs(out_dir, exist_ok=True)

    probs_path = os.path.join(out_dir, "probs.npy")
    if args.probs_from_classify:
        images_path = os.path.join(args.data, "t10k-images-idx3-ubyte.gz")
        subprocess.run([args.binary, "classify", "--model", args.model, "--data", images_path,
                        "--out", os.path.join(out_dir, "model-votes.csv"),
                        "--probs-out", probs_path, "--backend", "cpu"], check=True,
                       capture_output=True)
        probs = np.load(probs_path)
    else:
        probs = model_probs(args.model, images)
        np.save(probs_path, probs)
    ensemble = probs.mean(axis=1)
    model_acc = float((ensemble.argmax(1) == truth).mean())

    rows, acc = simulate(truth, k, args.annotators, args.acc_lo, args.acc_hi, args.seed)
    votes = os.path.join(out_dir, "votes.csv")
    with open(votes, "w") as f:
        f.write("task,worker,label\n")
        for t, w, l in rows:
            f.write(f"{t},a{w},{l}\n")

    results = []

    def ours(name, extra):
        df, summary, secs = tally(args.binary, votes, out_dir, name, extra)
        pred = np.full(n, -1)
        conf = np.zeros(n)
        pred[df["task"].to_numpy()] = df["label"].to_numpy()
        conf[df["task"].to_numpy()] = df["confidence"].to_numpy()
        wrong = pred != truth
        results.append(
            (name, 1 - wrong.mean(), auroc(conf, wrong), secs, summary.get("model_weight"))
        )

    ours("microtask bayes (humans only)", ["--method", "bayes"])
    ours("microtask ds (humans only)", ["--method", "ds"])
    ours("microtask bayes --model-probs", ["--model-probs", probs_path])

    wide = np.full((n, args.annotators), np.nan)
    for t, w, l in rows:
        wide[t, w] = l
    t0 = time.perf_counter()
    res = get_label_quality_multiannotator(
        pd.DataFrame(wide), ensemble, verbose=False, return_weights=True
    )
    secs = time.perf_counter() - t0
    lq = res["label_quality"]
    pred = lq["consensus_label"].to_numpy()
    wrong = pred != truth
    results.append(
        (
            "cleanlab CROWDLAB (model's full probabilities)",
            1 - wrong.mean(),
            auroc(lq["consensus_quality_score"].to_numpy(), wrong),
            secs,
            float(res["model_weight"]),
        )
    )

    print(
        f"MNIST test, {n} items, {len(rows)} answers from {args.annotators} annotators "
        f"(accuracy {args.acc_lo}-{args.acc_hi}, 1-3 per item, seed {args.seed}); "
        f"model alone {model_acc:.4f}; files in {out_dir}"
    )
    print("| method | accuracy | AUROC (quality score finds wrong labels) | seconds | model weight |")
    print("|---|---|---|---|---|")
    for name, a, auc, secs, w in results:
        ws = "-" if w is None else f"{w:.3f}"
        print(f"| {name} | {a:.4f} | {auc:.4f} | {secs:.2f} | {ws} |")


if __name__ == "__main__":
    main()
