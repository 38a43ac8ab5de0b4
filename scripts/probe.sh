#!/usr/bin/env bash
# Runs `patroni-lab probe` from the patroni image in a container on the lab's network, so it
# needs nothing on the host but Docker. Without --url it probes HAProxy (haproxy:5432, the same
# path as a client of 127.0.0.1:5432 minus Docker's port publishing). Reports given as relative
# paths (--json report.json) land in ./probe-out/. PROBE_CONTAINER names the container (so that
# `docker stop` can reach it; the probe, PID 1 there, ends early on SIGTERM and still reports).
set -euo pipefail
mkdir -p probe-out
network=${COMPOSE_PROJECT_NAME:-patroni-lab}_lab
if ! docker network inspect "$network" >/dev/null 2>&1; then
    echo "probe: the lab's network $network does not exist: run make up first" >&2
    exit 1
fi
url=(--url "postgres://${POSTGRES_USER:-postgres}@haproxy:5432/postgres")
for arg in "$@"; do
    case "$arg" in --url|--url=*) url=() ;; esac
done
tty=()
if [ -t 0 ] && [ -t 1 ]; then tty=(-t); fi
name=(--name "${PROBE_CONTAINER:-patroni-lab-probe-$$}")
exec docker run --rm -i "${tty[@]}" "${name[@]}" --network "$network" --user "$(id -u):$(id -g)" \
    -v "$PWD/probe-out:/out" -w /out -e PGPASSWORD="${POSTGRES_PASSWORD:-postgres}" \
    --entrypoint patroni-lab patroni-lab/patroni:latest probe "${url[@]}" "$@"
