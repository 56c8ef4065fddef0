#!/usr/bin/env bash
# cli_transcribe.sh — asr transcribe on real speech: exact jfk text from WAV, MP3
# and FLAC with tiny.en (greedy), output formats, and the exit codes of bad input.
set -u
source "$(dirname "$0")/../lib.sh"
T=$ASR_SHARED/testdata
# The oracle: faster-whisper's greedy output on the same tiny.en weights
# (tests/golden/tiny.en.json, made by tests/golden/make_goldens.py). tiny.en
# omits the commas of the ground-truth sentence; the words are all right.
JFK=$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1])); print(next(c["greedy"]["text"] for c in g["clips"] if c["id"].endswith("jfk.wav")))' tests/golden/tiny.en.json)
TRUTH="And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
norm() { printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -d '[:punct:]' | tr -s ' ' | sed 's/^ //; s/ $//'; }

# The oracle ran in float32, so the exact-text checks do too; the reduced
# types --compute-type auto may pick are held to parity_goldens' accuracy
# gate, and here to the ground truth's words.
for f in jfk.wav jfk.mp3 jfk.flac; do
    out=$("$ASR_BIN" transcribe --model "$ASR_TEST_MODEL" --compute-type float32 --threads 2 "$T/$f" 2>"$TMP/err")
    expect_eq "$f greedy text equals faster-whisper's" "$JFK" "$out"
    expect_eq "$f words equal the ground truth" "$(norm "$TRUTH")" "$(norm "$out")"
done
out=$("$ASR_BIN" transcribe --model "$ASR_TEST_MODEL" --threads 2 "$T/jfk.wav" 2>"$TMP/err")
expect_eq "jfk.wav with the compute type auto picks: words equal the ground truth" "$(norm "$TRUTH")" "$(norm "$out")"

# several files, --output-dir, every format
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" -o "$TMP/out" -f srt "$T/jfk.wav" "$T/hotwords.mp3" 2>"$TMP/err"
expect_eq "srt exit" 0 $?
expect_file "srt for wav" "$TMP/out/jfk.srt"
expect_file "srt for mp3" "$TMP/out/hotwords.srt"
first=$(head -n 2 "$TMP/out/jfk.srt" | tail -n 1)
expect_match "srt timing line" '^00:00:00,000 --> 00:00:[0-9][0-9],[0-9]{3}$' "$first"
vj=$("$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" -f verbose_json "$T/jfk.wav" 2>/dev/null)
expect_match "verbose_json has segments" '"segments": *\[' "$vj"
expect_match "verbose_json language" '"language": *"english"' "$vj"
vtt=$("$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" -f vtt "$T/jfk.wav" 2>/dev/null)
expect_match "vtt header" '^WEBVTT' "$vtt"

# bad input: clear message, distinct non-zero exit codes
: >"$TMP/empty.wav"
head -c 50000 /dev/urandom >"$TMP/random.mp3"
printf 'this is not audio\n%.0s' {1..200} >"$TMP/text.wav"
# a WAV header claiming 100 MB of data followed by 1000 bytes
python3 - "$TMP/liar.wav" <<'PY'
import struct, sys
data = b"\x01\x00" * 500
hdr = b"RIFF" + struct.pack("<I", 100_000_036) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
hdr += b"data" + struct.pack("<I", 100_000_000)
open(sys.argv[1], "wb").write(hdr + data)
PY
for f in empty.wav random.mp3 text.wav; do
    "$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" "$TMP/$f" >"$TMP/out.txt" 2>"$TMP/err"
    rc=$?
    expect_eq "$f exit code (bad input)" 3 "$rc"
    expect_match "$f message names the file" "$f" "$(cat "$TMP/err")"
done
# A header that overstates its data is a truncated recording, not bad input:
# asr decodes the samples that are there (as FFmpeg and openai-whisper do; the
# unit test test_audio.c checks the samples) and exits 0. 500 near-silent
# samples transcribe to nothing.
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" "$TMP/liar.wav" >"$TMP/out.txt" 2>"$TMP/err"
expect_eq "lying WAV header (100 MB claimed, 1000 bytes there): decoded, exit 0 ($(cat "$TMP/err"))" 0 $?
expect_eq "lying WAV header: 31 ms of near-silence transcribe to no text" "" "$(tr -d '[:space:]' <"$TMP/out.txt")"
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" "$TMP/does-not-exist.wav" 2>"$TMP/err"
expect_eq "missing file exit code" 3 $?
# audio limits: --max-duration, and a WAV declaring 1 Hz (each byte would become 16000 samples)
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" --max-duration 5 "$T/jfk.wav" >"$TMP/out.txt" 2>"$TMP/err"
expect_eq "11 s file with --max-duration 5: exit code (bad input)" 3 $?
expect_match "--max-duration message says the limit and the flag" 'longer than the limit of 5\.0 s.*--max-duration' "$(cat "$TMP/err")"
out=$("$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" --max-duration 12 "$T/jfk.wav" 2>"$TMP/err")
expect_eq "11 s file with --max-duration 12 is transcribed" "$JFK" "$out"
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" --max-duration -1 "$T/jfk.wav" 2>/dev/null
expect_eq "negative --max-duration exit code" 2 $?
python3 - "$TMP/one-hertz.wav" <<'PY'
import struct, sys
data = bytes((i * 37) & 0xFF for i in range(8192))
hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 1, 1, 1, 8)
open(sys.argv[1], "wb").write(hdr + b"data" + struct.pack("<I", len(data)) + data)
PY
# (the old decoder made 2.3 hours of it and transcribed them: the timeout ends that)
timeout 120 "$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" "$TMP/one-hertz.wav" >"$TMP/out.txt" 2>"$TMP/err"
expect_eq "8 KB WAV declaring 1 Hz: exit code (bad input)" 3 $?
expect_match "1 Hz WAV message" 'one-hertz.wav.*implausible sample rate 1 Hz' "$(cat "$TMP/err")"

# bad model: truncated model.bin, wrong directory
mkdir -p "$TMP/trunc"
cp "$ASR_TEST_MODEL"/*.json "$ASR_TEST_MODEL"/vocabulary.txt "$TMP/trunc/" 2>/dev/null
head -c 1000000 "$ASR_TEST_MODEL/model.bin" >"$TMP/trunc/model.bin"
"$ASR_BIN" transcribe -m "$TMP/trunc" "$T/jfk.wav" 2>"$TMP/err"
expect_eq "truncated model exit code" 3 $?
expect_match "truncated model message" 'truncated|past the end' "$(cat "$TMP/err")"
mkdir -p "$TMP/notamodel"
"$ASR_BIN" transcribe -m "$TMP/notamodel" "$T/jfk.wav" 2>"$TMP/err"
expect_eq "wrong directory exit code" 3 $?
expect_match "wrong directory message" 'model.bin' "$(cat "$TMP/err")"

# usage errors
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" --beam-size 0 "$T/jfk.wav" 2>/dev/null
expect_eq "bad --beam-size exit code" 2 $?
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" -f docx "$T/jfk.wav" 2>/dev/null
expect_eq "bad --output-format exit code" 2 $?
"$ASR_BIN" transcribe -m "$ASR_TEST_MODEL" --language de "$T/jfk.wav" 2>/dev/null
expect_eq "--language de on an English-only model" 2 $?
"$ASR_BIN" frobnicate 2>/dev/null
expect_eq "unknown command exit code" 2 $?
"$ASR_BIN" --version | grep -q '^asr [0-9]'
expect_eq "--version" 0 $?
finish
