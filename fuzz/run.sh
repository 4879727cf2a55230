#!/usr/bin/env bash
# Runs fuzz targets one at a time (default: all) for 10^6 executions each, capped in time:
#   fuzz/run.sh [TARGET...]        RUNS=1000000 MAX_TIME=1800 to change the figures.
# Build first: (cd fuzz && cargo +nightly fuzz build). Seeds come from fuzz/seeds/<target>/;
# the grown corpus goes to fuzz/corpus/<target>/ and crashes to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
# BIN=target/nosan/x86_64-unknown-linux-gnu/release for targets built with `-s none --target-dir
# target/nosan` (no AddressSanitizer: the gzip targets run ~10x faster).
bin=${BIN:-target/x86_64-unknown-linux-gnu/release}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(idx_raw idx_gz gzip images npy votes gold model manifest)
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" logs
    echo "== $t"
    dict=(); [ -f "dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict")
    "$bin/$t" "corpus/$t" "seeds/$t" "${dict[@]}" -runs="${RUNS:-1000000}" -max_total_time="${MAX_TIME:-1800}" \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
        2>&1 | tee "logs/$t.log" | grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)|panicked|Done" || true
done
