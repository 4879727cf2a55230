"""Aggregation with crowd-kit's API on the microtask engine.

Each class has crowd-kit's name, constructor arguments, ``fit``/``fit_predict``/
``fit_predict_proba`` and fitted attributes (``labels_``, ``probas_``, ``priors_``, ``errors_``,
``skills_``), indexed and named as crowd-kit's: ``labels_`` is a Series named ``agg_label``
indexed by ``task``; ``probas_`` a DataFrame indexed by ``task`` with one column per class.
Input: a DataFrame with columns ``task``, ``worker``, ``label`` (any hashable ids, labels of any
type). Classes are sorted (when they compare), and a task's label is its most probable class,
exact ties to the first class in that order.

Extra keyword (not crowd-kit's): ``backend="cpu"|"gpu"|"auto"`` chooses the engine's device.

Adding a method of the engine (``microtask._engine.methods()`` lists them) takes one class:
set ``_method`` to its engine name, pass its settings in ``_options`` and turn its named arrays
into crowd-kit's attributes in ``_attributes`` (see :class:`DawidSkene`).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from ._frame import Frame

__all__ = ["MajorityVote", "Wawa", "DawidSkene", "available_methods"]


def available_methods() -> list:
    """The engine's method names in this build."""
    from . import _engine

    return list(_engine.methods())


class _Aggregator:
    """fit / fit_predict / fit_predict_proba over one engine method."""

    _method: str = ""
    _params: tuple = ()  # constructor arguments, for repr and get_params
    _probas_columns_name: Optional[str] = "label"

    labels_: Optional[pd.Series] = None
    probas_: Optional[pd.DataFrame] = None

    def __init__(self, backend: str = "cpu"):
        self.backend = backend

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._params)
        return f"{type(self).__name__}({args})"

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self._params + ("backend",)}

    # a method's own part

    def _options(self) -> dict:
        return {}

    def _attributes(self, frame: Frame, result: dict) -> None:
        """Sets the method's fitted attributes beyond labels_ and probas_."""

    # shared

    def _fit(self, data: pd.DataFrame, true_labels=None):
        frame = Frame(data)
        gold = None if true_labels is None else frame.gold_codes(true_labels)
        result = frame.run(self._method, self._options(), gold, self.backend)
        self.labels_ = frame.labels(result["labels"])
        self.probas_ = frame.probas(result["posteriors"], self._probas_columns_name)
        self._attributes(frame, result)
        self._frame, self._result = frame, result
        return self

    def fit(self, data: pd.DataFrame):
        return self._fit(data)

    def fit_predict(self, data: pd.DataFrame) -> pd.Series:
        return self.fit(data).labels_

    def fit_predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        return self.fit(data).probas_


def _weighted_vote(frame: Frame, weights: np.ndarray):
    """Per task, the class with the largest summed worker weight (ties to the first class):
    label codes and the weight shares (tasks x classes)."""
    t, c = len(frame.tasks), len(frame.classes)
    scores = np.bincount(
        frame.task * c + frame.label, weights=weights[frame.worker], minlength=t * c
    ).reshape(t, c)
    total = scores.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probas = scores / total
    return scores.argmax(axis=1), probas


def _skills_of(frame: Frame, skills: pd.Series) -> np.ndarray:
    """``skills`` (a Series by worker) aligned to the frame's workers; every worker needs one."""
    if not isinstance(skills, pd.Series):
        raise TypeError(f"skills must be a pandas Series indexed by worker, not {type(skills).__name__}")
    aligned = skills.reindex(frame.workers)
    missing = aligned.isna()
    if missing.any():
        raise ValueError(
            f"skills lacks {int(missing.sum())} worker(s) of the data, e.g. {aligned.index[missing][0]!r}"
        )
    return aligned.to_numpy(dtype=np.float64)


class MajorityVote(_Aggregator):
    """Majority vote: the most answered class per task (ties to the first class).

    Attributes: ``labels_``, ``probas_`` (vote shares), ``skills_`` (each worker's agreement
    with the majority). With ``skills`` given to ``fit``, a weighted majority vote.
    """

    _method = "mv"
    _params = ("default_skill", "on_missing_skill")
    skills_: Optional[pd.Series] = None

    def __init__(self, default_skill: Optional[float] = None, on_missing_skill: str = "error", backend: str = "cpu"):
        super().__init__(backend)
        self.default_skill = default_skill
        self.on_missing_skill = on_missing_skill

    def _attributes(self, frame, result):
        self.skills_ = frame.agreement(result["labels"])

    def fit(self, data: pd.DataFrame, skills: Optional[pd.Series] = None) -> "MajorityVote":
        if skills is None:
            return self._fit(data)
        frame = Frame(data)
        if self.default_skill is not None:
            skills = skills.reindex(frame.workers).fillna(self.default_skill)
        codes, probas = _weighted_vote(frame, _skills_of(frame, skills))
        self.labels_ = frame.labels(codes)
        self.probas_ = frame.probas(probas)
        self.skills_ = frame.agreement(codes)
        return self

    def fit_predict(self, data: pd.DataFrame, skills: Optional[pd.Series] = None) -> pd.Series:
        return self.fit(data, skills).labels_

    def fit_predict_proba(self, data: pd.DataFrame, skills: Optional[pd.Series] = None) -> pd.DataFrame:
        return self.fit(data, skills).probas_


class Wawa(_Aggregator):
    """Worker Agreement with Aggregate: workers weighted by their agreement with the majority
    vote, then a weighted majority vote. ``fit`` learns ``skills_``; ``predict`` applies them."""

    _method = "wawa"
    skills_: Optional[pd.Series] = None

    def _attributes(self, frame, result):
        self.skills_ = frame.by_worker(result["skills"], "skill")

    def fit(self, data: pd.DataFrame) -> "Wawa":
        return self._fit(data)

    def _apply(self, data: pd.DataFrame) -> "Wawa":
        if self.skills_ is None:
            raise RuntimeError("Wawa is not fitted: call fit(data) first")
        fitted = getattr(self, "_frame", None)
        if fitted is not None and data is fitted.data:
            return self  # the answers last seen: their labels stand
        frame = Frame(data)
        codes, probas = _weighted_vote(frame, _skills_of(frame, self.skills_))
        self.labels_ = frame.labels(codes)
        self.probas_ = frame.probas(probas)
        self._frame = frame
        return self

    def predict(self, data: pd.DataFrame) -> pd.Series:
        return self._apply(data).labels_

    def predict_proba(self, data: pd.DataFrame) -> pd.DataFrame:
        return self._apply(data).probas_


class DawidSkene(_Aggregator):
    """Dawid-Skene EM: a confusion matrix per worker and class priors.

    Attributes: ``labels_``, ``probas_``, ``priors_`` (Series by class, named ``prior``),
    ``errors_`` (rows ``(worker, label)`` for each answer a worker gave, columns the true classes:
    P(worker answers label | true class)), ``loss_history_``.

    Today this runs the library's Dawid-Skene: crowd-kit's start (vote shares) and its stopping
    rule (gain per answer below ``tol``), with a small smoothing of the confusion counts
    (``smoothing``, 0.1); crowd-kit's exact variant (no smoothing) comes with the methods module.
    ``fit(data, true_labels)`` clamps the tasks with a known label, as crowd-kit does.
    """

    _method = "ds"
    _params = ("n_iter", "tol")
    priors_: Optional[pd.Series] = None
    errors_: Optional[pd.DataFrame] = None

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, smoothing: float = 0.1, backend: str = "cpu"):
        super().__init__(backend)
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing

    def _options(self):
        return {"n_iter": self.n_iter, "tol": self.tol, "smoothing": self.smoothing}

    def _attributes(self, frame, result):
        self.priors_ = frame.by_class(result["priors"], "prior")
        self.errors_ = frame.errors(result["errors"])
        self.loss_history_ = [] if result["objective"] is None else [result["objective"]]
        self.n_iter_ = result["iterations"]

    def fit(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None) -> "DawidSkene":
        return self._fit(data, true_labels)

    def fit_predict(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None) -> pd.Series:
        return self.fit(data, true_labels).labels_

    def fit_predict_proba(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None) -> pd.DataFrame:
        return self.fit(data, true_labels).probas_
