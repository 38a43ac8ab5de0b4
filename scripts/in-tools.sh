#!/usr/bin/env bash
# Runs a command in the tools image (patroni-lab/tools: cargo, the patroni-lab binary, the Docker
# CLI with Compose v2), for a host that has Docker and make and nothing else. The container uses
# the host's network (127.0.0.1:5432 and the REST ports are the same as on the host) and the
# host's Docker socket (faults reach the lab's containers), runs as the calling user, and sees
# this checkout at the same path (compose files, .env, reports in probe-out/, logs in lab-logs/).
# Builds go to target/tools/, apart from a host toolchain's target/ (the first one seeded with
# the image's build of the dependencies).
# Usage: in-tools.sh COMMAND [ARG...]
set -euo pipefail
image=patroni-lab/tools:latest
if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "the tools image $image is missing: run make tools (or make build)" >&2
    exit 1
fi
socket=/var/run/docker.sock
if [ ! -S "$socket" ]; then
    echo "no Docker socket at $socket: the tools container needs it to reach the lab" >&2
    exit 1
fi
tty=()
if [ -t 0 ] && [ -t 1 ]; then tty=(-t); fi
env_args=()
for var in $(compgen -e | grep -E '^(POSTGRES_|REPLICATION_|PATRONI_|PGBOUNCER_|LAB_|COMPOSE_|PROBE_)'); do
    env_args+=(-e "$var")
done
# cargo in a checkout with no target/tools/ yet starts from the image's own build of the
# dependencies (CARGO_TARGET_SEED, made with the image), copied with its timestamps so cargo
# finds it fresh.
seed='if [ "$1" = cargo ] && [ -n "${CARGO_TARGET_SEED:-}" ] && [ -d "$CARGO_TARGET_SEED" ] \
  && [ ! -e "$CARGO_TARGET_DIR" ]; then
    rm -rf "$CARGO_TARGET_DIR.part" && mkdir -p "$(dirname "$CARGO_TARGET_DIR")" \
      && cp -r --preserve=timestamps "$CARGO_TARGET_SEED" "$CARGO_TARGET_DIR.part" \
      && mv "$CARGO_TARGET_DIR.part" "$CARGO_TARGET_DIR"
  fi; exec "$@"'
exec docker run --rm -i "${tty[@]}" --init --network host \
    --user "$(id -u):$(id -g)" --group-add "$(stat -c %g "$socket")" \
    -v "$socket:$socket" -v "$PWD:$PWD" -w "$PWD" \
    -e HOME=/tmp -e CARGO_TARGET_DIR="$PWD/target/tools" "${env_args[@]}" \
    "$image" sh -c "$seed" sh "$@"
