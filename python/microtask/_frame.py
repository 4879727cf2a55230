"""Answers as the engine takes them: a crowd-kit DataFrame (``task``, ``worker``, ``label``)
factorized into dense codes, and the engine's arrays back into pandas objects indexed and
named as crowd-kit's are."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from . import _engine

COLUMNS = ("task", "worker", "label")


def _factorize(col: pd.Series):
    """Codes and uniques, the uniques sorted when they can be (crowd-kit's groupby order)."""
    fast = _factorize_ints(col)
    if fast is not None:
        return fast
    try:
        return pd.factorize(col, sort=True)
    except TypeError:  # mixed types that do not compare: first-appearance order
        return pd.factorize(col, sort=False)


def _factorize_ints(col: pd.Series):
    """``pd.factorize(col, sort=True)`` for a NumPy integer column whose values span a range no
    longer than a few times the column: a presence table over that range instead of a hash
    table and a sort (1M tasks x 5 answers: 0.13 s -> 0.04 s for the three columns). ``None``
    for any other column."""
    if not (isinstance(col.dtype, np.dtype) and col.dtype.kind in "iu") or len(col) == 0:
        return None
    v = col.to_numpy()
    lo, hi = int(v.min()), int(v.max())
    span = hi - lo + 1
    if span > max(4 * len(v), 1 << 16) or hi >= 1 << 63:
        return None  # sparse ids: the hash table is smaller
    shifted = v.astype(np.int64, copy=False)
    if lo:
        shifted = shifted - lo
    present = np.zeros(span, dtype=bool)
    present[shifted] = True
    uniques = (np.flatnonzero(present) + lo).astype(v.dtype)
    if len(uniques) == span:  # dense ids: the shifted values are the codes
        return shifted, pd.Index(uniques)
    return (np.cumsum(present, dtype=np.int64) - 1)[shifted], pd.Index(uniques)


class Frame:
    """One factorized answer table: ``task``/``worker``/``label`` codes (int64) and the
    ``tasks``/``workers``/``classes`` indexes they point into."""

    def __init__(self, data):
        if not isinstance(data, pd.DataFrame):
            raise TypeError(
                "data must be a pandas DataFrame with columns task, worker, label, "
                f"not {type(data).__name__}"
            )
        missing = [c for c in COLUMNS if c not in data.columns]
        if missing:
            raise ValueError(
                f"data lacks the column(s) {missing}: it needs task, worker and label "
                f"(it has {list(data.columns)})"
            )
        if len(data) == 0:
            raise ValueError("data holds no answers (an empty frame): nothing to aggregate")
        self.data = data
        codes = {}
        for name in COLUMNS:
            col = data[name]
            na = col.isna().to_numpy()
            if na.any():
                first = data.index[np.argmax(na)]
                raise ValueError(
                    f"column {name!r} holds {int(na.sum())} missing value(s) (NaN/None), "
                    f"the first at index {first!r}: drop or fill them first"
                )
            codes[name] = _factorize(col)
        (self.task, tasks), (self.worker, workers), (self.label, classes) = (
            codes[c] for c in COLUMNS
        )
        self.tasks = pd.Index(tasks, name="task")
        self.workers = pd.Index(workers, name="worker")
        self.classes = pd.Index(classes, name="label")
        self.task = np.ascontiguousarray(self.task, dtype=np.int64)
        self.worker = np.ascontiguousarray(self.worker, dtype=np.int64)
        self.label = np.ascontiguousarray(self.label, dtype=np.int64)

    def gold_codes(self, true_labels) -> np.ndarray:
        """``true_labels`` (a Series by task) as one class code per task, -1 where absent."""
        if not isinstance(true_labels, pd.Series):
            raise TypeError(
                f"true_labels must be a pandas Series indexed by task, not {type(true_labels).__name__}"
            )
        gold = true_labels.dropna()
        unknown = ~gold.isin(self.classes)
        if unknown.any():
            raise ValueError(
                f"true_labels holds {int(unknown.sum())} class(es) no answer gives, "
                f"e.g. {gold[unknown].iloc[0]!r}"
            )
        codes = np.full(len(self.tasks), -1, dtype=np.int64)
        at = self.tasks.get_indexer(gold.index)
        known = at >= 0
        codes[at[known]] = self.classes.get_indexer(gold[known])
        return codes

    def run(self, method: str, options: dict, gold=None, backend: str = "cpu", model_probs=None) -> dict:
        """The engine's result for ``method``: labels, posteriors and the method's arrays."""
        model = {} if model_probs is None else self.model_probs(model_probs)
        return _engine.aggregate(
            method,
            self.task,
            self.worker,
            self.label,
            len(self.tasks),
            len(self.workers),
            len(self.classes),
            gold=gold,
            options={k: float(v) for k, v in options.items()},
            backend=backend,
            **model,
        )

    def model_probs(self, probs) -> dict:
        """A model's class probabilities as the engine reads ``tally --model-probs``: an ``.npy``
        file's bytes and the names that join it to the answers.

        - A NumPy array ``(items, members, classes)`` (``predict_proba``, ``classify
          --probs-out``) or ``(items, classes)``: as ``tally`` reads the file, row ``i`` is the
          task ``i`` (tasks must be those integers) and column ``c`` the class ``c``.
        - A DataFrame indexed by task with one column per class (as ``probas_``): joined by
          those names; a task it lacks gets no model evidence.
        """
        if isinstance(probs, pd.DataFrame):
            missing = self.classes.difference(probs.columns)
            if len(missing):
                raise ValueError(
                    f"model_probs lacks a column for {len(missing)} class(es) of the answers, "
                    f"e.g. {missing[0]!r} (it has {list(probs.columns)[:10]})"
                )
            aligned = probs.reindex(index=self.tasks, columns=self.classes)
            covered = aligned.notna().all(axis=1).to_numpy()
            partial = aligned.notna().any(axis=1).to_numpy() & ~covered
            if partial.any():
                raise ValueError(
                    f"model_probs has missing values (NaN) in {int(partial.sum())} row(s), "
                    f"e.g. task {self.tasks[np.argmax(partial)]!r}"
                )
            if not covered.any():
                raise ValueError(
                    "model_probs has a row for no task of the answers (its index must be the "
                    f"tasks, e.g. {self.tasks[0]!r})"
                )
            array = aligned.fillna(0.0).to_numpy(dtype=np.float32)
            task_names = [str(i) if c else "" for i, c in enumerate(covered)]
            class_names = [str(c) for c in range(len(self.classes))]
        else:
            array = np.asarray(probs)
            if array.ndim not in (2, 3):
                raise ValueError(
                    "model_probs must be (items, classes) or (items, members, classes) "
                    f"probabilities, got a {array.ndim}-D array of shape {array.shape}"
                )
            if array.dtype.kind != "f":
                raise TypeError(f"model_probs must hold float probabilities, got dtype {array.dtype}")
            task_names = [str(t) for t in self.tasks]
            class_names = [str(c) for c in self.classes]
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(array, dtype="<f4"), allow_pickle=False)
        return dict(model_probs=buf.getvalue(), task_names=task_names, class_names=class_names)

    # crowd-kit's pandas objects. The arrays are the engine's, new for each fit: wrapped, not
    # copied (pandas 3 copies an array by default; 1M tasks x 10 classes: 0.19 s).

    def labels(self, codes: np.ndarray) -> pd.Series:
        """``labels_``: the class per task, named ``agg_label``, indexed by ``task``."""
        return pd.Series(self.classes.take(codes), index=self.tasks, name="agg_label", copy=False)

    def probas(self, posteriors: np.ndarray, columns_name="label") -> pd.DataFrame:
        """``probas_``: tasks x classes, indexed by ``task``."""
        return pd.DataFrame(
            posteriors,
            index=self.tasks,
            columns=self.classes.rename(columns_name),
            copy=False,
        )

    def by_worker(self, values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=self.workers, name=name, copy=False)

    def by_task(self, values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=self.tasks, name=name, copy=False)

    def by_class(self, values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=self.classes, name=name, copy=False)

    def agreement(self, label_codes: np.ndarray) -> pd.Series:
        """Per worker, the share of its answers equal to ``label_codes`` of their tasks
        (crowd-kit's ``get_accuracy``): ``skills_`` of MajorityVote and Wawa."""
        agree = (label_codes[self.task] == self.label).astype(np.float64)
        n = np.bincount(self.worker, minlength=len(self.workers))
        hits = np.bincount(self.worker, weights=agree, minlength=len(self.workers))
        return self.by_worker(hits / np.maximum(n, 1), "skill")

    def errors(self, errors: np.ndarray) -> pd.DataFrame:
        """``errors_`` from ``[worker, answer, truth]``: one row per (worker, label) pair that
        occurs in the answers, as crowd-kit's, columns the true classes."""
        c = len(self.classes)
        # Pairs that occur, in (worker, label) order: a count per cell, O(answers) without a sort.
        pairs = np.flatnonzero(np.bincount(self.worker * c + self.label, minlength=len(self.workers) * c))
        w, l = pairs // c, pairs % c
        index = pd.MultiIndex.from_arrays(
            [self.workers.take(w), self.classes.take(l)], names=["worker", "label"]
        )
        return pd.DataFrame(errors[w, l, :], index=index, columns=self.classes.rename(None), copy=False)
