"""Scale-out from Python: classify a directory of .npy shards with Ray Data and microtask.

Each shard is an ``(n, features)`` uint8 array. Ray Data reads the shards, hands batches to a
pool of ``ClassifierActor``s (each loads the model once, then classifies batch after batch with
the GIL released), and writes one Parquet file per block with ``path``, ``row`` and the
ensemble's ``label``.

    python ray_classify.py --model model.safetensors --shards shards/ --out labels/ \
        [--actors 2] [--batch-size 8192] [--backend auto]

On a cluster, point ``ray.init`` at it (``RAY_ADDRESS``) and put the shards where every node
reads them; nothing else changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


class ClassifierActor:
    """One model per actor; ``__call__`` classifies one batch of rows."""

    def __init__(self, model_path: str, backend: str = "auto"):
        import microtask

        self.model = microtask.Model.load(model_path, backend=backend)

    def __call__(self, batch: dict) -> dict:
        x = np.ascontiguousarray(np.stack(batch["data"]) if batch["data"].dtype == object else batch["data"])
        labels, conf = self.model.predict_votes(x)
        return {
            "path": batch["path"],
            "label": self.model.predict(x),
            "votes": labels,
            "confidence": conf.min(axis=1),
        }


def classify_shards(model: str, shards: str, actors: int = 2, batch_size: int = 8192, backend: str = "auto"):
    """The Ray Dataset of predictions, one row per item, in shard order."""
    import ray
    import ray.cloudpickle

    if __name__ != "__main__":
        # Imported (as the test does): ship this module's classes to the workers by value, so
        # they need not find this file on their path.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    files = sorted(str(p) for p in Path(shards).glob("*.npy"))
    if not files:
        raise ValueError(f"no .npy shards in {shards}")
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # rows come back in shard order
    ds = ray.data.read_numpy(files, include_paths=True)
    return ds.map_batches(
        ClassifierActor,
        fn_constructor_kwargs={"model_path": model, "backend": backend},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--shards", required=True, help="a directory of (n, features) uint8 .npy files")
    ap.add_argument("--out", required=True, help="a directory for the Parquet output")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])
    a = ap.parse_args(argv)

    import ray

    ray.init(ignore_reinit_error=True)
    ds = classify_shards(a.model, a.shards, a.actors, a.batch_size, a.backend).materialize()
    ds.drop_columns(["votes"]).write_parquet(a.out)
    print(f"classified {ds.count()} items -> {a.out}")


if __name__ == "__main__":
    main()
