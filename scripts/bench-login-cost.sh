#!/usr/bin/env bash
# Benchmark: what one client login costs PgBouncer. pgbench -C (a new connection per
# transaction, SELECT 1, no TLS) through PgBouncer (6432) with its userlist as the lab keeps it
# (the server's SCRAM secret) and, for comparison, with the password in plain text (the old
# userlist: PgBouncer then derives the SCRAM key, 4096 rounds of PBKDF2, for every login), and
# directly against the leader's PostgreSQL, alternating for ROUNDS rounds (3); prints logins/s
# and PgBouncer's CPU per login (from /proc/1/stat in its container) per round, then medians.
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
python3 - "$clients" "$seconds" "$hz" "$leader_port" "${results[@]}" <<'PY'
import statistics, sys
clients, seconds, hz, leader = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(f"pgbench -C, SELECT 1, {clients} clients, {seconds:.0f} s each; direct = the leader on 127.0.0.1:{leader}")
def per_login_ms(tps, ticks):
    return 1000.0 * ticks / hz / (tps * seconds)
rows = {"secret": [], "plain": [], "direct": [], "cpu_secret": [], "cpu_plain": []}
for row in sys.argv[5:]:
    rnd, order, s, p, d = row.split("|")
    (s_tps, s_t), (p_tps, p_t), (d_tps, _) = [tuple(map(float, x.split())) for x in (s, p, d)]
    cs, cp = per_login_ms(s_tps, s_t), per_login_ms(p_tps, p_t)
    rows["secret"].append(s_tps); rows["plain"].append(p_tps); rows["direct"].append(d_tps)
    rows["cpu_secret"].append(cs); rows["cpu_plain"].append(cp)
    print(f"  round {rnd} ({order}): 6432 secret {s_tps:6.1f}/s ({cs:.2f} ms PgBouncer CPU/login)   "
          f"6432 plain {p_tps:6.1f}/s ({cp:.2f} ms)   direct {d_tps:6.1f}/s")
m = {k: statistics.median(v) for k, v in rows.items()}
print(f"median over {len(sys.argv) - 5} rounds: PgBouncer CPU per login {m['cpu_secret']:.2f} ms with the secret, "
      f"{m['cpu_plain']:.2f} ms with the password ({m['cpu_plain'] / m['cpu_secret']:.1f}x); logins/s through 6432 "
      f"{m['secret']:.0f} vs {m['plain']:.0f}; direct {m['direct']:.0f} (6432/direct {m['secret'] / m['direct']:.2f})")
PY
