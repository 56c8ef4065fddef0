#!/usr/bin/env bash
# setup-test-env.sh — makes the Python venv the tests use as oracles and
# clients, outside the source tree, with the pinned tests/requirements.txt.
# The product never needs it. Idempotent and fast: a stamp in the venv holds a
# hash of the requirements and the Python version; when it matches, nothing
# is done. Prints the venv's python path last.
#
# Environment: ASR_VENV (default ${XDG_CACHE_HOME:-~/.cache}/asr/venv),
#              PYTHON (the interpreter to build it from, default python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${ASR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/venv}
python=${PYTHON:-python3}
requirements="$root/tests/requirements.txt"
stamp="$venv/.asr-test-env.sha256"

command -v "$python" >/dev/null 2>&1 || {
    echo "setup-test-env: $python not found (run scripts/install-deps.sh)" >&2
    exit 1
}
py_version=$("$python" -c 'import sys; print(sys.version)')
want=$( { cat "$requirements"; echo "$py_version"; } | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "setup-test-env: up to date: $venv/bin/python"
    exit 0
fi

# A venv from another Python or an older requirement set is rebuilt from
# scratch, so packages dropped from the list do not linger. Only a directory
# that is recognisably a venv is ever removed.
if [ -e "$venv" ]; then
    if [ -f "$venv/pyvenv.cfg" ]; then
        rm -rf "$venv"
    else
        echo "setup-test-env: $venv exists and is not a venv; move it away or set ASR_VENV" >&2
        exit 1
    fi
fi
echo "setup-test-env: creating $venv with $python ($py_version)"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" || {
    echo "setup-test-env: cannot make a venv with $python (on Debian: apt-get install python3-venv)" >&2
    exit 1
}
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$requirements"
"$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null
echo "$want" >"$stamp"
echo "setup-test-env: ready: $venv/bin/python"
