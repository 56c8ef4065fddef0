#!/usr/bin/env bash
# run_long.sh — fuzzes the harnesses for hours, by hand (CI runs tests/integration/fuzz_smoke.sh).
# Usage: tests/fuzz/run_long.sh [HOURS per harness, default 1] [HARNESS...]
# Corpora grow in build-fuzz/corpus/<harness>/ (seeded from tests/fuzz/corpus/
# or make_fuzz_seeds), findings land in build-fuzz/artifacts/; copy a small
# finding into tests/fuzz/corpus/<harness>/ once fixed, so CI replays it.
# Runs one job per core left to it (FUZZ_JOBS, default 1).
set -eu
cd "$(dirname "$0")/../.."
hours=${1:-1}; shift || true
harnesses=${*:-model_ct2 model_ggml audio tokenizer format zip ws routes}
jobs=${FUZZ_JOBS:-1}
make -j2 fuzz
mkdir -p build-fuzz/artifacts build-fuzz/corpus/model_ct2 build-fuzz/corpus/model_ggml
build-fuzz/make_fuzz_seeds build-fuzz/corpus/model_ct2 build-fuzz/corpus/model_ggml
for kind in $harnesses; do
    mkdir -p "build-fuzz/corpus/$kind"
    [ -d "tests/fuzz/corpus/$kind" ] && cp -n tests/fuzz/corpus/$kind/* "build-fuzz/corpus/$kind/"
    secs=$(awk -v h="$hours" 'BEGIN { printf "%d", h * 3600 }')
    echo "== $kind for ${secs}s"
    nice "build-fuzz/fuzz_$kind" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -jobs="$jobs" \
        -workers="$jobs" -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$kind-" "build-fuzz/corpus/$kind" \
        2>&1 | grep -E '^#[0-9]+.*(pulse|DONE)|stat::|ERROR|SUMMARY' || true
done
