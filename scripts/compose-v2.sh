#!/usr/bin/env bash
# Installs Docker Compose v2 as a CLI plugin for this user (~/.docker/cli-plugins), taken from
# Debian's docker-compose package in the tools image, so no registry or download is needed.
# Does nothing when `docker compose` already answers. Usage: compose-v2.sh (after make tools)
set -euo pipefail
if docker compose version >/dev/null 2>&1; then
    echo "already there: $(docker compose version)"
    exit 0
fi
image=patroni-lab/tools:latest
if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "the tools image $image is missing: run make tools first" >&2
    exit 1
fi
dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
mkdir -p "$dir"
docker run --rm --entrypoint cat "$image" /usr/libexec/docker/cli-plugins/docker-compose \
    > "$dir/docker-compose.tmp"
chmod 0755 "$dir/docker-compose.tmp"
mv "$dir/docker-compose.tmp" "$dir/docker-compose"
echo "installed $dir/docker-compose: $(docker compose version)"
