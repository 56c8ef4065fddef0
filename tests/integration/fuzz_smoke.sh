#!/usr/bin/env bash
# fuzz_smoke.sh — builds every libFuzzer harness (make fuzz: clang, libFuzzer,
# ASan+UBSan), checks every seed runs cleanly, then fuzzes each harness for a
# bounded time: any crash, sanitizer report, leak, hang (-timeout) or memory
# blow-up (-rss_limit_mb) fails the test and leaves the input under
# build-fuzz/artifacts/. Seeds: the model loaders' are generated
# (make_fuzz_seeds), the others are committed under tests/fuzz/corpus/ (ws:
# WebSocket frame streams for src/server/ws.c, first byte = read size;
# routes: text requests for src/server/'s request handling, see
# tests/fuzz/fuzz_routes.c).
# Prints each harness's executions and coverage (libFuzzer's cov:) and the
# total time. For hours-long runs by hand: tests/fuzz/run_long.sh.
# Environment: FUZZ_SECONDS per harness (default 30), FUZZ_ONLY (a space-
# separated subset of: model_ct2 model_ggml audio tokenizer format zip ws routes).
# Needs clang and libclang-rt-14-dev (scripts/install-deps.sh).
set -u
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
harnesses=${FUZZ_ONLY:-model_ct2 model_ggml audio tokenizer format zip ws routes}
started=$SECONDS

make -j2 fuzz >"$TMP/build.log" 2>&1
rc=$?; expect_eq "make fuzz builds the fuzzers ($(tail -n 5 "$TMP/build.log"))" 0 $rc
[ $rc -eq 0 ] || { finish; exit 1; }

mkdir -p "$TMP/model_ct2" "$TMP/model_ggml" build-fuzz/artifacts
build-fuzz/make_fuzz_seeds "$TMP/model_ct2" "$TMP/model_ggml"
expect_eq "seed corpus written" 0 $?
expect_file "CTranslate2 seed model" "$TMP/model_ct2/good.bin"
expect_file "ggml seed model" "$TMP/model_ggml/good.bin"
for kind in audio tokenizer format zip ws routes; do
    mkdir -p "$TMP/$kind" && cp tests/fuzz/corpus/$kind/* "$TMP/$kind/"
done

summary=()
for kind in $harnesses; do
    fuzzer=build-fuzz/fuzz_$kind
    "$fuzzer" "$TMP/$kind"/* >"$TMP/seeds-$kind.log" 2>&1
    rc=$?; expect_eq "$kind: every seed runs cleanly ($(grep -c '^Executed' "$TMP/seeds-$kind.log") run)" 0 $rc
    [ $rc -eq 0 ] || tail -n 30 "$TMP/seeds-$kind.log"
    # a copy of the corpus, so the run's new inputs stay in $TMP
    mkdir -p "$TMP/run-$kind" && cp "$TMP/$kind"/* "$TMP/run-$kind/"
    "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$kind-" "$TMP/run-$kind" >"$TMP/fuzz-$kind.log" 2>&1
    rc=$?
    expect_eq "$kind: ${seconds}s of fuzzing without a finding ($(grep -m1 -E 'ERROR|SUMMARY|Test unit written' "$TMP/fuzz-$kind.log"))" 0 $rc
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/fuzz-$kind.log")
    cov=$(grep -oE 'cov: [0-9]+' "$TMP/fuzz-$kind.log" | tail -n 1)
    # FFmpeg is not instrumented and probes every format per input: the audio harness is slow
    expect_match "$kind: the fuzzer ran at least 100 inputs (${runs:-none})" '^([1-9][0-9]{2,})$' "${runs:-0}"
    summary+=("$kind: ${runs:-0} executions, ${cov:-cov: ?} in ${seconds}s")
    [ $rc -eq 0 ] || tail -n 40 "$TMP/fuzz-$kind.log"
done
printf 'fuzz %s\n' "${summary[@]}"
echo "fuzz_smoke: $((SECONDS - started))s in all (${seconds}s per harness)"
finish
