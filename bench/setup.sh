#!/usr/bin/env bash
# setup.sh — makes the benchmark venv outside the source tree and installs bench/requirements.txt into it.
# Venv: $ASR_BENCH_VENV (default ~/.cache/asr/bench-venv). Idempotent: a venv whose
# installed set already matches the requirements is left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${ASR_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/bench-venv}
python=${PYTHON:-python3}
stamp="$venv/.asr-bench-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements.txt"; then
    echo "bench venv up to date: $venv"
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" || {
        echo "setup.sh: cannot make a venv with $python (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
# pywhispercpp ships manylinux wheels for CPython 3.8-3.13; on another Python pip
# would build whisper.cpp from source, which needs cmake and a C++ compiler.
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
echo "bench venv ready: $venv"
