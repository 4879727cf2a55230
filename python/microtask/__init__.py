"""microtask: crowd-kit-compatible aggregation and NumPy classification on a Rust engine.

- ``microtask.aggregation``: ``MajorityVote``, ``Wawa``, ``DawidSkene``, ... with crowd-kit's
  names, arguments and fitted attributes, on a pandas DataFrame of ``task, worker, label``.
- ``microtask.Model.load(path)``: an ensemble trained by ``microtask train``; ``predict``,
  ``predict_votes`` and ``predict_proba`` on uint8 NumPy arrays, on the CPU or the GPU.
- ``microtask.train(x, y, ...)``: the CLI's training, from arrays or a ``data`` path.

The engine runs without the GIL; its errors arrive as ``ValueError`` (bad input),
``OSError``/``FileNotFoundError`` (files) or ``RuntimeError`` (the GPU), with the CLI's messages.
"""

from . import _engine
from ._engine import Model, __version__
from . import aggregation

__all__ = ["Model", "train", "aggregation", "__version__"]


def train(
    x=None,
    y=None,
    *,
    data=None,
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

    Either ``x`` (``(n, features)`` uint8 pixels) with ``y`` (``n`` integer classes, 0..63), or
    ``data``: an IDX file, an image folder or ``"synth:N[:SEED]"`` (the CLI's ``--data``).
    ``height`` x ``width`` name the item shape (default: square when ``features`` is a square,
    e.g. 28x28 for 784, else 1 x features). Worker ``r`` trains on shard ``r`` of the rows.
    """
    import numpy as np

    if x is not None:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(
                f"x must be 2-D (items x features), got a {x.ndim}-D array of shape {x.shape}; "
                "reshape it with x.reshape(len(x), -1)"
            )
        if x.dtype != np.uint8:
            raise TypeError(f"x must hold uint8 pixels, got dtype {x.dtype}")
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
    return _engine.train(
        x,
        y,
        data=None if data is None else str(data),
        height=height,
        width=width,
        workers=workers,
        epochs=epochs,
        batch=batch,
        learning_rate=learning_rate,
        seed=seed,
        backend=backend,
    )
