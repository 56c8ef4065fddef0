# Dockerfile — the asr speech-to-text server image: a Debian 12 build stage
# compiles asr and downloads the default model; the runtime stage keeps only
# the binary, its runtime libraries and the model.
#
#   docker build -t whisper .            (or: buildah bud --isolation chroot -t whisper .)
#   docker run --rm -p 80:80 whisper     then: curl -F file=@jfk.wav localhost/v1/audio/transcriptions
#
# Build arguments:
#   ASR_MODEL_NAME   model baked into /models (default tiny.en); empty bakes none,
#                    then mount one: -v ~/.cache/asr/models:/models -e ASR_MODEL=NAME
#   DEBIAN_IMAGE     base image of both stages (default debian:bookworm-slim;
#                    scripts/make-base-image.sh builds it locally with debootstrap)
#
# Port 80 as a non-root user: the server runs as uid 10001 without any file
# capability (a setcap'd binary cannot even be exec'd under Kubernetes'
# `capabilities: drop: [ALL]` + `allowPrivilegeEscalation: false`). Docker
# >= 20.10 sets net.ipv4.ip_unprivileged_port_start=0 in every container's
# network namespace, so the non-root server binds port 80 there; other runtimes
# need `--sysctl net.ipv4.ip_unprivileged_port_start=0` or `-e ASR_PORT=8080`
# (the Kubernetes manifests use port 8080).

ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config \
        libavformat-dev libavcodec-dev libswresample-dev libavutil-dev \
        libmicrohttpd-dev libjansson-dev zlib1g-dev libopenblas-dev libcurl4-gnutls-dev \
        python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include include
COPY src src
COPY scripts/embed-files.sh scripts/
COPY models models
RUN make -j"$(nproc)" build/asr && strip --strip-debug build/asr
# `asr models pull` fetches the model with pip (build stage only; the runtime
# image has no Python). Behind a TLS-inspecting proxy, hand pip the CA bundle
# the build host trusts as the optional build secret "ca-bundle":
#   docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt -t whisper .
ARG ASR_MODEL_NAME=tiny.en
RUN --mount=type=secret,id=ca-bundle,required=false \
    mkdir -p /models \
 && if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && if [ -n "$ASR_MODEL_NAME" ]; then \
        ASR_MODELS_DIR=/models HOME=/tmp build/asr models pull "$ASR_MODEL_NAME"; \
    fi \
 && rm -rf /tmp/* /root/.cache

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libavformat59 libavcodec59 libswresample4 libavutil57 \
        libmicrohttpd12 libjansson4 zlib1g libopenblas0-pthread libcurl3-gnutls \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 asr \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin asr
COPY --from=build /src/build/asr /usr/local/bin/asr
COPY --from=build /models /models
ARG ASR_MODEL_NAME=tiny.en
ENV ASR_HOST=0.0.0.0 \
    ASR_PORT=80 \
    ASR_MODELS_DIR=/models \
    ASR_MODEL=${ASR_MODEL_NAME}
LABEL org.opencontainers.image.title="asr" \
      org.opencontainers.image.description="Self-hosted Whisper speech-to-text with an OpenAI-compatible HTTP API"
# Numeric uid so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
EXPOSE 80
STOPSIGNAL SIGTERM
# No curl in the image: bash's /dev/tcp speaks just enough HTTP for /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${ASR_PORT:-80} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/asr"]
CMD ["serve"]
