#!/usr/bin/env bash
# Benchmark, one setting against another in one run: PgBouncer's server_login_retry at the
# default 15 s versus the lab's 1 s, each through the same switchover scenario (the Rust runner,
# `patroni-lab scenario run switchover`), side by side from the runner's JSON reports.
#   scripts/compare-login-retry.sh [runs per setting]
# The setting is changed in the shared pgbouncer.ini (the callback keeps every line but
# host=/port=, so its RELOAD during the switchover keeps it too) and always put back.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
ini=/etc/pgbouncer/shared/pgbouncer.ini
set_retry() {
    docker exec pgbouncer sed -i "s/^server_login_retry = .*/server_login_retry = $1/" "$ini"
    PGPASSWORD=${POSTGRES_PASSWORD:-postgres} scripts/pg-client.sh psql -h 127.0.0.1 -p 6432 \
        -U "${POSTGRES_USER:-postgres}" -d pgbouncer -qAtc RELOAD >/dev/null
}
trap 'set_retry 1' EXIT
mkdir -p probe-out
cargo build --release -q --bin patroni-lab
for retry in 15 1; do
    set_retry "$retry"
    echo "== server_login_retry = $retry: $runs switchover(s)"
    # Exit 3 (an expectation failed) is a result here, not an error: the 15 s setting fails.
    target/release/patroni-lab scenario run switchover --runs "$runs" \
        --json "probe-out/login-retry-$retry.json" > "probe-out/login-retry-$retry.txt" || [ $? -eq 3 ]
    tail -n 8 "probe-out/login-retry-$retry.txt"
done
python3 - probe-out/login-retry-15.json probe-out/login-retry-1.json <<'PY'
import json, sys
def median(path):
    spread = {s["metric"]: s for s in json.load(open(path))["spreads"]}
    return spread["longest_window_ms"]["median"]
slow, fast = median(sys.argv[1]), median(sys.argv[2])
print(f"median window: server_login_retry=15 {slow:.0f} ms, =1 {fast:.0f} ms, ratio {slow / fast:.1f}x")
PY
