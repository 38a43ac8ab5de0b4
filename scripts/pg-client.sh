#!/usr/bin/env bash
# Runs a PostgreSQL client program (psql, pgbench, pg_isready) against the published ports:
# the host's own when it has one, otherwise the one in the patroni image, on the host network,
# so nothing has to be installed on the host. Usage: pg-client.sh psql -h 127.0.0.1 ...
set -euo pipefail
program=$1
shift
if command -v "$program" >/dev/null 2>&1 && [ -z "${PG_CLIENT_IN_DOCKER:-}" ]; then
    exec "$program" "$@"
fi
tty=()
if [ -t 0 ] && [ -t 1 ]; then tty=(-t); fi
exec docker run --rm -i "${tty[@]}" --network host \
    -e PGPASSWORD -e PGUSER -e PGDATABASE -e PGCONNECT_TIMEOUT -e PGAPPNAME \
    --entrypoint "$program" patroni-lab/patroni:latest "$@"
