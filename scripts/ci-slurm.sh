#!/usr/bin/env bash
# CI: installs Slurm and munge when missing and starts a single-node cluster, for the Slurm
# end-to-end test (tests/slurm.rs, which fails in CI when no cluster answers). Root, Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s slurm-wlm munge >/dev/null 2>&1; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurm-wlm munge
fi
bash scripts/slurm-up.sh
