#!/usr/bin/env bash
# ggml_engine.sh — asr convert writes whisper.cpp ggml files (f16, f32, q8_0) that our own
# engine transcribes exactly as it does the CTranslate2 model; bad ggml files and
# unwritable outputs fail with a message and a non-zero exit.
set -u
source "$(dirname "$0")/../lib.sh"
T=$ASR_SHARED/testdata
# Oracle: faster-whisper's greedy tiny.en output (tests/golden/tiny.en.json).
JFK=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); print(next(c["greedy"]["text"] for c in g["clips"] if c["id"].endswith("jfk.wav")))' tests/golden/tiny.en.json)
TRUTH="And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
norm() { printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -d '[:punct:]' | tr -s ' ' | sed 's/^ //; s/ $//'; }
i32_at() { od -An -t d4 -j "$2" -N 4 "$1" | tr -d ' '; }

"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/tiny.en-f16.bin" 2>"$TMP/err"
rc=$?; expect_eq "convert to f16 exits 0 ($(cat "$TMP/err"))" 0 $rc
"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/tiny.en-f32.bin" --f32 2>"$TMP/err"
rc=$?; expect_eq "convert to f32 exits 0 ($(cat "$TMP/err"))" 0 $rc
expect_eq "f16 file: ggml magic" 1734831468 "$(i32_at "$TMP/tiny.en-f16.bin" 0)"
expect_eq "f16 file: ftype 1" 1 "$(i32_at "$TMP/tiny.en-f16.bin" 44)"
expect_eq "f32 file: ftype 0" 0 "$(i32_at "$TMP/tiny.en-f32.bin" 44)"
"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/tiny.en-q8_0.bin" --q8_0 2>"$TMP/err"
rc=$?; expect_eq "convert to q8_0 exits 0 ($(cat "$TMP/err"))" 0 $rc
expect_eq "q8_0 file: ftype 2007 (quantisation version 2, mostly q8_0)" 2007 "$(i32_at "$TMP/tiny.en-q8_0.bin" 44)"
q8=$(stat -c %s "$TMP/tiny.en-q8_0.bin"); f16=$(stat -c %s "$TMP/tiny.en-f16.bin")
[ $((q8 * 100 / f16)) -ge 50 ] && [ $((q8 * 100 / f16)) -le 62 ]
expect_eq "q8_0 file is 34/64 of the f16 one's matrices ($q8 vs $f16 bytes)" 0 $?
expect_eq "no partial files left" "" "$(ls "$TMP" | grep '\.part$')"

ct2=$("$ASR_BIN" transcribe --model "$ASR_TEST_MODEL" --threads 2 "$T/jfk.wav" 2>"$TMP/err")
expect_eq "CTranslate2 tiny.en text (baseline)" "$JFK" "$ct2"
for f in f16 f32; do
    out=$("$ASR_BIN" transcribe --model "$TMP/tiny.en-$f.bin" --threads 2 "$T/jfk.wav" 2>"$TMP/err")
    rc=$?; expect_eq "ggml $f: exit 0 ($(head -c 300 "$TMP/err"))" 0 $rc
    expect_eq "ggml $f: text equals faster-whisper's" "$JFK" "$out"
    expect_eq "ggml $f: text equals the CTranslate2 model's" "$ct2" "$out"
    expect_eq "ggml $f: words equal the ground truth" "$(norm "$TRUTH")" "$(norm "$out")"
done
out=$("$ASR_BIN" transcribe --model "$TMP/tiny.en-q8_0.bin" --threads 2 "$T/jfk.wav" 2>"$TMP/err")
rc=$?; expect_eq "ggml q8_0: exit 0 ($(head -c 300 "$TMP/err"))" 0 $rc
expect_eq "ggml q8_0: words equal the ground truth" "$(norm "$TRUTH")" "$(norm "$out")"
# f32 weights are bit-identical to the CTranslate2 ones, so everything is:
# segments, timestamps, tokens, probabilities.
a=$("$ASR_BIN" transcribe --model "$ASR_TEST_MODEL" --threads 2 -f verbose_json "$T/jfk.wav" 2>/dev/null)
b=$("$ASR_BIN" transcribe --model "$TMP/tiny.en-f32.bin" --threads 2 -f verbose_json "$T/jfk.wav" 2>/dev/null)
expect_match "verbose_json has segments" '"segments": *\[' "$b"
expect_eq "ggml f32: verbose_json identical to the CTranslate2 model's" "$a" "$b"

# the ggml model converts back to the same bytes
"$ASR_BIN" convert "$TMP/tiny.en-f32.bin" "$TMP/again.bin" --f32 2>"$TMP/err"
rc=$?; expect_eq "convert ggml -> ggml exits 0 ($(cat "$TMP/err"))" 0 $rc
cmp -s "$TMP/tiny.en-f32.bin" "$TMP/again.bin"
expect_eq "ggml f32 -> ggml f32 is byte-identical" 0 $?

# errors
"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/no/such/dir/x.bin" 2>"$TMP/err"
rc=$?
expect_match "convert to a missing directory fails (exit $rc)" '^[1-9]' "$rc"
expect_match "convert error names the path" 'no/such/dir' "$(cat "$TMP/err")"
head -c 5000000 "$TMP/tiny.en-f16.bin" >"$TMP/cut.bin"
"$ASR_BIN" transcribe --model "$TMP/cut.bin" "$T/jfk.wav" >"$TMP/out" 2>"$TMP/err"
expect_eq "truncated ggml model: exit 3" 3 $?
expect_match "truncated ggml model: message says so" 'truncated' "$(cat "$TMP/err")"
expect_eq "truncated ggml model: no transcript" "" "$(cat "$TMP/out")"
printf 'lmgg' >"$TMP/magic.bin"
"$ASR_BIN" transcribe --model "$TMP/magic.bin" "$T/jfk.wav" >/dev/null 2>"$TMP/err"
expect_eq "ggml magic alone: exit 3" 3 $?
head -c 100000 /dev/urandom >"$TMP/random.bin"
"$ASR_BIN" transcribe --model "$TMP/random.bin" "$T/jfk.wav" >/dev/null 2>"$TMP/err"
expect_eq "random bytes as a model: exit 3" 3 $?
expect_match "random bytes: not a ggml model" 'not a whisper.cpp ggml model' "$(cat "$TMP/err")"
finish
