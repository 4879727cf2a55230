#!/usr/bin/env bash
# The Python package's checks (issue 13): build and install `microtask` from ./python with pip
# (maturin, from the registries), install the test peers (pytest, pandas, crowd-kit, Ray), run
# pytest. Called by .ci/run after the Rust tests; works on a fresh Debian machine.
#
#   bash python/ci.sh            # venv in python/.venv (MICROTASK_PY_VENV to place it elsewhere)
#
# The wheel builds into the root crate's target/ (CARGO_TARGET_DIR), so the library and its
# dependencies compiled by the Rust tests are reused rather than built twice.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
venv=${MICROTASK_PY_VENV:-$here/.venv}
t0=$(date +%s)
step() { echo "python: $* ($(($(date +%s) - t0)) s)"; }

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  # Debian's python3 ships venv/ensurepip separately.
  step "installing python3-venv"
  apt-get update -q && apt-get install -y -q --no-install-recommends python3-venv python3-dev
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
step "installing the test peers"
# scikit-learn < 1.6: crowd-kit 1.4.2's Wawa breaks on 1.6 (see shared/data/README.md).
"${pip[@]}" pytest numpy pandas pyarrow "scikit-learn<1.6" crowd-kit "ray[data]"
step "cargo fmt and clippy on the extension crate"
(cd "$here" && cargo fmt --check && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target} cargo clippy --release -q -- -D warnings)
step "building and installing the wheel (pip install ./python)"
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target} "${pip[@]}" --force-reinstall --no-deps "$here"
"$venv/bin/python" -c 'import microtask; print("python: microtask", microtask.__version__, "imported")'
step "pytest"
cd "$here"
status=0
# Not `python -m pytest`: ./microtask would shadow the installed wheel.
"$venv/bin/pytest" -q -rs -s tests || status=$?
step "done, exit $status"
exit $status
