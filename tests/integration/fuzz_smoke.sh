#!/usr/bin/env bash
# fuzz_smoke.sh — builds the model-loader and WebSocket-frame fuzzers (make fuzz: clang, libFuzzer,
# ASan+UBSan), writes their seed corpus of tiny synthetic models, checks every
# seed runs cleanly, then fuzzes each loader for a bounded time: any crash,
# sanitizer report, leak, hang (-timeout) or memory blow-up (-rss_limit_mb)
# fails the test and leaves the input under build-fuzz/artifacts/.
# Environment: FUZZ_SECONDS per fuzzer (default 20). Needs clang and
# libclang-rt-14-dev (scripts/install-deps.sh).
set -u
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-20}

make -j2 fuzz >"$TMP/build.log" 2>&1
rc=$?; expect_eq "make fuzz builds the fuzzers ($(tail -n 5 "$TMP/build.log"))" 0 $rc
[ $rc -eq 0 ] || { finish; exit 1; }

mkdir -p "$TMP/ct2" "$TMP/ggml" build-fuzz/artifacts
build-fuzz/make_fuzz_seeds "$TMP/ct2" "$TMP/ggml"
expect_eq "seed corpus written" 0 $?
expect_file "CTranslate2 seed model" "$TMP/ct2/good.bin"
expect_file "ggml seed model" "$TMP/ggml/good.bin"

for kind in ct2 ggml; do
    fuzzer=build-fuzz/fuzz_model_$kind
    "$fuzzer" "$TMP/$kind"/*.bin >"$TMP/seeds-$kind.log" 2>&1
    rc=$?; expect_eq "$kind: every seed loads or fails cleanly ($(grep -c '^Executed' "$TMP/seeds-$kind.log") run)" 0 $rc
    # a copy of the corpus, so the run's new inputs stay in $TMP
    mkdir -p "$TMP/run-$kind" && cp "$TMP/$kind"/*.bin "$TMP/run-$kind/"
    "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$kind-" "$TMP/run-$kind" >"$TMP/fuzz-$kind.log" 2>&1
    rc=$?
    expect_eq "$kind: ${seconds}s of fuzzing without a finding ($(grep -m1 -E 'ERROR|SUMMARY|Test unit written' "$TMP/fuzz-$kind.log"))" 0 $rc
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/fuzz-$kind.log")
    expect_match "$kind: the fuzzer ran at least 100 inputs (${runs:-none})" '^([1-9][0-9]{2,})$' "${runs:-0}"
    [ $rc -eq 0 ] || tail -n 40 "$TMP/fuzz-$kind.log"
done

# The WebSocket frame parser of the realtime endpoint (src/server/ws.c), from
# the committed seed frames (tests/fuzz/ws_seeds: first byte = read size).
fuzzer=build-fuzz/fuzz_ws
"$fuzzer" tests/fuzz/ws_seeds/*.bin >"$TMP/seeds-ws.log" 2>&1
rc=$?; expect_eq "ws: every seed frame stream parses cleanly" 0 $rc
mkdir -p "$TMP/run-ws" && cp tests/fuzz/ws_seeds/*.bin "$TMP/run-ws/"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/ws-" "$TMP/run-ws" >"$TMP/fuzz-ws.log" 2>&1
rc=$?
expect_eq "ws: ${seconds}s of fuzzing without a finding ($(grep -m1 -E 'ERROR|SUMMARY|Test unit written' "$TMP/fuzz-ws.log"))" 0 $rc
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/fuzz-ws.log")
expect_match "ws: the fuzzer ran at least 100 inputs (${runs:-none})" '^([1-9][0-9]{2,})$' "${runs:-0}"
[ $rc -eq 0 ] || tail -n 40 "$TMP/fuzz-ws.log"
finish
