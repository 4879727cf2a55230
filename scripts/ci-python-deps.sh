#!/usr/bin/env bash
# CI: a Python with pyarrow and pandas for tests/parquet.rs (which fails in CI without one), as
# a virtual environment in target/py (the test looks there; MICROTASK_PYTHON overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/py
if "$venv/bin/python" -c "import pyarrow, pandas" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check pyarrow pandas
"$venv/bin/python" -c "import pyarrow, pandas; print('pyarrow', pyarrow.__version__, 'pandas', pandas.__version__)"
