#!/usr/bin/env bash
# run.sh — the benchmark's one entry point: makes the bench venv (bench/setup.sh), then runs bench/run.py with it.
# Arguments go to run.py (e.g. --parts speed --repeats 5); results land in bench/results/.
# --parts engine (first) runs bench/engine_shapes.py instead, with the arguments after it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/setup.sh"
venv=${ASR_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/bench-venv}
cd "$here/.."
[ -x build/asr ] || make -j2 build/asr
if [ "${1:-}" = "--parts" ] && [ "${2:-}" = "engine" ]; then
    # per-window encoder and per-token decoder times on four shapes: its own driver
    shift 2
    make -j2 bench-engine bench-kernels
    exec "$venv/bin/python" bench/engine_shapes.py "$@"
fi
exec "$venv/bin/python" bench/run.py "$@"
