#!/usr/bin/env bash
# CI: a Python with pyarrow and pandas for tests/parquet.rs (which fails in CI without one), as
# a virtual environment in target/py (the test looks there; MICROTASK_PYTHON overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py
if "$venv/bin/python" -c "import pyarrow, pandas" 2>/dev/null; then
  exit 0
fi
if ! python3 -m venv "$venv"; then
  # Debian's python3 needs its venv package.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends python3-venv python3-pip
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check pyarrow pandas
"$venv/bin/python" -c "import pyarrow, pandas; print('pyarrow', pyarrow.__version__, 'pandas', pandas.__version__)"
