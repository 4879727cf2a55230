"""crowd-kit 1.4.2 on the shared crowd sets: accuracy on gold per method, and DawidSkene's posteriors.

Usage: python3 scripts/crowdkit_compare.py [--data ../shared/data] [--out DIR] [--methods DS,GLAD,...]
Prints one JSON line per (set, method). With --out, writes DIR/<set>.ds.csv (task,label,p_<class>...)
from DawidSkene with its own defaults (n_iter=100, tol=1e-5), so that tests or a reader can compare
labels with microtask's `ds_crowdkit` task by task. Votes are read as strings (as crowd-kit's
peer script does), so classes sort as strings; on the shared sets that is also numeric order.
"""
import argparse, json, os, time
import pandas as pd
from crowdkit.aggregation import (DawidSkene, GLAD, KOS, MACE, MajorityVote, OneCoinDawidSkene,
                                  ZeroBasedSkill)

ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.environ.get("MICROTASK_SHARED_DATA", "../shared/data"))
ap.add_argument("--out")
ap.add_argument("--methods", default="MV,DS,DS100,OneCoinDS,OneCoinDS100,GLAD,MACE,ZBS,KOS")
ap.add_argument("--sets", default="rte,temp,dog,product,sentiment")
a = ap.parse_args()
make = {
    "MV": MajorityVote,
    "DS": DawidSkene,  # crowd-kit's defaults: n_iter=100, tol=1e-5
    "DS100": lambda: DawidSkene(n_iter=100, tol=float("-inf")),  # exactly 100 iterations
    "OneCoinDS": OneCoinDawidSkene,
    "OneCoinDS100": lambda: OneCoinDawidSkene(n_iter=100, tol=float("-inf")),
    "GLAD": GLAD,
    "MACE": MACE,
    "ZBS": ZeroBasedSkill,
    "KOS": KOS,
}
for s in a.sets.split(","):
    d = os.path.join(a.data, "crowd", s)
    votes = pd.read_csv(os.path.join(d, "votes.csv"), dtype=str)
    gold = pd.read_csv(os.path.join(d, "gold.csv"), dtype=str).set_index("task")["label"]
    for m in a.methods.split(","):
        if m == "KOS" and votes.label.nunique() != 2:
            continue
        t = time.perf_counter()
        agg = make[m]()
        try:
            pred = agg.fit_predict(votes)
            acc = float((pred.reindex(gold.index).astype(str) == gold).mean())
        except Exception as e:  # crowd-kit's KOS fails on a zero-sum task (no label for sign 0)
            print(json.dumps({"set": s, "method": m, "error": repr(e)}), flush=True)
            continue
        out = {"set": s, "method": m, "accuracy": round(acc, 4), "seconds": round(time.perf_counter() - t, 2)}
        if hasattr(agg, "loss_history_"):
            out["iterations"] = len(agg.loss_history_)
        print(json.dumps(out), flush=True)
        if m == "DS" and a.out:
            os.makedirs(a.out, exist_ok=True)
            p = agg.probas_.copy()
            p.columns = [f"p_{c}" for c in p.columns]
            p.insert(0, "label", pred.reindex(p.index))
            p.index.name = "task"
            p.to_csv(os.path.join(a.out, f"{s}.ds.csv"), float_format="%.17g")
