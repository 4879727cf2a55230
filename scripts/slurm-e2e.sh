#!/usr/bin/env bash
# End to end on a running Slurm cluster (scripts/slurm-up.sh): the classify job of
# deploy/slurm/classify-array.sbatch as `sbatch --array=0-3` (4 shards), the merge of
# deploy/slurm/merge.sbatch with --dependency=afterok on the array, then `cmp` of the merged
# votes against one run on this machine. The array submitted again does nothing (every shard is
# done). Exit 0 when all holds.
#
#   scripts/slurm-e2e.sh [BINARY [WORKDIR]]   (default: target/release/microtask, a temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$root/target/release/microtask}")
work=${2:-$(mktemp -d /tmp/microtask-slurm-e2e.XXXXXX)}
mkdir -p "$work"
work=$(realpath "$work")
model=$root/assets/mnist-5workers.safetensors
data=synth:200000:7
# The CPU backend on both sides: the GPU's confidences may differ in the last bit.
args="--backend cpu"
limit=${SLURM_E2E_TIMEOUT:-600}

say() { echo "slurm-e2e: $*"; }
fail() {
  say "FAILED: $*"
  for log in "$work"/*.log; do
    [ -e "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
  done
  squeue -a 2>/dev/null || true
  # Leave no job of this test queued.
  for id in ${array:-} $(cat "$work/merge.id" 2>/dev/null) ${again:-}; do
    scancel "${id%%;*}" 2>/dev/null || true
  done
  exit 1
}
[ -x "$bin" ] || fail "no binary at $bin (cargo build --release)"
sinfo -h >/dev/null 2>&1 || fail "no Slurm cluster answers (scripts/slurm-up.sh starts one)"

submit() {
  sbatch --parsable --chdir="$work" --export="ALL,MICROTASK=$bin,MODEL=$model,DATA=$data,OUT=$work/shards,MERGED=$work/merged.csv,CLASSIFY_ARGS=$args" "$@"
}

t0=$(date +%s.%N)
array=$(submit --array=0-3 --output="$work/classify-%A_%a.log" "$root/deploy/slurm/classify-array.sbatch") ||
  fail "sbatch of the array"
array=${array%%;*}
say "array job $array submitted (4 shards of $data)"
# --wait: sbatch returns when the merge ends, with its exit code; a failed shard cancels it.
merge_rc=0
timeout "$limit" sbatch --wait --parsable --chdir="$work" --dependency="afterok:$array" \
  --kill-on-invalid-dep=yes --output="$work/merge-%j.log" \
  --export="ALL,MICROTASK=$bin,OUT=$work/shards,MERGED=$work/merged.csv" \
  "$root/deploy/slurm/merge.sbatch" >"$work/merge.id" || merge_rc=$?
t1=$(date +%s.%N)
[ "$merge_rc" = 0 ] || fail "the merge job (id $(cat "$work/merge.id" 2>/dev/null)) ended with $merge_rc"
say "array + merge done in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
for i in 0 1 2 3; do
  [ -s "$work/shards/part-$i-of-4.json" ] || fail "no manifest for shard $i"
done

# shellcheck disable=SC2086
"$bin" classify --model "$model" --data "$data" --out "$work/one.csv" $args >"$work/one.log" 2>&1 ||
  fail "the one-machine run"
cmp "$work/merged.csv" "$work/one.csv" || fail "merged votes differ from one run"
say "merged votes == one run ($(wc -l <"$work/one.csv") lines, $(stat -c %s "$work/one.csv") bytes)"

# A resubmitted array finds every shard done.
again=$(submit --array=0-3 --output="$work/again-%A_%a.log" "$root/deploy/slurm/classify-array.sbatch")
again=${again%%;*}
for _ in $(seq $((limit * 10))); do
  [ -z "$(squeue -h -j "$again" 2>/dev/null)" ] && break
  sleep 0.1
done
n=$(grep -l "already done" "$work"/again-*.log 2>/dev/null | wc -l)
[ "$n" = 4 ] || fail "a resubmitted array redid work ($n of 4 shards said already done)"
say "resubmitted array: 4 of 4 shards already done"
say "ok ($work)"
