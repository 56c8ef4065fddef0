#!/usr/bin/env bash
# run.sh — runs the whole suite: every unit test binary in $BUILD/tests and
# every tests/integration/*.sh and *.py; prints "N passed, N failed, N skipped"
# last. A test that exits 77 (the automake convention) could not run here: it is
# counted as skipped, never as passed, and the run's exit status is 1 when
# anything was skipped unless ASR_ALLOW_SKIP=1 (a skip is not a pass).
# Environment: BUILD (build dir, default build), ASR_TEST_MODEL (model
# directory, default: the tiny.en in the asr model cache), ASR_VENV (the test
# virtualenv made by scripts/setup-test-env.sh).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export ASR_BIN="$PWD/$BUILD/asr"
export ASR_SHARED=${ASR_SHARED:-$(cd .. && pwd)/shared}
export ASR_MODELS_DIR=${ASR_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/models}
export ASR_TEST_MODEL=${ASR_TEST_MODEL:-$ASR_MODELS_DIR/tiny.en}
export ASR_VENV=${ASR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/venv}
export ASR_TEST_PY="$ASR_VENV/bin/python"
export BUILD
passed=0 failed=0 skipped=0 failed_names=() skipped_names=()
log_dir=$(mktemp -d)
run_one() { # name, command...
    local name=$1; shift
    local log="$log_dir/$(basename "$name").log"
    "$@" >"$log" 2>&1
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1)); echo "PASS $name"
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1)); skipped_names+=("$name"); echo "SKIP $name"; grep -m1 SKIP "$log" | sed 's/^/    /'
    else
        failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name"; tail -n 40 "$log" | sed 's/^/    /'
    fi
}
filter=${1:-}
for t in "$BUILD"/tests/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    [[ -n "$filter" && "$t" != *"$filter"* ]] && continue
    run_one "unit/$(basename "$t")" "$t"
done
for t in tests/integration/*.sh tests/integration/*.py; do
    [ -f "$t" ] || continue
    [[ -n "$filter" && "$t" != *"$filter"* ]] && continue
    case "$t" in
    *.sh) run_one "$t" bash "$t" ;;
    *.py) run_one "$t" "$ASR_TEST_PY" "$t" ;;
    esac
done
rm -rf "$log_dir"
[ "$failed" -gt 0 ] && printf 'failed: %s\n' "${failed_names[@]}"
[ "$skipped" -gt 0 ] && printf 'skipped: %s\n' "${skipped_names[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && { [ "$skipped" -eq 0 ] || [ "${ASR_ALLOW_SKIP:-0}" = 1 ]; }
