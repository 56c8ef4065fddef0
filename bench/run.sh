#!/usr/bin/env bash
# run.sh — the benchmark's one entry point: makes the bench venv (bench/setup.sh), then runs bench/run.py with it.
# Arguments go to run.py (e.g. --parts speed --repeats 5); results land in bench/results/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh"
venv=${ASR_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/bench-venv}
cd "$here/.."
[ -x build/asr ] || make -j2 build/asr
exec "$venv/bin/python" bench/run.py "$@"
