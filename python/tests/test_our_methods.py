"""Our methods beyond crowd-kit's: the Bayesian classifier combination, the library's default
method (the labels `microtask tally` gives with no --method), and a model's probabilities in the
consensus (`tally --model-probs`)."""

import gzip
import subprocess

import numpy as np
import pandas as pd
import pytest

import microtask.aggregation as ours
import microtask
from conftest import CROWD_SETS, REPO
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
    assert repr(ours.BayesianCombination(n_iter=5)) == "BayesianCombination(n_iter=5, tol=0.0001, strength=None)"


def _votes():
    return pd.DataFrame({"task": [1, 1, 2, 2, 3], "worker": ["a", "b", "a", "b", "a"],
                         "label": ["y", "y", "n", "y", "n"]})


def _tally(cli, votes_csv, out, *flags):
    r = subprocess.run([cli, "tally", "--votes", str(votes_csv), "--out", str(out), *map(str, flags)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return pd.read_csv(out).set_index("task")["label"]


@pytest.mark.parametrize("name", CROWD_SETS)
def test_default_is_what_tally_gives(crowd_dir, cli, name, tmp_path):
    votes, _ = load(crowd_dir, name)
    d = ours.Default()
    labels = d.fit_predict(votes)
    assert d.method_ == ours.default_method()
    theirs = _tally(cli, crowd_dir / name / "votes.csv", tmp_path / "labels.csv").reindex(labels.index)
    differ = int((theirs != labels).sum())
    assert differ == 0, f"{differ} of {len(labels)} labels differ from tally's"
    assert d.skills_.index.equals(pd.Index(sorted(votes.worker.unique()), name="worker"))
    if d.method_ == "bayes":
        # The class with the library's default settings is the same fit.
        bcc = ours.BayesianCombination().fit(votes)
        pd.testing.assert_series_equal(bcc.labels_, labels)
        np.testing.assert_allclose(bcc.skills_, d.skills_, atol=1e-6)
    if "bayes" in ours.available_methods():
        # BayesianCombination's defaults (n_iter, tol) are the CLI's: `tally --method bayes`
        # gives the same labels and, to its float32 output, the same posteriors (a tol of 1e-6
        # instead of the CLI's 1e-4 moves them by up to 2e-4 on these sets).
        posteriors = tmp_path / "posteriors.csv"
        bayes = _tally(cli, crowd_dir / name / "votes.csv", tmp_path / "bayes.csv", "--method", "bayes",
                       "--posteriors-out", posteriors)
        mine = ours.BayesianCombination().fit(votes)
        differ = int((bayes.reindex(mine.labels_.index) != mine.labels_).sum())
        assert differ == 0, f"{differ} of {len(mine.labels_)} BayesianCombination labels differ from tally's"
        theirs = pd.read_csv(posteriors).set_index("task")
        # tally's header holds the class names as text.
        theirs = theirs.rename(columns={str(c): c for c in mine.probas_.columns})[list(mine.probas_.columns)]
        gap = (mine.probas_ - theirs.reindex(mine.probas_.index)).abs().to_numpy().max()
        assert gap < 1e-6, f"BayesianCombination's posteriors are {gap:.2g} from tally --method bayes's"


def _mnist_job(mnist_test, seed=7):
    """Humans plus a model on the MNIST test items: 50 simulated annotators (accuracy 0.55 to
    0.95, wrong answers uniform), 1 to 3 answers per item; the model's probabilities are
    predict_proba's (the bytes `classify --probs-out` writes). Task i is item i."""
    labels_gz = mnist_test.with_name("t10k-labels-idx1-ubyte.gz")
    truth = np.frombuffer(gzip.decompress(labels_gz.read_bytes()), np.uint8, offset=8).astype(np.int64)
    raw = gzip.decompress(mnist_test.read_bytes())
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(len(truth), -1)
    probs = microtask.Model.load(str(REPO / "assets" / "mnist-5workers.safetensors"), backend="cpu").predict_proba(x)
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.55, 0.95, 50)
    rows = []
    for t in range(len(truth)):
        for w in rng.choice(50, size=rng.integers(1, 4), replace=False):
            right = rng.random() < skill[w]
            label = truth[t] if right else (truth[t] + rng.integers(1, 10)) % 10
            rows.append((t, f"w{w}", int(label)))
    votes = pd.DataFrame(rows, columns=["task", "worker", "label"])
    return votes, pd.Series(truth, name="label").rename_axis("task"), probs


def test_model_probs_as_tally_takes_them(cli, mnist_test, tmp_path):
    votes, truth, probs = _mnist_job(mnist_test)
    votes.to_csv(tmp_path / "votes.csv", index=False)
    np.save(tmp_path / "p.npy", probs)
    theirs = _tally(cli, tmp_path / "votes.csv", tmp_path / "labels.csv", "--model-probs", tmp_path / "p.npy")
    humans = ours.Default().fit_predict(votes)
    d = ours.Default()
    labels = d.fit_predict(votes, model_probs=probs)
    bcc = ours.BayesianCombination().fit(votes, model_probs=probs)
    differ = int((theirs.reindex(labels.index) != labels).sum())
    assert differ == 0, f"{differ} of {len(labels)} labels differ from tally --model-probs"
    pd.testing.assert_series_equal(bcc.labels_, labels)
    assert bcc.model_weight_ > 0 and abs(bcc.model_weight_ - d.model_weight_) < 1e-12
    acc = lambda s: (s.reindex(truth.index) == truth).mean()
    print(f"\nMNIST humans + model: bayes with the model {acc(labels):.4f} (weight "
          f"{bcc.model_weight_:.3f}), humans only {acc(humans):.4f}")
    assert acc(labels) > acc(humans)
    # A DataFrame by task and class: joined by names, the same fit as the array.
    one = probs[:, 0, :]
    frame = pd.DataFrame(one, index=pd.Index(range(len(one)), name="task"), columns=range(10))
    by_array = ours.BayesianCombination().fit_predict(votes, model_probs=one)
    by_frame = ours.BayesianCombination().fit_predict(votes, model_probs=frame)
    pd.testing.assert_series_equal(by_array, by_frame)
    # String task ids and labels join a DataFrame as well (an array needs integer ones).
    named = votes.assign(task="t" + votes.task.astype(str), label="c" + votes.label.astype(str))
    renamed = frame.rename(index=lambda t: f"t{t}", columns=lambda c: f"c{c}")
    by_names = ours.BayesianCombination().fit_predict(named, model_probs=renamed)
    assert (by_names.str[1:].astype(int).reindex("t" + by_frame.index.astype(str)).to_numpy()
            == by_frame.to_numpy()).all()


def test_model_probs_bad_input():
    votes = _votes()
    with pytest.raises(ValueError, match="class 'n' is not one of the model's columns"):
        ours.BayesianCombination().fit(votes, model_probs=np.full((4, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match="lacks a column"):
        ours.Default().fit(votes, model_probs=pd.DataFrame({"y": [0.5, 0.5]}, index=[1, 2]))
    with pytest.raises(ValueError, match="1-D"):
        ours.BayesianCombination().fit(votes, model_probs=np.zeros(3))
    with pytest.raises(ValueError, match="outside"):
        frame = pd.DataFrame({"n": [2.0, 0.5], "y": [0.5, 0.5]}, index=[1, 2])
        ours.BayesianCombination().fit(votes, model_probs=frame)
    with pytest.raises(ValueError, match="a row for no task"):
        frame = pd.DataFrame({"n": [0.5], "y": [0.5]}, index=[9])
        ours.BayesianCombination().fit(votes, model_probs=frame)
    numbered = votes.assign(label=(votes.label == "y").astype(int))  # tasks 1..3, one row: 0
    with pytest.raises(ValueError, match="no task of the votes is a row"):
        ours.BayesianCombination().fit(numbered, model_probs=np.full((1, 2), 0.5, np.float32))
