#!/usr/bin/env bash
# Benchmark: what one client login costs PgBouncer. pgbench -C (a new connection per
# transaction, SELECT 1, no TLS) through PgBouncer (6432) with its userlist as the lab keeps it
# (the server's SCRAM secret) and, for comparison, with the password in plain text (the old
# userlist: PgBouncer then derives the SCRAM key, 4096 rounds of PBKDF2, for every login), and
# directly against the leader's PostgreSQL, alternating for ROUNDS rounds (3); prints logins/s
# and PgBouncer's CPU per login (from /proc/1/stat in its container) per round, then medians
# (`patroni-lab bench login-cost`).
# The plain-text userlist exists only inside the container while its rounds run; the SCRAM
# one is put back on any exit.
#   [ROUNDS=3] scripts/bench-login-cost.sh [clients] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-4}
seconds=${2:-15}
rounds=${ROUNDS:-3}
user=${POSTGRES_USER:-postgres}
export PGPASSWORD=${POSTGRES_PASSWORD:-postgres} PGSSLMODE=disable
userlist=/etc/pgbouncer/userlist.txt
leader_port=$(for p in 15432 15433; do
    r=$(scripts/pg-client.sh psql -h 127.0.0.1 -p "$p" -U "$user" -d postgres -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null || true)
    [ "$r" = f ] && echo "$p" && break
done)
[ -n "$leader_port" ] || { echo "no leader answers on 15432/15433: is the lab up (make up)?" >&2; exit 1; }

admin() { scripts/pg-client.sh psql -h 127.0.0.1 -p 6432 -U "$user" -d pgbouncer -qAtc "$1" >/dev/null; }
docker exec pgbouncer cp -p "$userlist" "$userlist.scram"
put_back() {
    docker exec pgbouncer sh -c "mv -f $userlist.scram $userlist" && admin RELOAD || true
}
trap put_back EXIT
use_scram() { docker exec pgbouncer sh -c "cp -p $userlist.scram $userlist"; admin RELOAD; }
use_plain() {
    docker exec -e PW="$PGPASSWORD" -e U="$user" pgbouncer sh -c "umask 077; printf '\"%s\" \"%s\"\n' \"\$U\" \"\$PW\" > $userlist"
    admin RELOAD
}
cpu_ticks() { docker exec pgbouncer awk '{print $14 + $15}' /proc/1/stat; }
script=$(mktemp)
echo 'SELECT 1;' > "$script"
run() { # port -> "logins/s pgbouncer-ticks"
    local before after out
    before=$(cpu_ticks)
    out=$(scripts/pg-client.sh pgbench -n -C -c "$clients" -j "$clients" -T "$seconds" -f /dev/stdin \
        -h 127.0.0.1 -p "$1" -U "$user" postgres < "$script" 2>&1)
    after=$(cpu_ticks)
    local tps; tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<< "$out")
    [ -n "$tps" ] || { echo "pgbench failed: $out" >&2; return 1; }
    echo "$tps $((after - before))"
}
hz=$(docker exec pgbouncer getconf CLK_TCK)
results=()
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
        use_scram; s=$(run 6432); use_plain; p=$(run 6432); order="secret first"
    else
        use_plain; p=$(run 6432); use_scram; s=$(run 6432); order="plain first"
    fi
    d=$(run "$leader_port")
    results+=("$round|$order|$s|$p|$d")
done
use_scram
rm -f "$script"
scripts/patroni-lab.sh bench login-cost --clients "$clients" --seconds "$seconds" --hz "$hz" \
    --leader-port "$leader_port" "${results[@]}"
