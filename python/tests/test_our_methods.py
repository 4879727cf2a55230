"""Our methods beyond crowd-kit's: the Bayesian classifier combination and the library's default
method (the labels `microtask tally` gives with no --method)."""

import subprocess

import numpy as np
import pandas as pd
import pytest

import microtask.aggregation as ours
from conftest import CROWD_SETS
from test_aggregation import describe, load


@pytest.mark.parametrize("name", CROWD_SETS)
def test_bayesian_combination_on_the_crowd_sets(crowd_dir, name):
    if "bayes" not in ours.available_methods():
        pytest.skip("this build's engine lacks 'bayes' (the methods module)")
    votes, gold = load(crowd_dir, name)
    bcc = ours.BayesianCombination()
    labels = bcc.fit_predict(votes)
    ds = ours.DawidSkene().fit(votes)
    # The same objects as DawidSkene's, with the same names and dtypes.
    for a in ("labels_", "probas_", "priors_", "errors_"):
        assert describe(getattr(bcc, a)) == describe(getattr(ds, a)), a
    np.testing.assert_allclose(bcc.probas_.sum(axis=1), 1.0, atol=1e-9)
    assert abs(bcc.priors_.sum() - 1.0) < 1e-9
    assert bcc.strength_.index.equals(bcc.priors_.index) and (bcc.strength_ > 0).all()
    assert 1 <= bcc.n_iter_ <= 100
    # Each label is its task's most probable class.
    assert (bcc.probas_.idxmax(axis=1) == labels).all()
    acc = lambda s: (s.reindex(gold.index) == gold).mean()
    mv = ours.MajorityVote().fit_predict(votes)
    print(f"\n{name:9s} BayesianCombination accuracy {acc(labels):.4f} (DawidSkene "
          f"{acc(ds.labels_):.4f}, MajorityVote {acc(mv):.4f}), {bcc.n_iter_} steps")
    # Fixed prior strength: still a distribution per task.
    fixed = ours.BayesianCombination(strength=2.0).fit(votes)
    np.testing.assert_allclose(fixed.probas_.sum(axis=1), 1.0, atol=1e-9)


def test_bayesian_combination_settings_and_degenerate_input():
    if "bayes" not in ours.available_methods():
        pytest.skip("this build's engine lacks 'bayes' (the methods module)")
    with pytest.raises(ValueError, match="strength"):
        ours.BayesianCombination(strength=0).fit(_votes())
    one = pd.DataFrame({"task": [1, 2, 2], "worker": ["a", "a", "b"], "label": ["x", "x", "x"]})
    b = ours.BayesianCombination().fit(one)
    assert (b.labels_ == "x").all() and b.priors_.tolist() == [1.0]
    assert repr(ours.BayesianCombination(n_iter=5)) == "BayesianCombination(n_iter=5, tol=1e-06, strength=None)"


def _votes():
    return pd.DataFrame({"task": [1, 1, 2, 2, 3], "worker": ["a", "b", "a", "b", "a"],
                         "label": ["y", "y", "n", "y", "n"]})


@pytest.mark.parametrize("name", CROWD_SETS)
def test_default_is_what_tally_gives(crowd_dir, cli, name, tmp_path):
    votes, _ = load(crowd_dir, name)
    d = ours.Default()
    labels = d.fit_predict(votes)
    assert d.method_ == ours.default_method()
    out = tmp_path / "labels.csv"
    r = subprocess.run([cli, "tally", "--votes", str(crowd_dir / name / "votes.csv"), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    theirs = pd.read_csv(out).set_index("task")["label"].reindex(labels.index)
    differ = int((theirs != labels).sum())
    assert differ == 0, f"{differ} of {len(labels)} labels differ from tally's"
    assert describe(d.probas_) == describe(ours.MajorityVote().fit(votes).probas_) or d.method_ != "mv"
