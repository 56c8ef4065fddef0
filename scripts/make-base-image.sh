#!/usr/bin/env bash
# make-base-image.sh — builds the debian:bookworm-slim base image locally with
# debootstrap and imports it into buildah's store, so that the Dockerfile
# builds here without pulling from any container registry.
#
# Usage: scripts/make-base-image.sh [--force]
#   --force   rebuild the rootfs tarball even if a cached one exists
# Environment:
#   ASR_CACHE_DIR   where the rootfs tarball is cached (default ~/.cache/asr)
#   DEBIAN_MIRROR   Debian mirror URL; by default the one apt uses on this host
#
# The result is tagged debian:bookworm-slim and debian:bookworm (the Dockerfile
# only needs the first; the second makes `FROM debian:bookworm` work as well).
# Like Docker's official slim image, documentation, man pages and locales are
# excluded via dpkg path-exclude, and apt does not keep downloaded packages.
set -euo pipefail

force=0
[[ "${1:-}" == "--force" ]] && force=1
suite=bookworm
cache_dir=${ASR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/asr}
tarball="$cache_dir/debootstrap/$suite-minbase-slim.tar"

log() { printf 'make-base-image: %s\n' "$*" >&2; }

# The Debian mirror that apt on this host uses for $suite (deb822 or one-line
# format). Read at run time so no mirror host is written into the repository.
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        # deb822 stanzas: print URIs of a stanza whose Suites has "$suite" exactly.
        awk -v suite="$suite" '
            /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (uri != "" && ok) print uri }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        awk -v suite="$suite" '$1 == "deb" && $3 == suite && $2 !~ /^\[/ { print $2 }' "$f"
    done
}

build_tarball() {
    local mirror=${DEBIAN_MIRROR:-$(host_mirror | head -n 1)}
    [[ -n "$mirror" ]] || { log "no Debian mirror for $suite found in /etc/apt; set DEBIAN_MIRROR"; exit 1; }
    command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/asr-rootfs.XXXXXX")
    # shellcheck disable=SC2064  # expand $work now: it is local
    trap "rm -rf '$work'" EXIT
    local rootfs="$work/rootfs"
    log "debootstrap --variant=minbase $suite (mirror from the host's apt configuration)"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

    # Slim it the way Docker's debian:*-slim is slimmed.
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d" "$rootfs/etc/apt/apt.conf.d"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/asr-slim" <<'EOF'
# Keep the image small: no documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/asr-slim" <<'EOF'
// Keep the image small: drop downloaded .debs, no recommends, no translations.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Install-Recommends "false";
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
           "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
           "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/*
    # Use the same apt sources as the host (main, updates and security), so
    # packages in the image match the ones this host builds and tests against.
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
        rm -f "$rootfs/etc/apt/sources.list"
    fi
    : >"$rootfs/etc/hostname"
    : >"$rootfs/etc/resolv.conf"

    mkdir -p "$(dirname "$tarball")"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work"; trap - EXIT
    log "cached $tarball ($(du -h "$tarball" | cut -f1))"
}

if [[ $force -eq 1 || ! -s "$tarball" ]]; then
    build_tarball
else
    log "using cached $tarball"
fi

command -v buildah >/dev/null || { log "buildah is not installed (apt-get install buildah)"; exit 1; }
# Re-import only when the tarball changed: a new base image ID would
# invalidate every cached layer of the Dockerfile build (buildah bud --layers).
rootfs_sum=$(sha256sum "$tarball" | cut -d' ' -f1)
have_sum=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "asr.rootfs.sha256"}}' debian:bookworm-slim 2>/dev/null || true)
if [[ "$have_sum" == "$rootfs_sum" ]]; then
    buildah tag debian:bookworm-slim debian:bookworm
    log "debian:bookworm-slim is up to date (rootfs sha256 ${rootfs_sum:0:12})"
    exit 0
fi
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$tarball" / >/dev/null
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["bash"]' --os linux --arch amd64 \
    --label org.opencontainers.image.description="debian $suite minbase, debootstrapped locally" \
    --label asr.rootfs.sha256="$rootfs_sum" \
    "$ctr"
buildah commit --quiet --rm "$ctr" debian:bookworm-slim >/dev/null
trap - EXIT
buildah tag debian:bookworm-slim debian:bookworm
log "tagged debian:bookworm-slim and debian:bookworm"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E 'debian:bookworm' >&2 || true
