#!/usr/bin/env bash
# build-image.sh — builds the asr container image with buildah where no Docker
# engine runs: makes the debian:bookworm-slim base locally (debootstrap, cached)
# and runs `buildah bud` on the Dockerfile. With Docker, `docker build -t whisper .`
# does the same.
#
# Usage: scripts/build-image.sh [TAG] [-- EXTRA BUILDAH BUD ARGS]
#   TAG defaults to whisper:latest; e.g. scripts/build-image.sh whisper -- --build-arg ASR_MODEL_NAME=
# Export it for Docker/minikube: buildah push whisper:latest docker-archive:whisper.tar:whisper:latest
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-whisper:latest}
[[ $# -gt 0 ]] && shift
[[ "${1:-}" == "--" ]] && shift
bash scripts/make-base-image.sh
# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
# The model download trusts what this host trusts (a TLS-inspecting proxy's CA).
secret=()
[[ -s /etc/ssl/certs/ca-certificates.crt ]] && secret=(--secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt)
buildah bud --isolation chroot --format docker --layers --force-rm --pull=never "${secret[@]}" -t "$tag" "$@" .
buildah images --format '{{.Name}}:{{.Tag}}  {{.Size}}' "$tag"
