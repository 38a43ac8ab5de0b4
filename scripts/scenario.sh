#!/usr/bin/env bash
# One-command fault scenarios with the probe running through them:
#   scenario.sh switchover|stop-leader|kill-leader [runs]
# Each run: wait for a whole cluster, start the probe (4 clients, connection per transaction),
# inject the fault after 5 s, restore it (start the stopped node, wait until it streams), and
# keep the probe's JSON and HTML reports in probe-out/. Ends with the median window, cut-over
# gap and errors over the runs. Faults are undone even when a run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: scenario.sh switchover|stop-leader|kill-leader [runs]}
runs=${2:-1}
case "$scenario" in
    switchover|stop-leader) duration=30s ;;
    kill-leader) duration=75s ;;
    *) echo "unknown scenario '$scenario': use switchover, stop-leader or kill-leader" >&2; exit 2 ;;
esac
compose() { if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi; }
api() { curl -fsS "http://127.0.0.1:$1/cluster" 2>/dev/null || true; }
leader() {
    for port in 8008 8009; do
        name=$(api "$port" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(next((m["name"] for m in d["members"] if m["role"]=="leader" and m["state"]=="running"), ""))' 2>/dev/null || true)
        if [ -n "$name" ]; then echo "$name"; return; fi
    done
}
whole() {
    for _ in $(seq 1 240); do
        n=$(api 8008 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for m in d["members"] if m["state"] in ("running","streaming")))' 2>/dev/null || echo 0)
        [ "$n" = 2 ] && [ -n "$(leader)" ] && return 0
        sleep 0.5
    done
    echo "the cluster is not whole (two running members and a leader): make up, make list" >&2
    return 1
}
stopped=""
restore() { if [ -n "$stopped" ]; then compose start "$stopped" >/dev/null 2>&1 || true; stopped=""; fi; }
trap restore EXIT

mkdir -p probe-out
reports=()
worst=0
for run in $(seq 1 "$runs"); do
    whole
    old=$(leader)
    stamp="$scenario-$(date +%Y%m%d-%H%M%S)-$run"
    scripts/probe.sh --quiet -c 4 -T "$duration" --json "$stamp.json" --html "$stamp.html" > "probe-out/$stamp.txt" 2>&1 &
    probe=$!
    sleep 5
    case "$scenario" in
        switchover) make --no-print-directory switchover >/dev/null ;;
        stop-leader) stopped=$old; compose stop "$old" >/dev/null 2>&1 ;;
        kill-leader) stopped=$old; docker kill -s KILL "$old" >/dev/null ;;
    esac
    code=0
    wait "$probe" || code=$?
    restore
    echo "run $run ($scenario of $old): probe exit $code"
    sed 's/^/  /' "probe-out/$stamp.txt"
    reports+=("probe-out/$stamp.json")
    # Precedence as the probe's own: 3 (limits exceeded) over 4 (not checked) over others.
    case "$worst:$code" in
        3:*|*:0) ;;
        *:3|0:*) worst=$code ;;
    esac
done
whole
python3 - "${reports[@]}" <<'PY'
import json, statistics, sys
rows = [json.load(open(p)) for p in sys.argv[1:]]
def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")
windows = [r["longest_window_ms"] for r in rows]
gaps = [r["cutovers"][0]["gap_ms"] if r["cutovers"] else None for r in rows]
errors = [r["totals"]["failed"] + r["totals"]["in_doubt"] for r in rows]
# A check that did not run is "not checked", never 0 lost.
lost = [len(r["lost_writes"]["missing"]) if r["lost_writes"]["checked"] else "not checked" for r in rows]
print(f"{len(rows)} run(s): longest window ms {[round(w) for w in windows]} median {med(windows):.0f}; "
      f"cut-over gap ms {[round(g) if g is not None else None for g in gaps]} median {med(gaps):.0f}; "
      f"failed+in doubt {errors}; lost writes {lost}")
PY
# The probe exit code that matters most over the runs (README, "Exit codes").
exit "$worst"
