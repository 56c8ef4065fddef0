#!/usr/bin/env bash
# build_and_serve.sh — the container image test: builds the Dockerfile with
# buildah (chroot isolation) on a locally debootstrapped debian:bookworm-slim,
# runs the image's server as its non-root user on port 80 in a private network
# namespace (set up the way Docker sets up a container's), transcribes jfk.wav
# through the API, then sends SIGTERM during a long request and checks the
# drain: /readyz 503, the in-flight request still answered, exit status 0.
#
# Slow (an uncached run debootstraps and installs packages: minutes), so it is
# not in tests/integration/ but run by .ci/run on its own:
#   bash tests/image/build_and_serve.sh
# Environment: ASR_SHARED (test data, default ../shared), ASR_CACHE_DIR
# (debootstrap tarball cache, default ~/.cache/asr), ASR_IMAGE (tag to build,
# default localhost/whisper:test). Needs root (buildah, ip netns).
set -euo pipefail
cd "$(dirname "$0")/../.."
ASR_SHARED=${ASR_SHARED:-$(cd .. && pwd)/shared}
IMAGE=${ASR_IMAGE:-localhost/whisper:test}
JFK_TEXT='And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.'
LONG_AUDIO="$ASR_SHARED/testdata/multilingual.mp3"   # 60 s: several seconds of decoding
LONG_TEXT='permission is hereby granted free of charge to any person obtaining a copy'

failures=0
passes=0
pass() { passes=$((passes + 1)); echo "ok   $*"; }
fail() { failures=$((failures + 1)); echo "FAIL $*"; }
die() { echo "FAIL $*"; echo "$passes passed, $((failures + 1)) failed"; exit 1; }
elapsed() { echo $(( $(date +%s) - $1 ))s; }
# Words only: the engine's own tests pin punctuation and casing; this one is
# about the container serving real transcriptions.
normalize() { tr '[:upper:]' '[:lower:]' <<<"$1" | tr -cd 'a-z0-9 \n' | tr -s ' '; }

# --- tools: install what a fresh machine lacks --------------------------------
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    echo "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
[[ $(id -u) -eq 0 ]] || die "needs root (buildah, ip netns)"

work=$(mktemp -d)
ns="asr-img-$$"
ctr=""
hc_ctr=""
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill -KILL "$server_pid" 2>/dev/null || true
    [[ -n "$ctr" ]] && buildah rm "$ctr" >/dev/null 2>&1 || true
    [[ -n "$hc_ctr" ]] && buildah rm "$hc_ctr" >/dev/null 2>&1 || true
    ip netns del "$ns" 2>/dev/null || true
    [[ -n "${pod_ctr:-}" ]] && { buildah umount "$pod_ctr" >/dev/null 2>&1; buildah rm "$pod_ctr" >/dev/null 2>&1; } || true
    [[ -n "${pod_ns:-}" ]] && ip netns del "$pod_ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- base image and build -----------------------------------------------------
t0=$(date +%s)
bash scripts/make-base-image.sh || die "base image: scripts/make-base-image.sh failed"
pass "base image debian:bookworm-slim from debootstrap ($(elapsed "$t0"))"

t0=$(date +%s)
# --format docker keeps HEALTHCHECK (the OCI format has no field for it);
# --layers caches the stages between runs; --pull=never: no registry at all.
# The model download in the build stage trusts what this host trusts (a
# TLS-inspecting proxy's CA, where there is one).
secret=()
[[ -s /etc/ssl/certs/ca-certificates.crt ]] && secret=(--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt)
if ! buildah bud --isolation chroot --format docker --layers --force-rm --pull=never "${secret[@]}" \
        -t "$IMAGE" . >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log"
    die "buildah bud failed"
fi
size=$(buildah images --format '{{.Size}}' "$IMAGE" | head -n 1)
pass "buildah bud --isolation chroot built $IMAGE in $(elapsed "$t0"), image size $size"

# --- image configuration ------------------------------------------------------
cfg() { buildah inspect --type image --format "$1" "$IMAGE"; }
[[ "$(cfg '{{.Docker.Config.User}}')" == "10001:10001" ]] && pass "runs as uid 10001" || fail "USER is $(cfg '{{.Docker.Config.User}}')"
cfg '{{range $k, $v := .Docker.Config.ExposedPorts}}{{$k}} {{end}}' | grep -qw '80/tcp' && pass "exposes 80/tcp" || fail "80/tcp not exposed"
cfg '{{.Docker.Config.Env}}' | grep -q 'ASR_PORT=80' && pass "ASR_PORT=80 by default" || fail "ASR_PORT is not 80: $(cfg '{{.Docker.Config.Env}}')"
health=$(cfg '{{if .Docker.Config.Healthcheck}}{{range .Docker.Config.Healthcheck.Test}}{{.}} {{end}}{{end}}')
[[ "$health" == *healthz* ]] && pass "HEALTHCHECK on /healthz" || fail "no HEALTHCHECK in the image: $health"

ctr=$(buildah from --pull=never "$IMAGE")
run_in() { buildah run --isolation chroot --network host "$ctr" -- "$@"; }
missing=$(run_in /bin/sh -c 'ldd /usr/local/bin/asr | grep "not found" || true')
[[ -z "$missing" ]] && pass "every shared library of asr is in the image" || fail "missing libraries: $missing"
run_in /bin/sh -c '! command -v python3 && ! command -v gcc && ! command -v pip3' >/dev/null \
    && pass "no Python or compiler in the runtime image" || fail "runtime image carries build tools"
run_in /bin/sh -c 'test -s "$ASR_MODELS_DIR/$ASR_MODEL/model.bin"' \
    && pass "tiny.en model baked in" || fail "no model under \$ASR_MODELS_DIR/\$ASR_MODEL"

# --- run it like `docker run --rm -p 80:80 whisper` ---------------------------
# A fresh network namespace per container with unprivileged ports from 0, as
# Docker (>= 20.10) makes one: the non-root server must bind port 80 in it.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -q -w net.ipv4.ip_unprivileged_port_start=0
in_ns() { ip netns exec "$ns" "$@"; }
url=http://127.0.0.1:80

# A drain long enough for the in-flight request below (the image keeps the
# server's 30 s default; Kubernetes sets ASR_GRACE from its timeout chain).
buildah config --env ASR_GRACE=120 "$ctr"
# The image's own ENTRYPOINT + CMD, as `docker run` starts them.
mapfile -t start_argv < <(cfg '{{range .Docker.Config.Entrypoint}}{{.}}{{"\n"}}{{end}}{{range .Docker.Config.Cmd}}{{.}}{{"\n"}}{{end}}')
[[ "${start_argv[*]}" == "/usr/local/bin/asr serve" ]] || fail "ENTRYPOINT+CMD is '${start_argv[*]}', expected '/usr/local/bin/asr serve'"
in_ns buildah run --isolation chroot --network host "$ctr" -- "${start_argv[@]}" \
    >"$work/server.log" 2>&1 &
runner_pid=$!

# The server is the process under the buildah runner whose executable is the image's asr.
find_server() {
    local pid exe
    for pid in $(ps -e -o pid=); do
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
        [[ "$exe" == */usr/local/bin/asr ]] || continue
        # descendant of our runner?
        local p=$pid
        while [[ "$p" -gt 1 ]]; do
            [[ "$p" -eq "$runner_pid" ]] && { echo "$pid"; return 0; }
            p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null) || break
        done
    done
    return 1
}

t0=$(date +%s)
for _ in $(seq 1 300); do
    in_ns curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && break
    kill -0 "$runner_pid" 2>/dev/null || { cat "$work/server.log"; die "the container exited before serving"; }
    sleep 0.2
done
in_ns curl -fsS -o /dev/null "$url/readyz" || { cat "$work/server.log"; die "not ready on port 80 within 60 s"; }
pass "server ready on port 80 after $(elapsed "$t0")"
server_pid=$(find_server) || die "cannot find the server process"
uid=$(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status")
[[ "$uid" == 10001 ]] && pass "server process runs as uid 10001 (non-root) and bound port 80" || fail "server runs as uid $uid"

# HEALTHCHECK command as the image declares it, from a second container of
# the image in the same network namespace (as Docker execs it in the running
# one; two concurrent `buildah run`s on one working container trip buildah up).
hc=$(cfg '{{range .Docker.Config.Healthcheck.Test}}{{.}}{{"\n"}}{{end}}' | tail -n +2)
mapfile -t hc_argv <<<"$hc"
hc_ctr=$(buildah from --pull=never "$IMAGE")
in_ns buildah run --isolation chroot --network host "$hc_ctr" -- "${hc_argv[@]}" \
    && pass "HEALTHCHECK command succeeds against the running server" || fail "HEALTHCHECK command fails"

# A real transcription through the OpenAI-compatible API.
code=$(in_ns curl -sS -o "$work/jfk.json" -w '%{http_code}' --max-time 120 \
    -F file=@"$ASR_SHARED/testdata/jfk.wav" -F model=whisper-1 "$url/v1/audio/transcriptions") || code=000
text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"].strip())' "$work/jfk.json" 2>/dev/null || true)
if [[ "$code" == 200 && "$(normalize "$text")" == "$(normalize "$JFK_TEXT")" ]]; then
    pass "POST /v1/audio/transcriptions jfk.wav -> \"$text\""
else
    fail "jfk.wav transcription: HTTP $code, body: $(head -c 500 "$work/jfk.json" 2>/dev/null)"
fi

# --- SIGTERM while a long request is in flight: drain, then exit 0 ------------
in_ns curl -sS -o "$work/long.json" -w '%{http_code}' --max-time 600 \
    -F file=@"$LONG_AUDIO" -F model=whisper-1 "$url/v1/audio/transcriptions" >"$work/long.code" 2>"$work/long.err" &
long_pid=$!
# Wait until the server has the request (its in-flight gauge), then stop it.
for _ in $(seq 1 100); do
    in_ns curl -fsS "$url/metrics" 2>/dev/null | grep -Eq '^asr_workers_busy [1-9]' && break
    sleep 0.1
done
kill -0 "$long_pid" 2>/dev/null || fail "the long request ended before SIGTERM could be sent"
t0=$(date +%s)
kill -TERM "$server_pid"
sleep 0.5
ready=$(in_ns curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/readyz" || true)
# After SIGTERM the server stops accepting: a refused connection (000) or 503.
[[ "$ready" == 503 || "$ready" == 000 ]] && pass "after SIGTERM /readyz answers ${ready/000/connection refused}" || fail "after SIGTERM /readyz answered $ready"
wait "$long_pid" || true
long_code=$(cat "$work/long.code")
long_text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"])' "$work/long.json" 2>/dev/null || true)
[[ "$long_code" == 200 && "$(normalize "$long_text")" == *"$LONG_TEXT"* ]] \
    && pass "the in-flight 60 s transcription finished during the drain ($(wc -w <<<"$long_text") words)" \
    || fail "in-flight request during drain: HTTP $long_code, $(head -c 300 "$work/long.json" 2>/dev/null) $(cat "$work/long.err")"
rc=0
wait "$runner_pid" || rc=$?
server_pid=""
if [[ $rc -eq 0 ]] && grep -q '"event":"stopped","cancelled_requests":0' "$work/server.log"; then
    pass "container exited 0 after SIGTERM ($(elapsed "$t0") drain, nothing cancelled)"
else
    grep -v '^\s' "$work/server.log" | tail -n 20
    fail "container exited with $rc after SIGTERM"
fi

# --- run it as kube/10-deployment.yaml does ----------------------------------
# Read-only root filesystem with an emptyDir (tmpfs) on /tmp, uid/gid 10001,
# every capability dropped, no_new_privs, the Deployment's environment (port
# 8080), a pod network namespace with the default unprivileged port range; then
# its three probe paths, a transcription and SIGTERM.
py=${ASR_TEST_PY:-${ASR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/venv}/bin/python}
mapfile -t pod_env < <("$py" - kube/10-deployment.yaml "$work/probes" <<'PY'
import sys, yaml
dep = yaml.safe_load(open(sys.argv[1]))
c = dep["spec"]["template"]["spec"]["containers"][0]
for e in c.get("env", []):
    if "value" in e:
        print(f"{e['name']}={e['value']}")
with open(sys.argv[2], "w") as f:
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        print(c[probe]["httpGet"]["path"], file=f)
PY
) || die "cannot read kube/10-deployment.yaml with $py (run scripts/setup-test-env.sh)"
pod_port=$(printf '%s\n' "${pod_env[@]}" | sed -n 's/^ASR_PORT=//p')
pod_ns="asr-pod-$$"
ip netns add "$pod_ns"
ip -n "$pod_ns" link set lo up
pod_ctr=$(buildah from --pull=never "$IMAGE")
pod_root=$(buildah mount "$pod_ctr")
# A private mount namespace: the read-only bind and the tmpfs vanish with it.
ip netns exec "$pod_ns" unshare --mount --propagation private /bin/bash -c '
    root=$1; shift
    mount --bind "$root" "$root" && mount -o remount,bind,ro "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o size=256m,mode=1777 tmpfs "$root/tmp"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin ASR_MODELS_DIR=/models "$@" \
        /usr/bin/setpriv --reuid=10001 --regid=10001 --clear-groups --inh-caps=-all \
        --bounding-set=-all --no-new-privs /usr/local/bin/asr serve' \
    pod "$pod_root" "${pod_env[@]}" >"$work/pod.log" 2>&1 &
runner_pid=$!
pod_url=http://127.0.0.1:$pod_port
for _ in $(seq 1 300); do
    ip netns exec "$pod_ns" curl -fsS -o /dev/null "$pod_url/readyz" 2>/dev/null && break
    kill -0 "$runner_pid" 2>/dev/null || break
    sleep 0.2
done
server_pid=$(find_server) || { cat "$work/pod.log"; die "the Deployment-style container did not start"; }
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$server_pid/status")
root_opts=$(awk '$5 == "/" {print $6}' "/proc/$server_pid/mountinfo" | tail -n 1)
[[ "$caps" == 0000000000000000 && $(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status") == 10001 && "$root_opts" == ro* ]] \
    && pass "Deployment-style run: uid 10001, no capabilities, read-only root, port $pod_port" \
    || fail "Deployment-style run: CapEff=$caps, root mounted $root_opts"
while read -r path; do
    code=$(ip netns exec "$pod_ns" curl -s -o /dev/null -w '%{http_code}' "$pod_url$path" || true)
    [[ "$code" == 200 ]] && pass "probe path $path answers 200" || fail "probe path $path answered $code"
done <"$work/probes"
code=$(ip netns exec "$pod_ns" curl -sS -o "$work/pod-jfk.json" -w '%{http_code}' --max-time 120 \
    -F file=@"$ASR_SHARED/testdata/jfk.flac" -F model=whisper-1 "$pod_url/v1/audio/transcriptions") || code=000
text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"].strip())' "$work/pod-jfk.json" 2>/dev/null || true)
[[ "$code" == 200 && "$(normalize "$text")" == "$(normalize "$JFK_TEXT")" ]] \
    && pass "transcribes jfk.flac with a read-only root filesystem" \
    || fail "read-only root transcription: HTTP $code, $(head -c 300 "$work/pod-jfk.json" 2>/dev/null)"
kill -TERM "$server_pid"
rc=0
wait "$runner_pid" || rc=$?
server_pid=""
[[ $rc -eq 0 ]] && pass "Deployment-style run exited 0 on SIGTERM" || { tail -n 20 "$work/pod.log"; fail "Deployment-style run exited $rc"; }
buildah umount "$pod_ctr" >/dev/null 2>&1 || true
buildah rm "$pod_ctr" >/dev/null 2>&1 || true
ip netns del "$pod_ns" 2>/dev/null || true

# --- no model baked in: one mounted at run time -------------------------------
# The build stage's compile layer is reused; only the model step and the
# runtime stage's last layers change.
t0=$(date +%s)
model_dir=${ASR_TEST_MODEL:-${ASR_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asr/models}/tiny.en}
if buildah bud --isolation chroot --format docker --layers --force-rm --pull=never "${secret[@]}" \
        --build-arg ASR_MODEL_NAME= -t "$IMAGE-nomodel" . >"$work/build-nomodel.log" 2>&1; then
    pass "--build-arg ASR_MODEL_NAME= builds an image without a model in $(elapsed "$t0"), $(buildah images --format '{{.Size}}' "$IMAGE-nomodel" | head -n 1)"
    bare_ctr=$(buildah from --pull=never "$IMAGE-nomodel")
    buildah config --env ASR_MODEL="$(basename "$model_dir")" "$bare_ctr"
    if buildah run --isolation chroot "$bare_ctr" -- /bin/sh -c 'test -z "$(ls -A /models)"'; then
        pass "the model-less image has an empty /models"
    else
        fail "the model-less image has files in /models"
    fi
    in_ns buildah run --isolation chroot --network host --volume "$(dirname "$model_dir"):/models:ro" \
        "$bare_ctr" -- "${start_argv[@]}" >"$work/bare.log" 2>&1 &
    runner_pid=$!
    for _ in $(seq 1 300); do
        in_ns curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && break
        kill -0 "$runner_pid" 2>/dev/null || break
        sleep 0.2
    done
    code=$(in_ns curl -sS -o "$work/bare.json" -w '%{http_code}' --max-time 120 \
        -F file=@"$ASR_SHARED/testdata/jfk.mp3" -F model=whisper-1 "$url/v1/audio/transcriptions") || code=000
    text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"].strip())' "$work/bare.json" 2>/dev/null || true)
    [[ "$code" == 200 && "$(normalize "$text")" == "$(normalize "$JFK_TEXT")" ]] \
        && pass "with the model mounted on /models and ASR_MODEL set, it transcribes jfk.mp3" \
        || { tail -n 5 "$work/bare.log"; fail "mounted-model run: HTTP $code, $(head -c 300 "$work/bare.json" 2>/dev/null)"; }
    if server_pid=$(find_server); then kill -TERM "$server_pid"; fi
    wait "$runner_pid" || true
    server_pid=""
    buildah rm "$bare_ctr" >/dev/null 2>&1 || true
else
    tail -n 20 "$work/build-nomodel.log"
    fail "--build-arg ASR_MODEL_NAME= build failed"
fi

echo "$passes passed, $failures failed"
[[ $failures -eq 0 ]]
