#!/usr/bin/env bash
# Benchmark: is the probe ever the bottleneck? Runs pgbench -C and the probe in
# connection-per-transaction mode against the same endpoint, with the same clients, the same
# statement (one INSERT ... RETURNING of the server's identity) and the same duration, one after
# the other, and prints each one's throughput, CPU time, and the ratio probe/pgbench.
#   scripts/bench-probe-vs-pgbench.sh [port] [clients] [seconds]
# Needs pgbench and cargo on the host (CPU time is measured on host processes).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-5432}
clients=${2:-4}
seconds=${3:-20}
export PGPASSWORD=${POSTGRES_PASSWORD:-postgres}
command -v pgbench >/dev/null || { echo "pgbench is not on this host: apt-get install postgresql-client" >&2; exit 1; }
cargo build --release --quiet --bin patroni-lab
probe=target/release/patroni-lab
conn=(-h 127.0.0.1 -p "$port" -U postgres)

# The probe makes its table; pgbench then inserts into the same one, under its own run_id.
"$probe" probe --quiet --url "postgres://postgres@127.0.0.1:$port/postgres" -c 1 -T 1s --table probe_bench >/dev/null
script=$(mktemp)
cat > "$script" <<SQL
\set seq random(1, 9000000000000000)
INSERT INTO probe_bench (run_id, client_id, seq, client_time) VALUES ('pgbench-$$', :client_id, :seq, now()) RETURNING host(inet_server_addr()), inet_server_port(), pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END;
SQL

TIMEFORMAT='%U %S'
pgbench_out=$(mktemp); probe_out=$(mktemp)
pg_cpu=$( { time pgbench -n -C -c "$clients" -j "$clients" -T "$seconds" -f "$script" "${conn[@]}" postgres > "$pgbench_out" 2>&1; } 2>&1 )
pg_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$pgbench_out")
probe_cpu=$( { time "$probe" probe --quiet --url "postgres://postgres@127.0.0.1:$port/postgres" -c "$clients" -T "${seconds}s" --table probe_bench > "$probe_out" 2>&1; } 2>&1 )
probe_tps=$(sed -n 's/.*throughput \([0-9.]*\) ok\/s.*/\1/p' "$probe_out")
rm -f "$script"
[ -n "$pg_tps" ] || { echo "pgbench failed:"; cat "$pgbench_out"; exit 1; }
[ -n "$probe_tps" ] || { echo "probe failed:"; cat "$probe_out"; exit 1; }
python3 - "$pg_tps" "$probe_tps" "$pg_cpu" "$probe_cpu" "$port" "$clients" "$seconds" <<'PY'
import sys
pg_tps, probe_tps = float(sys.argv[1]), float(sys.argv[2])
pg_cpu = sum(map(float, sys.argv[3].split())); probe_cpu = sum(map(float, sys.argv[4].split()))
port, clients, seconds = sys.argv[5:8]
print(f"endpoint 127.0.0.1:{port}, {clients} clients, {seconds} s each, new connection per transaction")
print(f"  pgbench -C : {pg_tps:8.1f} tx/s   CPU {pg_cpu:6.2f} s  ({1000*pg_cpu/(pg_tps*float(seconds)):.2f} ms per tx)")
print(f"  probe      : {probe_tps:8.1f} tx/s   CPU {probe_cpu:6.2f} s  ({1000*probe_cpu/(probe_tps*float(seconds)):.2f} ms per tx)")
print(f"  ratio probe/pgbench: throughput {probe_tps/pg_tps:.2f}, CPU per tx {(probe_cpu/probe_tps)/(pg_cpu/pg_tps):.2f}")
PY
rm -f "$pgbench_out" "$probe_out"
