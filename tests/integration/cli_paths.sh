#!/usr/bin/env bash
# cli_paths.sh — where the CLI reads models and writes outputs: a bare model name is the
# cache's model even when the current directory holds a directory of that name; a path is
# a path; --output-dir refuses two inputs that would write one file, and replaces (never
# follows) a symlink at an output name.
set -u
source "$(dirname "$0")/../lib.sh"
umask 022
T=$ASR_SHARED/testdata
# a cache holding tiny.en (the test model), whatever ASR_MODELS_DIR is
mkdir -p "$TMP/cache" "$TMP/cwd/tiny.en"
ln -s "$ASR_TEST_MODEL" "$TMP/cache/tiny.en"
echo "not a model" >"$TMP/cwd/tiny.en/model.bin"
cd "$TMP/cwd"

out=$(ASR_MODELS_DIR=$TMP/cache "$ASR_BIN" models path tiny.en 2>&1)
expect_eq "bare name resolves to the cache, not ./tiny.en" "$TMP/cache/tiny.en" "$out"
out=$(ASR_MODELS_DIR=$TMP/cache "$ASR_BIN" transcribe -m tiny.en "$T/jfk.wav" 2>&1)
expect_match "bare name transcribes with the cache's model" 'ask not what your country' "$out"
out=$(ASR_MODELS_DIR=$TMP/cache "$ASR_BIN" models path ./tiny.en 2>&1)
expect_eq "./NAME is the local directory" "./tiny.en" "$out"
ASR_MODELS_DIR=$TMP/cache "$ASR_BIN" transcribe -m ./tiny.en "$T/jfk.wav" >/dev/null 2>"$TMP/err"
expect_eq "./tiny.en (not a model) is a bad-input error" 3 $?
out=$(ASR_MODELS_DIR=$TMP/empty "$ASR_BIN" models path tiny.en 2>&1)
expect_eq "a bare name missing from the cache falls back to the local directory" "tiny.en" "$out"

# two inputs with one base name: refused before any work, nothing written
mkdir -p "$TMP/a" "$TMP/b" "$TMP/out"
cp "$T/jfk.wav" "$TMP/a/clip.wav"
cp "$T/jfk.wav" "$TMP/b/clip.wav"
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" -o "$TMP/out" "$TMP/a/clip.wav" "$TMP/b/clip.wav" 2>"$TMP/err"
expect_eq "same base name twice: usage error" 2 $?
expect_match "same base name twice: says which" 'a/clip.wav and .*b/clip.wav would both be written' "$(cat "$TMP/err")"
expect_eq "same base name twice: nothing written" "" "$(ls -A "$TMP/out")"

# a symlink planted at the output name is replaced, its target untouched
echo "precious" >"$TMP/target.txt"
ln -s "$TMP/target.txt" "$TMP/out/clip.txt"
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" -o "$TMP/out" "$TMP/a/clip.wav" 2>"$TMP/err"
expect_eq "output over a symlink: exit 0" 0 $?
expect_eq "symlink target untouched" "precious" "$(cat "$TMP/target.txt")"
[ ! -L "$TMP/out/clip.txt" ]; expect_eq "output is a regular file now" 0 $?
expect_match "output has the transcript" 'ask not what your country' "$(cat "$TMP/out/clip.txt")"
expect_eq "no temporary file left" "clip.txt" "$(ls -A "$TMP/out")"
perm=$(stat -c %a "$TMP/out/clip.txt")
expect_eq "output mode follows the umask (022)" 644 "$perm"
finish
