#!/usr/bin/env bash
# Build the KV Lens images: the app (Dockerfile) and the sticky proxy (deploy/proxy/).
#
#   deploy/build.sh            # both images
#   deploy/build.sh app        # only the app image
#   deploy/build.sh proxy      # only the proxy image
#
# Settings, all optional:
#   KV_LENS_IMAGE        tag of the app image                       (kv-lens:latest)
#   KV_LENS_PROXY_IMAGE  tag of the proxy image                     (kv-lens-proxy:latest)
#   BASE_IMAGE           base of both                                (python:3.11-slim)
#   KV_LENS_WHEELS       folder with the CPU torch wheel, linked into deploy/local/wheels
#                        (/opt/wheels; empty or missing: none)
#   TORCH_INDEX          index with the CPU torch (https://download.pytorch.org/whl/cpu, or
#                        empty when a CPU torch wheel was found in KV_LENS_WHEELS)
#   KV_LENS_PIP_CERT     CA bundle pip trusts in the build, for TLS interception (default: the
#                        host's: $PIP_CERT, else $SSL_CERT_FILE, else Debian's system bundle;
#                        empty: none)
#   KV_LENS_BUILD_NICE   niceness of the build                       (10)
#   DOCKER_BUILD_FLAGS   more flags for `docker build`, e.g. --no-cache
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${KV_LENS_IMAGE:-kv-lens:latest}
PROXY_IMAGE=${KV_LENS_PROXY_IMAGE:-kv-lens-proxy:latest}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
WHEELS=${KV_LENS_WHEELS-/opt/wheels}
SYSTEM_CA=/etc/ssl/certs/ca-certificates.crt
CA_BUNDLE=${KV_LENS_PIP_CERT-${PIP_CERT:-${SSL_CERT_FILE:-$([ -f $SYSTEM_CA ] && echo $SYSTEM_CA)}}}
NICE=${KV_LENS_BUILD_NICE:-10}
WHAT=${1:-all}

docker_build() {
    # shellcheck disable=SC2086  # DOCKER_BUILD_FLAGS is a list of flags
    nice -n "$NICE" docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        ${DOCKER_BUILD_FLAGS:-} "$@"
}

if [ "$WHAT" = all ] || [ "$WHAT" = app ]; then
    # deploy/local/: what this machine adds to the build (git ignores it; see its README).
    LOCAL=deploy/local
    rm -rf "$LOCAL/wheels" "$LOCAL/pip-ca.crt"
    found_torch=""
    if [ -n "$WHEELS" ] && [ -d "$WHEELS" ]; then
        mkdir -p "$LOCAL/wheels"
        for wheel in "$WHEELS"/torch-*+cpu-*.whl; do
            [ -f "$wheel" ] || continue
            ln -f "$wheel" "$LOCAL/wheels/" 2>/dev/null || cp "$wheel" "$LOCAL/wheels/"
            found_torch=$wheel
        done
    fi
    if [ -z "${TORCH_INDEX+set}" ]; then
        if [ -n "$found_torch" ]; then TORCH_INDEX=""; else TORCH_INDEX=https://download.pytorch.org/whl/cpu; fi
    fi
    if [ -n "$CA_BUNDLE" ] && [ -f "$CA_BUNDLE" ]; then
        cp "$CA_BUNDLE" "$LOCAL/pip-ca.crt"
    fi
    echo "build: $IMAGE from $BASE_IMAGE; torch from ${found_torch:-${TORCH_INDEX}}" \
        "${CA_BUNDLE:+(pip CA bundle: $CA_BUNDLE)}"
    # torch's pin, from requirements.txt: the Dockerfile installs it in a layer of its own.
    TORCH_VERSION=$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' requirements.txt)
    [ -n "$TORCH_VERSION" ] || { echo "build: no torch==… pin in requirements.txt" >&2; exit 1; }
    docker_build --build-arg "TORCH_INDEX=$TORCH_INDEX" --build-arg "TORCH_VERSION=$TORCH_VERSION" \
        -t "$IMAGE" .
fi

if [ "$WHAT" = all ] || [ "$WHAT" = proxy ]; then
    echo "build: $PROXY_IMAGE from $BASE_IMAGE"
    docker_build -t "$PROXY_IMAGE" deploy/proxy
fi
