"""Shared test settings: where the shared data lives, and optional peers (crowd-kit, Ray) that
are skipped with a reason locally but required when CI=true."""

import importlib
import os
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
