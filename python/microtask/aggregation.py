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

__all__ = [
    "MajorityVote",
    "Wawa",
    "DawidSkene",
    "OneCoinDawidSkene",
    "GLAD",
    "MACE",
    "ZeroBasedSkill",
    "KOS",
    "BayesianCombination",
    "Default",
    "available_methods",
    "default_method",
]


def available_methods() -> list:
    """The engine's method names in this build."""
    from . import _engine

    return list(_engine.methods())


def default_method() -> str:
    """The library's name of its default method: what ``microtask tally`` runs with no
    ``--method`` (``"bayes"`` in this build)."""
    from . import _engine

    return _engine.default_method()


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

    def _one_class(self, frame: Frame, result: dict) -> None:
        """The attributes when every answer is one class: the engine estimates nothing then (every
        task gets that class with probability 1), so each is what crowd-kit reports there: its
        start, or the value every answer agreeing gives."""
        self._attributes(frame, result)

    # shared

    def _fit(self, data: pd.DataFrame):
        method = self._method
        if method not in available_methods():
            raise NotImplementedError(
                f"{type(self).__name__} needs the engine method {method!r}, which this build lacks "
                f"(it has {available_methods()})"
            )
        frame = Frame(data)
        return self._set(frame, frame.run(method, self._options(), None, self.backend))

    def _set(self, frame: Frame, result: dict):
        self.labels_ = frame.labels(result["labels"])
        self.probas_ = frame.probas(result["posteriors"], self._probas_columns_name)
        if len(frame.classes) == 1:
            self._one_class(frame, result)
        else:
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

    With the engine's methods module (``"ds_crowdkit"`` in :func:`available_methods`) this is
    crowd-kit's exact Dawid-Skene. Otherwise, and whenever ``smoothing`` is given or
    ``fit(data, true_labels)`` clamps known tasks, it is the library's Dawid-Skene: crowd-kit's
    start (vote shares) and stopping rule (gain per answer below ``tol``), with a pseudo-count
    ``smoothing`` (default 0.1) on the confusion counts.
    """

    _params = ("n_iter", "tol")
    priors_: Optional[pd.Series] = None
    errors_: Optional[pd.DataFrame] = None

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, smoothing: Optional[float] = None, backend: str = "cpu"):
        super().__init__(backend)
        self.n_iter = n_iter
        self.tol = tol
        self.smoothing = smoothing

    def _engine_method(self, true_labels=None) -> str:
        if self.smoothing is None and true_labels is None and "ds_crowdkit" in available_methods():
            return "ds_crowdkit"
        return "ds"

    @property
    def _method(self) -> str:  # type: ignore[override]
        return self._engine_method()

    def _options(self):
        opts = {"n_iter": self.n_iter, "tol": self.tol}
        if self.smoothing is not None:
            opts["smoothing"] = self.smoothing
        return opts

    def _attributes(self, frame, result):
        self.priors_ = frame.by_class(result["priors"], "prior")
        self.errors_ = frame.errors(result["errors"])
        self.loss_history_ = _history(result)
        self.n_iter_ = result["iterations"]

    def _one_class(self, frame, result):
        w = len(frame.workers)
        self._attributes(frame, {**result, "priors": np.ones(1), "errors": np.ones((w, 1, 1))})

    def fit(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None) -> "DawidSkene":
        if true_labels is None:
            return self._fit(data)
        frame = Frame(data)
        result = frame.run("ds", self._options(), frame.gold_codes(true_labels), self.backend)
        return self._set(frame, result)

    def fit_predict(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None) -> pd.Series:
        return self.fit(data, true_labels).labels_

    def fit_predict_proba(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None) -> pd.DataFrame:
        return self.fit(data, true_labels).probas_


def _history(result: dict) -> list:
    """``loss_history_``: the method's objective per iteration (the last one when the engine
    keeps only that)."""
    if "loss_history" in result:
        return [float(v) for v in result["loss_history"]]
    return [] if result["objective"] is None else [float(result["objective"])]


# The methods of the engine's methods module. Each needs that module in the build
# (available_methods()); without it, fit raises NotImplementedError naming what is there.


class OneCoinDawidSkene(_Aggregator):
    """Dawid-Skene with one skill per worker (crowd-kit's ``OneCoinDawidSkene``).

    Attributes: ``labels_``, ``probas_``, ``priors_``, ``skills_``, ``errors_`` (from the
    skills), ``loss_history_``."""

    _method = "onecoin"
    _params = ("n_iter", "tol")

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, backend: str = "cpu"):
        super().__init__(backend)
        self.n_iter, self.tol = n_iter, tol

    def _options(self):
        return {"n_iter": self.n_iter, "tol": self.tol}

    def _attributes(self, frame, result):
        skills = result["skills"]
        c = len(frame.classes)
        # One coin: the true class with the skill, any other with the rest split evenly.
        off = (1.0 - skills) / max(c - 1, 1)
        errors = np.repeat(off[:, None, None], c, axis=1).repeat(c, axis=2)
        idx = np.arange(c)
        errors[:, idx, idx] = skills[:, None]
        self.priors_ = frame.by_class(result["priors"], "prior")
        self.skills_ = frame.by_worker(skills, "skill")
        self.errors_ = frame.errors(errors)
        self.loss_history_ = _history(result)

    def _one_class(self, frame, result):
        w = len(frame.workers)
        self._attributes(frame, {**result, "priors": np.ones(1), "skills": np.ones(w)})


class GLAD(_Aggregator):
    """GLAD: worker skill ``alphas_`` and task difficulty ``betas_`` (crowd-kit's ``GLAD``)."""

    _method = "glad"
    _params = ("n_iter", "tol", "m_step_max_iter", "m_step_tol")
    _probas_columns_name = "variable"

    def __init__(self, n_iter: int = 100, tol: float = 1e-5, silent: bool = True, labels_priors=None,
                 alphas_priors_mean=None, betas_priors_mean=None, m_step_max_iter: int = 25,
                 m_step_tol: float = 1e-2, backend: str = "cpu"):
        super().__init__(backend)
        if labels_priors is not None or alphas_priors_mean is not None or betas_priors_mean is not None:
            raise NotImplementedError("GLAD with custom priors is not supported yet")
        self.n_iter, self.tol, self.silent = n_iter, tol, silent
        self.m_step_max_iter, self.m_step_tol = m_step_max_iter, m_step_tol

    def _options(self):
        return {"n_iter": self.n_iter, "tol": self.tol, "m_step_max_iter": self.m_step_max_iter,
                "m_step_tol": self.m_step_tol}

    def _attributes(self, frame, result):
        self.alphas_ = frame.by_worker(result["alphas"], "alpha")
        self.betas_ = frame.by_task(result["betas"], "beta")
        c = len(frame.classes)
        self.priors_ = pd.Series(np.full(c, 1.0 / c), index=frame.classes.rename(None))
        self.loss_history_ = _history(result)

    def _one_class(self, frame, result):
        # crowd-kit's start, where its EM stays: every skill and difficulty 1.
        ones = {"alphas": np.ones(len(frame.workers)), "betas": np.ones(len(frame.tasks))}
        self._attributes(frame, {**result, **ones})


class MACE(_Aggregator):
    """MACE: each worker knows or spams (crowd-kit's ``MACE``, variational).

    Attributes: ``labels_``, ``probas_``, ``spamming_`` (workers x 2), ``thetas_`` (workers x
    classes)."""

    _method = "mace"
    _params = ("n_restarts", "n_iter", "method", "smoothing", "default_noise", "alpha", "beta", "random_state")
    _probas_columns_name = None

    def __init__(self, n_restarts: int = 10, n_iter: int = 50, method: str = "vb", smoothing: float = 0.1,
                 default_noise: float = 0.5, alpha: float = 0.5, beta: float = 0.5, random_state: int = 0,
                 verbose: int = 0, backend: str = "cpu"):
        super().__init__(backend)
        if method != "vb":
            raise NotImplementedError(f"MACE method {method!r}: only 'vb' is supported")
        self.n_restarts, self.n_iter, self.method, self.smoothing = n_restarts, n_iter, method, smoothing
        self.default_noise, self.alpha, self.beta = default_noise, alpha, beta
        self.random_state, self.verbose = random_state, verbose

    def _options(self):
        return {k: getattr(self, k) for k in
                ("n_restarts", "n_iter", "smoothing", "default_noise", "alpha", "beta", "random_state")}

    def _attributes(self, frame, result):
        self.spamming_ = result["spamming"]
        self.thetas_ = result["thetas"]

    def _one_class(self, frame, result):
        # Nothing to learn: (spamming, knowing) at the mean of their Beta(alpha, beta) prior; a
        # spammer's only answer is the one class.
        w = len(frame.workers)
        prior = np.array([self.alpha, self.beta], dtype=np.float64) / (self.alpha + self.beta)
        self.spamming_ = np.tile(prior, (w, 1))
        self.thetas_ = np.ones((w, 1))


class ZeroBasedSkill(_Aggregator):
    """Weighted majority vote with skills learned by gradient steps (crowd-kit's
    ``ZeroBasedSkill``). Attributes: ``labels_``, ``probas_``, ``skills_``."""

    _method = "zbs"
    _params = ("n_iter", "lr_init", "lr_steps_to_reduce", "lr_reduce_factor", "eps")

    def __init__(self, n_iter: int = 100, lr_init: float = 1.0, lr_steps_to_reduce: int = 20,
                 lr_reduce_factor: float = 0.5, eps: float = 1e-5, backend: str = "cpu"):
        super().__init__(backend)
        self.n_iter, self.lr_init, self.lr_steps_to_reduce = n_iter, lr_init, lr_steps_to_reduce
        self.lr_reduce_factor, self.eps = lr_reduce_factor, eps

    def _options(self):
        return {k: getattr(self, k) for k in self._params}

    def _attributes(self, frame, result):
        self.skills_ = frame.by_worker(result["skills"], "skill")

    def _one_class(self, frame, result):
        # Every answer agrees with the majority: the accuracy the skills move toward, 1.
        self.skills_ = frame.agreement(result["labels"])


class KOS(_Aggregator):
    """Karger-Oh-Shah message passing, two classes (crowd-kit's ``KOS``). Attribute: ``labels_``."""

    _method = "kos"
    _params = ("n_iter", "random_state")

    def __init__(self, n_iter: int = 100, random_state: int = 0, backend: str = "cpu"):
        super().__init__(backend)
        self.n_iter, self.random_state = n_iter, random_state

    def _options(self):
        return {"n_iter": self.n_iter, "random_state": self.random_state}

    # crowd-kit's KOS has labels_ only; probas_ (the messages' hard decisions) is an extra.


class BayesianCombination(_Aggregator):
    """Bayesian classifier combination (IBCC, Kim & Ghahramani 2012) fitted by mean-field
    variational inference: a Dirichlet prior on each worker's confusion rows and on the class
    proportions; not in crowd-kit, and the library's default method. The priors follow a stated
    principle, not a data set: the proportions' is uniform; a confusion row's mean is the crowd's
    pooled row and its strength (pseudo-answers) the one under which the workers' own rows are
    most probable (empirical Bayes), re-estimated every step. ``strength`` fixes it instead.
    Stops when no task posterior moves more than ``tol``, or after ``n_iter`` steps; ties to the
    first class.

    ``fit(data, true_labels=None, model_probs=None)``: known labels are clamped (as ``tally
    --gold``); ``model_probs``, a model's class probabilities (an array ``(items, [members,]
    classes)`` whose row ``i`` is task ``i``, as ``tally --model-probs`` reads
    ``predict_proba``'s output, or a DataFrame indexed by task with a column per class), enter
    each task's prior with a weight fitted from the data (``model_weight_``).

    Attributes: ``labels_``, ``probas_``, ``priors_`` (expected class proportions, Series by
    class named ``prior``), ``errors_`` (expected P(worker answers label | true class), rows
    ``(worker, label)`` as crowd-kit's ``DawidSkene.errors_``), ``skills_`` (each worker's
    expected accuracy), ``strength_`` (the prior's pseudo-answers per true class),
    ``model_weight_`` (with ``model_probs``), ``n_iter_``."""

    _method = "bayes"
    _params = ("n_iter", "tol", "strength")
    priors_: Optional[pd.Series] = None
    errors_: Optional[pd.DataFrame] = None
    skills_: Optional[pd.Series] = None
    strength_: Optional[pd.Series] = None
    model_weight_: Optional[float] = None

    def __init__(self, n_iter: int = 100, tol: float = 1e-4, strength: Optional[float] = None,
                 backend: str = "cpu"):
        super().__init__(backend)
        self.n_iter, self.tol, self.strength = n_iter, tol, strength

    def _options(self):
        opts = {"n_iter": self.n_iter, "tol": self.tol}
        if self.strength is not None:
            opts["strength"] = self.strength
        return opts

    def _attributes(self, frame, result):
        self.n_iter_ = result["iterations"]
        self.model_weight_ = float(result["model_weight"][0]) if "model_weight" in result else None
        w = len(frame.workers)
        if "confusion" not in result:  # one class: nothing to estimate
            self.priors_ = frame.by_class(np.ones(1), "prior")
            self.errors_ = frame.errors(np.ones((w, 1, 1)))
            self.skills_ = frame.by_worker(np.ones(w), "skill")
            self.strength_ = None
            return
        # Dirichlet posterior parameters -> their means.
        props = result["proportions"] / result["proportions"].sum()
        conf = result["confusion"]  # [worker, truth, answer]
        means = conf / conf.sum(axis=2, keepdims=True)
        self.priors_ = frame.by_class(props, "prior")
        self.errors_ = frame.errors(means.transpose(0, 2, 1))
        diagonal = np.diagonal(means, axis1=1, axis2=2)  # [worker, class]
        self.skills_ = frame.by_worker(diagonal @ props, "skill")
        self.strength_ = frame.by_class(result["strength"], "strength")

    def fit(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None,
            model_probs=None) -> "BayesianCombination":
        frame = Frame(data)
        gold = None if true_labels is None else frame.gold_codes(true_labels)
        return self._set(frame, frame.run(self._method, self._options(), gold, self.backend, model_probs))

    def fit_predict(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None,
                    model_probs=None) -> pd.Series:
        return self.fit(data, true_labels, model_probs).labels_

    def fit_predict_proba(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None,
                          model_probs=None) -> pd.DataFrame:
        return self.fit(data, true_labels, model_probs).probas_


class Default(_Aggregator):
    """The library's default method with its default settings: what ``microtask tally`` runs
    with no ``--method`` (:func:`default_method` names it: ``"bayes"``, the Bayesian classifier
    combination, in this build). Use it to get exactly the CLI's labels from Python, whichever
    method the library makes its default. ``fit(data, true_labels=None, model_probs=None)``
    as ``tally --gold`` and ``--model-probs`` (see :class:`BayesianCombination`).

    Attributes: ``labels_``, ``probas_``, ``method_`` (the engine name that ran), ``skills_``
    (each worker's probability of a right answer, as ``tally --workers-out`` estimates it),
    ``model_weight_`` (with ``model_probs``), and Dawid-Skene's ``priors_`` and ``errors_``
    when that is the default."""

    _method = "default"
    method_: Optional[str] = None
    skills_: Optional[pd.Series] = None
    model_weight_: Optional[float] = None

    def _attributes(self, frame, result):
        self.method_ = default_method()
        self.model_weight_ = float(result["model_weight"][0]) if "model_weight" in result else None
        if "skills" in result:
            self.skills_ = frame.by_worker(result["skills"], "skill")
        elif "worker_accuracy" in result:
            self.skills_ = frame.by_worker(result["worker_accuracy"], "skill")
        else:
            self.skills_ = frame.agreement(result["labels"])
        if "priors" in result:
            self.priors_ = frame.by_class(result["priors"], "prior")
            self.errors_ = frame.errors(result["errors"])

    def fit(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None, model_probs=None) -> "Default":
        frame = Frame(data)
        gold = None if true_labels is None else frame.gold_codes(true_labels)
        return self._set(frame, frame.run("default", {}, gold, self.backend, model_probs))

    def fit_predict(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None, model_probs=None) -> pd.Series:
        return self.fit(data, true_labels, model_probs).labels_

    def fit_predict_proba(self, data: pd.DataFrame, true_labels: Optional[pd.Series] = None,
                          model_probs=None) -> pd.DataFrame:
        return self.fit(data, true_labels, model_probs).probas_
