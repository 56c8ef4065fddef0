#!/usr/bin/env bash
# mel_reference.sh — log-mel of jfk.wav vs openai/whisper's log_mel_spectrogram
# recomputed in numpy (tests/tools/mel_reference.py), 80 and 128 bands, with
# and without the 30 s padding transcribe() adds; max abs diff must be <= 1e-4.
# Needs: $ASR_TEST_PY (a python with numpy), $BUILD/tests/test_mel, $ASR_SHARED.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ASR_SHARED=${ASR_SHARED:-../shared}
PY=${ASR_TEST_PY:-python3}
"$PY" -c 'import numpy' || { echo "FAIL: $PY has no numpy (run scripts/setup-test-env.sh)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wav="$ASR_SHARED/testdata/jfk.wav"
for n_mels in 80 128; do
    for padding in 0 480000; do
        ref="$tmp/ref_${n_mels}_${padding}.npy"
        "$PY" tests/tools/mel_reference.py "$wav" "$ref" --n-mels "$n_mels" --padding "$padding" \
            --filters "$ASR_SHARED/testdata/mel_filters.npz"
        "$BUILD/tests/test_mel" --reference "$ref" --wav "$wav" --n-mels "$n_mels" --padding "$padding"
    done
done
