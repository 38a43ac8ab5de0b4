#!/usr/bin/env bash
# Runs `patroni-lab probe` from the patroni image on the host network, so it reaches the
# published ports (127.0.0.1:5432 by default) with nothing installed on the host. Reports
# given as relative paths (--json report.json) land in ./probe-out/.
set -euo pipefail
mkdir -p probe-out
tty=()
if [ -t 0 ] && [ -t 1 ]; then tty=(-t); fi
exec docker run --rm -i "${tty[@]}" --network host --user "$(id -u):$(id -g)" \
    -v "$PWD/probe-out:/out" -w /out -e PGPASSWORD="${POSTGRES_PASSWORD:-postgres}" \
    --entrypoint patroni-lab patroni-lab/patroni:latest probe "$@"
