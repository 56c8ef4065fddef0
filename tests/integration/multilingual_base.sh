#!/usr/bin/env bash
# multilingual_base.sh — the multilingual base model: language detection (en for
# jfk, de for German FLEURS), German transcribed in German, --task translate
# gives English. Pulls base into the model cache when it is missing.
set -u
source "$(dirname "$0")/../lib.sh"
T=$ASR_SHARED/testdata
BASE=$ASR_MODELS_DIR/base
if [ ! -f "$BASE/model.bin" ]; then
    "$ASR_BIN" models pull base >"$TMP/pull.log" 2>&1
    expect_eq "asr models pull base" 0 $?
fi
words() { printf '%s' "$1" | tr 'A-ZÄÖÜ' 'a-zäöü' | tr -d '[:punct:]' | tr -s ' ' '\n' | sed '/^$/d' | sort -u; }
overlap() { # fraction of reference words found in the hypothesis
    local ref hyp common total
    ref=$(words "$1"); hyp=$(words "$2")
    total=$(printf '%s\n' "$ref" | wc -l)
    common=$(comm -12 <(printf '%s\n' "$ref") <(printf '%s\n' "$hyp") | wc -l)
    echo $((100 * common / total))
}

vj=$("$ASR_BIN" transcribe -m "$BASE" -f verbose_json "$T/jfk.wav" 2>"$TMP/err")
expect_match "jfk detected as English" '"language":"english"' "$vj"
expect_match "jfk text" 'ask not what your country can do for you' "$vj"

for clip in de-000 de-001; do
    vj=$("$ASR_BIN" transcribe -m "$BASE" -f verbose_json "$T/fleurs/$clip.ogg" 2>"$TMP/err")
    expect_match "$clip detected as German" '"language":"german"' "$vj"
    text=$("$ASR_BIN" transcribe -m "$BASE" -l de "$T/fleurs/$clip.ogg" 2>/dev/null)
    pct=$(overlap "$(cat "$T/fleurs/$clip.txt")" "$text")
    [ "$pct" -ge 60 ]; expect_eq "$clip German words found: $pct% (>= 60%): $text" 0 $?
done

en=$("$ASR_BIN" transcribe -m "$BASE" --task translate "$T/fleurs/de-000.ogg" 2>/dev/null)
expect_match "translate gives English ($en)" '\b(the|of|and|to)\b' "$en"
if printf '%s' "$en" | grep -Eqi '\b(die|und|der|sollten)\b'; then _report fail "translation has no German words" "$en"; else _report ok "translation has no German words"; fi
finish
