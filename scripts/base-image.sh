#!/usr/bin/env bash
# Prints the base image for docker/Dockerfile, making it when it has to.
#
# 1. debian:trixie-slim when Docker has it or can pull it (the usual case, Docker Hub);
# 2. otherwise patroni-lab/debian:trixie-slim, made here once from Debian's packages:
#    debootstrap a minimal trixie root file system and `docker import` it. Cached: later
#    builds reuse the image. The Dockerfile is the same for both.
# Progress goes to stderr; stdout is only the image name.
set -euo pipefail

upstream=debian:trixie-slim
local_image=patroni-lab/debian:trixie-slim
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$upstream"; then echo "$upstream"; exit 0; fi
if have "$local_image"; then echo "$local_image"; exit 0; fi
if timeout 60 docker pull -q "$upstream" >/dev/null 2>&1; then echo "$upstream"; exit 0; fi

echo "base-image: cannot pull $upstream; making $local_image with debootstrap from $mirror" >&2
if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "base-image: debootstrap is missing: install it (apt-get install debootstrap) or run as root" >&2
        exit 1
    fi
    echo "base-image: installing debootstrap" >&2
    { apt-get update -qq && apt-get install -y -qq debootstrap; } >&2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "base-image: debootstrap needs root: run 'sudo make build' once, or docker pull $upstream" >&2
    exit 1
fi
root=$(mktemp -d /tmp/patroni-lab-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase trixie "$root" "$mirror" >&2
# Slim like the official image: no apt caches, no docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$local_image" >&2
echo "$local_image"
