#!/usr/bin/env bash
# Waits until a write through HAProxy (LAB_HOST, else LAB_BIND_ADDRESS, port 5432) succeeds. On time-out, prints the
# state and logs of every service that is not healthy, then exits 1.
# Usage: wait-ready.sh COMPOSE... (the compose command, e.g. docker compose)
set -uo pipefail
timeout_s=${LAB_UP_TIMEOUT:-180}
here=$(cd "$(dirname "$0")" && pwd)
bind=${LAB_BIND_ADDRESS:-127.0.0.1}
[ "$bind" = 0.0.0.0 ] && bind=127.0.0.1
host=${LAB_HOST:-$bind}
export PGPASSWORD=${POSTGRES_PASSWORD:-postgres} PGCONNECT_TIMEOUT=3
start=$(date +%s)
sql="CREATE TABLE IF NOT EXISTS lab_ready(at timestamptz); INSERT INTO lab_ready VALUES (now());"
while :; do
    if out=$("$here/pg-client.sh" psql -h "$host" -p 5432 -U "${POSTGRES_USER:-postgres}" -d postgres \
            -v ON_ERROR_STOP=1 -qAtc "$sql" 2>&1); then
        echo "lab is up: a write through $host:5432 succeeded after $(( $(date +%s) - start ))s"
        exit 0
    fi
    if [ $(( $(date +%s) - start )) -ge "$timeout_s" ]; then
        echo "lab did not accept a write through $host:5432 within ${timeout_s}s; last error: $out" >&2
        "$@" ps >&2
        for svc in $("$@" config --services); do
            state=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$svc" 2>/dev/null || echo missing)
            if [ "$state" != "running healthy" ]; then
                echo "---- $svc: $state; last log lines ----" >&2
                docker logs --tail 60 "$svc" >&2 2>&1 || true
            fi
        done
        echo "Try: make doctor (names what is wrong and the repair), make logs, or make clean && make up to start from scratch." >&2
        exit 1
    fi
    sleep 1
done
