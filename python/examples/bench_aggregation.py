"""fit_predict time of microtask.aggregation against crowd-kit on a synthetic crowd.

    python bench_aggregation.py [--tasks 1000000] [--answers 5] [--classes 2] [--workers 1000]
                                [--methods DawidSkene,GLAD] [--no-crowdkit]

Workers have accuracies drawn from [0.55, 0.95]; each task gets ``answers`` answers from
distinct random workers. crowd-kit takes minutes per million tasks: ``--no-crowdkit`` times
ours alone.
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
    ap.add_argument("--no-crowdkit", action="store_true")
    a = ap.parse_args(argv)

    from microtask import aggregation as ours

    df, truth = synthetic(a.tasks, a.answers, a.classes, a.workers)
    print(f"{a.tasks} tasks x {a.answers} answers, {a.classes} classes, {a.workers} workers")
    for name in a.methods.split(","):
        m = getattr(ours, name)(backend=a.backend)
        t0 = time.perf_counter()
        labels = m.fit_predict(df)
        t_ours = time.perf_counter() - t0
        acc = (labels.sort_index().to_numpy() == truth.to_numpy()).mean()
        line = f"{name:18s} microtask {t_ours:8.2f} s (accuracy {acc:.4f})"
        if not a.no_crowdkit:
            import crowdkit.aggregation as ck

            t0 = time.perf_counter()
            getattr(ck, name)().fit_predict(df)
            t_ck = time.perf_counter() - t0
            line += f"   crowd-kit {t_ck:8.2f} s   {t_ck / t_ours:6.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
