#!/usr/bin/env bash
# ggml_whispercpp.sh — whisper.cpp itself (through pywhispercpp in the bench venv)
# loads the ggml files asr convert writes: its vocabulary and special-token ids
# equal the CTranslate2 model's, and it transcribes jfk.wav with the f16 file.
# pywhispercpp is pinned in tests/requirements.txt, so the test venv has it and
# CI runs this check. Without it the test exits 77 (tests/run.sh counts a skip,
# never a pass). ASR_BENCH_VENV points it at another venv (bench/setup.sh's).
set -u
source "$(dirname "$0")/../lib.sh"
T=$ASR_SHARED/testdata
PY=${ASR_BENCH_VENV:+$ASR_BENCH_VENV/bin/python}
PY=${PY:-${ASR_TEST_PY:-${ASR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/venv}/bin/python}}
if ! [ -x "$PY" ] || ! "$PY" -c 'import pywhispercpp.model' 2>/dev/null; then
    echo "SKIP ggml_whispercpp: no pywhispercpp for $PY (scripts/setup-test-env.sh installs it)"
    exit 77
fi
TRUTH="And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
norm() { printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -d '[:punct:]' | tr -s ' ' | sed 's/^ //; s/ $//'; }

"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/tiny.en-f16.bin" 2>"$TMP/err"
rc=$?; expect_eq "convert to f16 exits 0 ($(cat "$TMP/err"))" 0 $rc
"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/tiny.en-f32.bin" --f32 2>"$TMP/err"
rc=$?; expect_eq "convert to f32 exits 0 ($(cat "$TMP/err"))" 0 $rc

# whisper.cpp's view of the vocabulary, against vocabulary.txt (GPT-2
# byte-to-unicode text, one token per line, id = line number).
cat >"$TMP/vocab.py" <<'PY'
import sys
import _pywhispercpp as pw
model_path, vocab_txt = sys.argv[1], sys.argv[2]
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
byte_of = {chr(c): b for b, c in zip(bs, cs)}
lines = open(vocab_txt, encoding="utf-8").read().split("\n")
ctx = pw.whisper_init_from_file_with_params(model_path, pw.whisper_context_default_params())
print("n_vocab", pw.whisper_n_vocab(ctx))
eot = pw.whisper_token_eot(ctx)
# the binding passes tokens as C strings, so token 188 (the byte 0) reads as b""
bad = [i for i in range(eot)
       if pw.whisper_token_to_bytes(ctx, i) != bytes(byte_of[ch] for ch in lines[i]).split(b"\0")[0]]
print("base_mismatches", len(bad), bad[:5])
specials = {"eot": (pw.whisper_token_eot, "<|endoftext|>"), "sot": (pw.whisper_token_sot, "<|startoftranscript|>"),
            "translate": (pw.whisper_token_translate, "<|translate|>"),
            "transcribe": (pw.whisper_token_transcribe, "<|transcribe|>"),
            "solm": (pw.whisper_token_solm, "<|startoflm|>"), "prev": (pw.whisper_token_prev, "<|startofprev|>"),
            "not": (pw.whisper_token_not, "<|notimestamps|>"), "beg": (pw.whisper_token_beg, "<|0.00|>")}
for name, (fn, text) in specials.items():
    print("special", name, fn(ctx), lines.index(text))
pw.whisper_free(ctx)
PY
for f in f16 f32; do
    "$PY" "$TMP/vocab.py" "$TMP/tiny.en-$f.bin" "$ASR_TEST_MODEL/vocabulary.txt" >"$TMP/vocab.out" 2>"$TMP/wlog"
    rc=$?; expect_eq "whisper.cpp loads the $f file ($(grep -m1 -iE 'error|invalid' "$TMP/wlog"))" 0 $rc
    expect_match "whisper.cpp synthesises the special tokens after the 50256 base tokens ($f)" \
        'adding 1608 extra tokens' "$(cat "$TMP/wlog")"
    expect_match "whisper.cpp: n_vocab 51864 ($f)" '^n_vocab 51864$' "$(cat "$TMP/vocab.out")"
    expect_match "whisper.cpp: every base token's bytes equal vocabulary.txt ($f)" '^base_mismatches 0 ' \
        "$(cat "$TMP/vocab.out")"
    while read -r _ name got want; do
        expect_eq "whisper.cpp special token $name id equals the vocabulary's ($f)" "$want" "$got"
    done < <(grep '^special' "$TMP/vocab.out")
done

# Transcription with the f16 file (the converters' default). whisper.cpp's
# CPU backend cannot run f32 files at all: ggml's im2col asserts an f16
# kernel (whisper.cpp issue #2557), so the f32 file is only loaded above.
cat >"$TMP/transcribe.py" <<'PY'
import sys
from pywhispercpp.model import Model
m = Model(sys.argv[1], n_threads=2, print_progress=False, print_realtime=False)
print(" ".join(s.text.strip() for s in m.transcribe(sys.argv[2])))
PY
out=$("$PY" "$TMP/transcribe.py" "$TMP/tiny.en-f16.bin" "$T/jfk.wav" 2>"$TMP/wlog")
expect_eq "whisper.cpp transcribes jfk.wav with the f16 file (exit)" 0 $?
echo "whisper.cpp: $out"
expect_eq "whisper.cpp on our f16 file: words equal the ground truth" "$(norm "$TRUTH")" "$(norm "$out")"
# q8_0: the int8 blocks whisper.cpp's quantize writes, read by its int8 CPU kernels
"$ASR_BIN" convert "$ASR_TEST_MODEL" "$TMP/tiny.en-q8_0.bin" --q8_0 2>"$TMP/err"
rc=$?; expect_eq "convert to q8_0 exits 0 ($(cat "$TMP/err"))" 0 $rc
out=$("$PY" "$TMP/transcribe.py" "$TMP/tiny.en-q8_0.bin" "$T/jfk.wav" 2>"$TMP/wlog")
expect_eq "whisper.cpp transcribes jfk.wav with the q8_0 file (exit)" 0 $?
echo "whisper.cpp q8_0: $out"
expect_eq "whisper.cpp on our q8_0 file: words equal the ground truth" "$(norm "$TRUTH")" "$(norm "$out")"
finish
