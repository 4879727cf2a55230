"""Feature models on float16/float32 NumPy arrays: trained from Python, predicted in place with
the GIL released, and the wrong kind of input refused with a message naming it."""

import threading
import time

import numpy as np
import pytest

import microtask

D, CLASSES = 48, 4


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D)).astype(np.float32)
    return x, x[:, :CLASSES].argmax(axis=1)  # linearly separable


@pytest.fixture(scope="module")
def model():
    x, y = _data(4000, 1)
    return microtask.train(x, y, workers=3, epochs=5, learning_rate=0.01, backend="cpu")


def test_trained_on_features_predicts_them(model):
    assert model.input == "features" and model.features == D and model.classes == CLASSES
    x, y = _data(2000, 2)
    assert (model.predict(x) == y).mean() > 0.9
    # float16 rows are the same numbers rounded: nearly always the same label.
    assert (model.predict(x.astype(np.float16)) == model.predict(x)).mean() > 0.99


def test_train_from_float16(model):
    x, y = _data(4000, 1)
    m = microtask.train(x.astype(np.float16), y, workers=3, epochs=5, learning_rate=0.01, backend="cpu")
    assert m.input == "features" and (m.predict(x) == y).mean() > 0.9


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_probabilities_and_votes_agree(model, dtype):
    x = _data(1000, 3)[0].astype(dtype)
    labels, conf = model.predict_votes(x)
    proba = model.predict_proba(x)
    assert proba.shape == (1000, 3, CLASSES) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=2), 1.0, atol=1e-5)
    top2 = np.sort(proba, axis=2)[:, :, -2:]
    clear = (top2[:, :, 1] - top2[:, :, 0]) > 1e-5
    assert (proba.argmax(axis=2) == labels)[clear].all()
    np.testing.assert_allclose(proba.max(axis=2), conf, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_views_and_copies_give_the_same_answer(model, dtype):
    x = _data(500, 4)[0].astype(dtype)
    wide = np.zeros((len(x), 2 * D), dtype=dtype)
    wide[:, ::2] = x
    for other in (wide[:, ::2], np.asfortranarray(x), x[::-1][::-1]):
        np.testing.assert_array_equal(model.predict_proba(other), model.predict_proba(x))
        np.testing.assert_array_equal(model.predict(other), model.predict(x))
    assert model.predict(x[:0]).shape == (0,)


def test_the_gil_is_released_while_the_engine_runs(model):
    x = np.random.default_rng(5).standard_normal((400_000, D)).astype(np.float32)
    done = threading.Event()
    ticks = 0

    def work():
        model.predict_proba(x)
        done.set()

    t = threading.Thread(target=work)
    t0 = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0)
    t.join()
    dt = time.perf_counter() - t0
    # With the GIL held for the whole call this thread could not run until it ended.
    assert ticks > 100, f"{ticks} ticks in {dt:.2f} s"


def test_the_wrong_kind_is_refused(model, tmp_path):
    pixels = microtask.train(data="synth:300:1", workers=1, epochs=1, backend="cpu")
    with pytest.raises(TypeError, match="takes uint8 pixels.*trained on pixels"):
        pixels.predict(np.zeros((2, 784), np.float32))
    with pytest.raises(TypeError, match="takes float16 or float32 features.*trained on features"):
        model.predict(np.zeros((2, D), np.uint8))
    with pytest.raises(TypeError, match=r"float64.*astype\(np.float32\)"):
        model.predict_proba(np.zeros((2, D)))
    with pytest.raises(TypeError, match="byte order"):
        model.predict(np.zeros((2, D), ">f4"))
    with pytest.raises(ValueError, match="10 features per row, the model expects 48"):
        model.predict_votes(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        model.predict(np.zeros((2, D, 1), np.float32))
    with pytest.raises(TypeError, match="float64"):
        microtask.train(np.zeros((10, D)), np.zeros(10, np.int64), workers=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nan_and_infinite_features_are_refused(model, dtype):
    x, y = _data(300, 3)
    x = x.astype(dtype)
    x[217, 5] = np.nan
    for predict in (model.predict, model.predict_votes, model.predict_proba):
        with pytest.raises(ValueError, match="row 217, column 5: a NaN or infinite feature"):
            predict(x)
    x[217, 5] = 0
    x[3, 0] = -np.inf
    with pytest.raises(ValueError, match="row 3, column 0: a NaN or infinite feature"):
        model.predict(x)
    with pytest.raises(ValueError, match="row 3, column 0: a NaN or infinite feature"):
        microtask.train(x, y, workers=1, epochs=1)
