"""microtask: crowd-kit-compatible aggregation and NumPy classification on a Rust engine.

- ``microtask.aggregation``: ``MajorityVote``, ``Wawa``, ``DawidSkene``, ... with crowd-kit's
  names, arguments and fitted attributes, on a pandas DataFrame of ``task, worker, label``.
- ``microtask.Model.load(path)``: an ensemble trained by ``microtask train``; ``predict``,
  ``predict_votes`` and ``predict_proba`` on NumPy arrays (uint8 pixels, or float16/float32
  features for a model trained on features), read in place, on the CPU or the GPU.
- ``microtask.train(x, y, ...)``: the CLI's training, from arrays or a ``data`` path.

The engine runs without the GIL; its errors arrive as ``ValueError`` (bad input),
``OSError``/``FileNotFoundError`` (files) or ``RuntimeError`` (the GPU), with the CLI's messages.
"""

import os as _os
import stat as _stat
import tempfile as _tempfile


def _private_runtime_dir():
    """Mesa's Vulkan drivers print ``error: XDG_RUNTIME_DIR is invalid or not set`` on stderr
    when the engine looks for GPU adapters without it. As the CLI does: when it is unset or not
    absolute, point it at this user's own folder (``<tmp>/microtask-runtime-<uid>``, mode 0700),
    before the engine starts a thread."""
    current = _os.environ.get("XDG_RUNTIME_DIR")
    if (current and _os.path.isabs(current)) or not hasattr(_os, "getuid"):
        return
    uid = _os.getuid()
    path = _os.path.join(_tempfile.gettempdir(), f"microtask-runtime-{uid}")
    try:
        _os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return
    st = _os.lstat(path)
    # Only a real folder of ours that nobody else may enter (not a link someone planted).
    if _stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_mode & 0o077 == 0:
        _os.environ["XDG_RUNTIME_DIR"] = path


_private_runtime_dir()

from . import _engine  # noqa: E402
from ._engine import Model, __version__  # noqa: E402
from . import aggregation  # noqa: E402

__all__ = ["Model", "train", "aggregation", "__version__"]


def train(
    x=None,
    y=None,
    *,
    data=None,
    labels=None,
    height=None,
    width=None,
    workers=5,
    epochs=10,
    batch=32,
    learning_rate=0.001,
    seed=1,
    backend="auto",
):
    """Trains an ensemble as ``microtask train`` does and returns a :class:`Model`.

    Either ``x`` with ``y`` (``n`` integer classes, 0..63), or ``data``: an IDX file, an image
    folder, ``"synth:N[:SEED]"`` or a ``.npy`` matrix with its ``labels`` ``.npy`` (the CLI's
    ``--data`` and ``--labels``). ``x`` is ``(n, features)``: uint8 pixels, or float16/float32
    features (a model that then takes features of that width). ``height`` x ``width`` name a
    pixel item's shape (default: square when ``features`` is a square, e.g. 28x28 for 784, else
    1 x features). Worker ``r`` trains on shard ``r`` of the rows.
    """
    import numpy as np

    if x is not None:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(
                f"x must be 2-D (items x features), got a {x.ndim}-D array of shape {x.shape}; "
                "reshape it with x.reshape(len(x), -1)"
            )
        if x.dtype not in (np.uint8, np.float16, np.float32):
            hint = "; convert it with x.astype(np.float32)" if x.dtype.kind == "f" else ""
            raise TypeError(
                f"x must hold uint8 pixels or float16/float32 features, got dtype {x.dtype}{hint}"
            )
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one class per row), got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"y must hold integer classes, got dtype {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() > 63):
            raise ValueError(
                f"y holds classes from {y.min()} to {y.max()}; a model has classes 0..63"
            )
        y = np.ascontiguousarray(y, dtype=np.uint8)
    if x is not None and x.dtype != np.uint8:
        return _train_features(x, y, data=data, labels=labels, height=height, width=width,
                               workers=workers, epochs=epochs, batch=batch,
                               learning_rate=learning_rate, seed=seed, backend=backend)
    return _engine.train(
        x,
        y,
        data=None if data is None else str(data),
        labels=None if labels is None else str(labels),
        height=height,
        width=width,
        workers=workers,
        epochs=epochs,
        batch=batch,
        learning_rate=learning_rate,
        seed=seed,
        backend=backend,
    )


def _train_features(x, y, *, data, labels, height, width, **settings):
    """Float features train as the CLI trains a float ``.npy`` matrix (the library's path for
    them), so the arrays go through a temporary ``.npy`` pair."""
    import tempfile

    import numpy as np

    if y is None or data is not None or labels is not None:
        raise ValueError("give either x and y (arrays) or data (a path or synth:N), not both")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} rows, y {len(y)} labels")
    if height is not None or width is not None:
        raise ValueError("height and width are for pixels; feature rows are 1 x features")
    with tempfile.TemporaryDirectory(prefix="microtask-train-") as tmp:
        xs, ys = f"{tmp}/x.npy", f"{tmp}/y.npy"
        np.save(xs, np.ascontiguousarray(x))
        np.save(ys, y)
        return _engine.train(None, None, data=xs, labels=ys, **settings)
