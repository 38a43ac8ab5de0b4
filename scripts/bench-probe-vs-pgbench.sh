#!/usr/bin/env bash
# Benchmark: is the probe ever the bottleneck? Runs pgbench -C and the probe in
# connection-per-transaction mode against the same endpoint, with the same clients, the same
# statement (one INSERT ... RETURNING of the server's identity), the same duration and no TLS,
# one after the other in alternating order for ROUNDS rounds (3), and prints each round's
# throughput, CPU time and ratio probe/pgbench, then the median ratio.
#   [ROUNDS=3] scripts/bench-probe-vs-pgbench.sh [port] [clients] [seconds]
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
# Like the probe (NoTls), pgbench must not pay libpq's sslmode=prefer round trip.
export PGSSLMODE=disable
rounds=${ROUNDS:-3}
run_pgbench() {
    local out; out=$(mktemp)
    local cpu; cpu=$( { time pgbench -n -C -c "$clients" -j "$clients" -T "$seconds" -f "$script" "${conn[@]}" postgres > "$out" 2>&1; } 2>&1 )
    local tps; tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out")
    [ -n "$tps" ] || { echo "pgbench failed:" >&2; cat "$out" >&2; rm -f "$out"; return 1; }
    rm -f "$out"; echo "$tps $cpu"
}
run_probe() {
    local out; out=$(mktemp)
    local cpu; cpu=$( { time "$probe" probe --quiet --no-lost-check --url "postgres://postgres@127.0.0.1:$port/postgres" -c "$clients" -T "${seconds}s" --table probe_bench > "$out" 2>&1; } 2>&1 )
    local tps; tps=$(sed -n 's/.*throughput \([0-9.]*\) ok\/s.*/\1/p' "$out")
    [ -n "$tps" ] || { echo "probe failed:" >&2; cat "$out" >&2; rm -f "$out"; return 1; }
    rm -f "$out"; echo "$tps $cpu"
}
results=()
for round in $(seq 1 "$rounds"); do
    # Alternate which one goes first, so neither always runs on a warmer cache.
    if [ $((round % 2)) -eq 1 ]; then
        pg=$(run_pgbench); pr=$(run_probe); order="pgbench first"
    else
        pr=$(run_probe); pg=$(run_pgbench); order="probe first"
    fi
    results+=("$round|$order|$pg|$pr")
done
rm -f "$script"
python3 - "$port" "$clients" "$seconds" "${results[@]}" <<'PY'
import statistics, sys
port, clients, seconds = sys.argv[1:4]
secs = float(seconds)
print(f"endpoint 127.0.0.1:{port}, {clients} clients, {seconds} s each, new connection per transaction, sslmode=disable for both")
ratios, cpu_ratios = [], []
for row in sys.argv[4:]:
    rnd, order, pg, pr = row.split("|")
    pg_tps, pg_u, pg_s = map(float, pg.split()); pr_tps, pr_u, pr_s = map(float, pr.split())
    pg_cpu, pr_cpu = pg_u + pg_s, pr_u + pr_s
    ratio = pr_tps / pg_tps; cpu_ratio = (pr_cpu / pr_tps) / (pg_cpu / pg_tps)
    ratios.append(ratio); cpu_ratios.append(cpu_ratio)
    print(f"  round {rnd} ({order}): pgbench -C {pg_tps:7.1f} tx/s ({1000*pg_cpu/(pg_tps*secs):.2f} ms CPU/tx)   "
          f"probe {pr_tps:7.1f} tx/s ({1000*pr_cpu/(pr_tps*secs):.2f} ms CPU/tx)   ratio {ratio:.2f}")
print(f"median ratio probe/pgbench over {len(ratios)} rounds: throughput {statistics.median(ratios):.2f}, "
      f"CPU per tx {statistics.median(cpu_ratios):.2f}")
PY
