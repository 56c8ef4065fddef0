#!/usr/bin/env bash
# ffmpeg_parity.sh — checks that asr decodes audio bit-identically to the
# command openai/whisper's load_audio runs (ffmpeg -ac 1 -ar 16000 -f s16le).
# A developer tool, not part of the suite: the ffmpeg CLI is not a dependency.
#
#   tests/tools/ffmpeg_parity.sh FILE...     (FFMPEG=path to use another ffmpeg)
#
# Uses $BUILD/tests/test_audio --dump. Exit status 1 if any file differs.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FFMPEG=${FFMPEG:-ffmpeg}
command -v "$FFMPEG" >/dev/null || { echo "no ffmpeg CLI ($FFMPEG)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for f in "$@"; do
    "$FFMPEG" -nostdin -loglevel error -threads 0 -i "$f" -f s16le -ac 1 -acodec pcm_s16le \
        -ar 16000 - >"$tmp/ffmpeg.s16" || { echo "ERROR $f: ffmpeg failed"; status=1; continue; }
    "$BUILD/tests/test_audio" --dump "$f" "$tmp/asr.s16" || { echo "ERROR $f: asr failed"; status=1; continue; }
    if cmp -s "$tmp/ffmpeg.s16" "$tmp/asr.s16"; then
        echo "SAME   $f ($(($(stat -c %s "$tmp/asr.s16") / 2)) samples)"
    else
        echo "DIFFER $f (ffmpeg $(stat -c %s "$tmp/ffmpeg.s16") bytes, asr $(stat -c %s "$tmp/asr.s16") bytes)"
        status=1
    fi
done
exit $status
