#!/usr/bin/env bash
# Benchmark: is the probe ever the bottleneck? Runs pgbench -C and the probe in
# connection-per-transaction mode against the same endpoint, with the same clients, the same
# statement (one INSERT ... RETURNING of the server's identity), the same duration and no TLS,
# one after the other in alternating order for ROUNDS rounds (3), and prints each round's
# throughput, CPU time and ratio probe/pgbench, then the median ratio (`patroni-lab bench
# probe-vs-pgbench`).
#   [ROUNDS=3] scripts/bench-probe-vs-pgbench.sh [port] [clients] [seconds]
# Both programs run in one container of the patroni image (its pgbench, and the patroni-lab
# `make build` built from this checkout), on the host network, each timed by bash there: the
# CPU time is each program's own. The host needs Docker and make only.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-5432}
clients=${2:-4}
seconds=${3:-20}
rounds=${ROUNDS:-3}
image=patroni-lab/patroni:latest
docker image inspect "$image" >/dev/null 2>&1 || { echo "the image $image is missing: run make build" >&2; exit 1; }
mapfile -t results < <(docker run --rm -i --network host \
    -e PGPASSWORD="${POSTGRES_PASSWORD:-postgres}" -e PGUSER="${POSTGRES_USER:-postgres}" \
    -e PORT="$port" -e CLIENTS="$clients" -e SECS="$seconds" -e ROUNDS="$rounds" \
    --entrypoint bash "$image" -s <<'IN'
set -euo pipefail
url="postgres://$PGUSER@127.0.0.1:$PORT/postgres"
# The probe makes its table; pgbench then inserts into the same one, under its own run_id.
patroni-lab probe --quiet --url "$url" -c 1 -T 1s --table probe_bench >/dev/null
script=$(mktemp)
cat > "$script" <<SQL
\set seq random(1, 9000000000000000)
INSERT INTO probe_bench (run_id, client_id, seq, client_time) VALUES ('pgbench-$$', :client_id, :seq, now()) RETURNING host(inet_server_addr()), inet_server_port(), pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END;
SQL
TIMEFORMAT='%U %S'
# Like the probe (NoTls), pgbench must not pay libpq's sslmode=prefer round trip.
export PGSSLMODE=disable
run_pgbench() {
    local out; out=$(mktemp)
    local cpu; cpu=$( { time pgbench -n -C -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -f "$script" -h 127.0.0.1 -p "$PORT" postgres > "$out" 2>&1; } 2>&1 )
    local tps; tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out")
    [ -n "$tps" ] || { echo "pgbench failed:" >&2; cat "$out" >&2; return 1; }
    echo "$tps $cpu"
}
run_probe() {
    local out; out=$(mktemp)
    local cpu; cpu=$( { time patroni-lab probe --quiet --no-lost-check --url "$url" -c "$CLIENTS" -T "${SECS}s" --table probe_bench > "$out" 2>&1; } 2>&1 )
    local tps; tps=$(sed -n 's/.*throughput \([0-9.]*\) ok\/s.*/\1/p' "$out")
    [ -n "$tps" ] || { echo "probe failed:" >&2; cat "$out" >&2; return 1; }
    echo "$tps $cpu"
}
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    # Alternate which one goes first, so neither always runs on a warmer cache.
    if [ $((round % 2)) -eq 1 ]; then
        pg=$(run_pgbench); pr=$(run_probe); order="pgbench first"
    else
        pr=$(run_probe); pg=$(run_pgbench); order="probe first"
    fi
    echo "$round|$order|$pg|$pr"
done
IN
)
[ "${#results[@]}" -eq "$rounds" ] || { echo "bench-probe-vs-pgbench: ${#results[@]} of $rounds rounds ran (above)" >&2; exit 1; }
scripts/patroni-lab.sh bench probe-vs-pgbench --port "$port" --clients "$clients" --seconds "$seconds" "${results[@]}"
