"""fit_predict time of microtask.aggregation against crowd-kit on a synthetic crowd.

    python bench_aggregation.py [--tasks 1000000] [--answers 5] [--classes 2] [--workers 1000]
                                [--methods DawidSkene,GLAD] [--ids int|str] [--n-iter N --tol T]
                                [--no-crowdkit]

Workers have accuracies drawn from [0.55, 0.95]; each task gets ``answers`` answers from
distinct random workers. crowd-kit takes minutes per million tasks: ``--no-crowdkit`` times
ours alone. Each time is printed as wall clock and CPU time (all of the process's threads):
the engine runs on every core, crowd-kit mostly on one. ``--ids str`` gives tasks, workers and
labels as strings ("t17", "w3", "c1"), which pandas factorizes by hashing; integer ids take a
faster path. ``--n-iter``/``--tol`` set both sides' ``n_iter``/``tol`` (``--tol 0`` runs exactly
``n_iter`` iterations); otherwise each class's defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def synthetic(tasks: int, answers: int, classes: int, workers: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, tasks)
    skill = rng.uniform(0.55, 0.95, workers)
    task = np.repeat(np.arange(tasks), answers)
    # distinct workers per task: a random offset plus a stride
    start = rng.integers(0, workers, tasks)
    worker = (start[:, None] + np.arange(answers)[None, :] * 7919) % workers
    worker = worker.ravel()
    right = rng.random(task.size) < skill[worker]
    wrong = (truth[task] + rng.integers(1, max(classes, 2), task.size)) % classes
    label = np.where(right, truth[task], wrong)
    return pd.DataFrame({"task": task, "worker": worker, "label": label}), pd.Series(truth)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--answers", type=int, default=5)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1000)
    ap.add_argument("--methods", default="MajorityVote,Wawa,DawidSkene")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--ids", choices=["int", "str"], default="int")
    ap.add_argument("--n-iter", type=int)
    ap.add_argument("--tol", type=float)
    ap.add_argument("--no-crowdkit", action="store_true")
    a = ap.parse_args(argv)

    from microtask import aggregation as ours

    df, truth = synthetic(a.tasks, a.answers, a.classes, a.workers)
    if a.ids == "str":
        df = df.astype(str).radd(pd.Series({"task": "t", "worker": "w", "label": "c"}), axis=1)
        truth = "c" + truth.astype(str)
        truth.index = "t" + truth.index.astype(str)
    print(f"{a.tasks} tasks x {a.answers} answers, {a.classes} classes, {a.workers} workers, {a.ids} ids")
    settings = {k: v for k, v in (("n_iter", a.n_iter), ("tol", a.tol)) if v is not None}
    for name in a.methods.split(","):
        m = getattr(ours, name)(backend=a.backend, **settings)
        (wall, cpu), labels = timed(m.fit_predict, df)
        acc = (labels.reindex(truth.index) == truth).mean()
        steps = getattr(m, "n_iter_", None) or len(getattr(m, "loss_history_", []) or []) or "?"
        line = f"{name:18s} ({steps} iterations) microtask {wall:8.2f} s wall {cpu:8.2f} s CPU (accuracy {acc:.4f})"
        if not a.no_crowdkit:
            import crowdkit.aggregation as ck

            (ck_wall, ck_cpu), _ = timed(getattr(ck, name)(**settings).fit_predict, df)
            line += (f"   crowd-kit {ck_wall:8.2f} s wall {ck_cpu:8.2f} s CPU   {ck_wall / wall:6.1f}x wall "
                     f"{ck_cpu / cpu:6.1f}x CPU")
        print(line, flush=True)


def timed(f, *args):
    """``((wall seconds, CPU seconds), f(*args))``."""
    w, c = time.perf_counter(), time.process_time()
    out = f(*args)
    return (time.perf_counter() - w, time.process_time() - c), out


if __name__ == "__main__":
    main()
