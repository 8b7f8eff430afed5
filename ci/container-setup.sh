#!/usr/bin/env bash
# Make this Debian machine able to build and run KV Lens containers; every step is idempotent.
#
#   1. a Docker engine: `apt-get install docker.io` when `dockerd` is missing, and Compose
#      (`docker compose` v2 if present, else Debian's `docker-compose` 1.29);
#   2. a running `dockerd` (started in the background when no daemon answers; left running);
#   3. the base image `$BASE_IMAGE` (default python:3.11-slim): when it is absent locally and
#      cannot be pulled (no registry here), it is built with debootstrap from Debian bookworm,
#      whose python3 is 3.11, and loaded with `docker import`.
#
# Needs root (as on CI). Settings, all optional:
#   BASE_IMAGE       tag of the base image to provide            (python:3.11-slim)
#   DEBIAN_MIRROR    where debootstrap and apt fetch Debian from (http://deb.debian.org/debian)
#   DEBIAN_SECURITY  security updates mirror                     (http://deb.debian.org/debian-security)
#   DOCKERD_LOG      where a dockerd started here writes         (/var/log/dockerd.log)
#   KV_LENS_TRY_PULL=1  try `docker pull $BASE_IMAGE` before debootstrap (hosts with a registry)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}

say() { echo "container-setup: $*"; }

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "$@" >/dev/null
}

# 1. The engine and Compose.
if ! command -v dockerd >/dev/null 2>&1; then
    say "installing docker.io"
    apt_install docker.io
fi
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    say "installing docker-compose"
    apt_install docker-compose
fi

# 2. A running daemon.
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    docker info >/dev/null 2>&1 || { say "dockerd did not answer; see $DOCKERD_LOG"; exit 1; }
fi

# 3. The base image.
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "base image $BASE_IMAGE present"
    exit 0
fi
if [ "${KV_LENS_TRY_PULL:-}" = 1 ] && timeout 300 docker pull "$BASE_IMAGE"; then
    exit 0
fi

command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
say "building $BASE_IMAGE from Debian bookworm with debootstrap (a few minutes)"
ROOTFS=$(mktemp -d /var/tmp/kv-lens-base.XXXXXX)
cleanup() {
    umount "$ROOTFS/proc" 2>/dev/null || true
    rm -rf --one-file-system "$ROOTFS" "$ROOTFS.log"
}
trap cleanup EXIT

LOG="$ROOTFS.log"
fail() { say "failed; the last lines of $LOG:"; tail -30 "$LOG"; exit 1; }
debootstrap --variant=minbase bookworm "$ROOTFS" "$DEBIAN_MIRROR" >"$LOG" 2>&1 || fail
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb $DEBIAN_SECURITY bookworm-security main
EOF
mount -t proc proc "$ROOTFS/proc"
chroot "$ROOTFS" /bin/sh -c '
    set -e
    export DEBIAN_FRONTEND=noninteractive
    echo "APT::Sandbox::User \"root\";" >/etc/apt/apt.conf.d/00kv-lens-sandbox
    apt-get update -qq
    apt-get upgrade -y -qq >/dev/null
    apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates >/dev/null
    ln -sf /usr/bin/python3 /usr/local/bin/python
    rm /etc/apt/apt.conf.d/00kv-lens-sandbox
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/* /tmp/*
' >>"$LOG" 2>&1 || fail
umount "$ROOTFS/proc"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "Debian bookworm minbase + python3 (3.11), made by ci/container-setup.sh" \
    - "$BASE_IMAGE" >/dev/null
say "base image $BASE_IMAGE built: $(docker run --rm "$BASE_IMAGE" python3 --version)"
