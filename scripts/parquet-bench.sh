#!/usr/bin/env bash
# 10M votes written and read back as CSV and as Parquet, in one run: classify 2M items with the
# 5-worker model (from a raw IDX file, so that reading the items costs little) into votes.csv and
# votes.parquet, then `tally` (majority vote) reads each. Prints wall, CPU and peak memory of
# each command and the file sizes.
#
#   scripts/parquet-bench.sh [ITEMS [WORKDIR]]   (default 2000000 items, target/parquet-bench)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/microtask
items=${1:-2000000}
work=${2:-$root/target/parquet-bench}
model=$root/assets/mnist-5workers.safetensors
mkdir -p "$work"
idx=$work/items-$items-images-idx3-ubyte
[ -s "$idx" ] || "$bin" export --data "synth:$items:1" --out "$idx" >/dev/null

timed() {
  local what=$1
  shift
  /usr/bin/time -f "$what: %e s wall, %U s user + %S s sys CPU, %M KB peak" "$@" >/dev/null
}
for ext in csv parquet; do
  rm -f "$work/votes.$ext"
  timed "write $ext" "$bin" classify --backend cpu --model "$model" --data "$idx" --out "$work/votes.$ext"
done
for ext in csv parquet; do
  timed "read  $ext" "$bin" tally --backend cpu --votes "$work/votes.$ext" --out "$work/labels-from-$ext.csv"
done
cmp "$work/labels-from-csv.csv" "$work/labels-from-parquet.csv" && echo "labels from both: identical"
for ext in csv parquet; do
  echo "votes.$ext: $(stat -c %s "$work/votes.$ext") bytes"
done
