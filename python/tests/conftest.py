"""Shared test settings: where the shared data lives, and optional peers (crowd-kit, Ray) that
are skipped with a reason locally but required when CI=true."""

import importlib
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("MICROTASK_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
CI = os.environ.get("CI") == "true"
CROWD_SETS = ["rte", "temp", "dog", "product", "sentiment"]


def need(module: str, why: str):
    """The module, or a skip with a reason (a failure in CI, where every peer must be there)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if CI:
            pytest.fail(f"{module} is required in CI ({why}): {e}")
        pytest.skip(f"{module} is not installed ({why}): {e}")


@pytest.fixture(scope="session")
def crowd_dir():
    d = DATA / "crowd"
    if not d.is_dir():
        if CI:
            pytest.fail(f"shared crowd data missing at {d} (set MICROTASK_SHARED_DATA)")
        pytest.skip(f"shared crowd data missing at {d} (set MICROTASK_SHARED_DATA)")
    return d


def skip_or_fail(why: str):
    """A skip with a reason locally; a failure in CI, where everything must be there."""
    if CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def cli() -> str:
    """The microtask CLI: this checkout's release build, else one on PATH."""
    built = REPO / "target" / "release" / "microtask"
    if built.exists():
        return str(built)
    found = shutil.which("microtask")
    if found is None:
        skip_or_fail(f"the microtask CLI is not built ({built}: cargo build --release)")
    return found


@pytest.fixture(scope="session")
def mnist_test() -> Path:
    """The MNIST test images (IDX, gzip) of the shared data."""
    path = DATA / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        skip_or_fail(f"shared MNIST data missing at {path} (set MICROTASK_SHARED_DATA)")
    return path
