#!/usr/bin/env bash
# Benchmark: the paused switchover against the plain one, side by side in one run, in both
# probe modes. For each mode: RUNS plain switchovers, then RUNS paused ones (the scenario
# runner, `patroni-lab scenario run`), and from their JSON reports: the plain switchover's
# median/p95 window, the paused one's median/p95 stall, and the failed / in-doubt writes.
# patroni-lab runs as make runs it (host cargo, else the tools image: scripts/patroni-lab.sh).
#   scripts/bench-paused-switchover.sh [runs per cell, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
mkdir -p probe-out
for mode in per-tx persistent; do
    for scenario in switchover switchover-paused; do
        echo "== $scenario, $mode, $runs runs" >&2
        # Exit 3 (an expectation failed) is a result to report here, not an error.
        scripts/patroni-lab.sh scenario run "$scenario" --mode "$mode" --runs "$runs" --tail 1s \
            --json "probe-out/bench-$scenario-$mode.json" > "probe-out/bench-$scenario-$mode.txt" || [ $? -eq 3 ]
    done
done
python3 - "$runs" <<'PY'
import json, statistics, sys
runs = int(sys.argv[1])
def load(s, m):
    return json.load(open(f"probe-out/bench-{s}-{m}.json"))["runs"]
def pct(v, q):
    v = sorted(v); return v[max(0, -(-int(q * len(v) * 100) // 100) - 1)] if v else float("nan")
print(f"paused vs plain switchover, {runs} runs each, 4 clients (this machine)")
print(f"{'mode':<11} {'plain window median/p95 ms':>27} {'plain failed+in doubt':>22} {'paused stall median/p95 ms':>27} {'paused failed':>14} {'paused in doubt':>16}")
for m in ["per-tx", "persistent"]:
    plain, paused = load("switchover", m), load("switchover-paused", m)
    w = [r["probe"]["longest_window_ms"] for r in plain]
    pe = sum(r["probe"]["totals"]["failed"] + r["probe"]["totals"]["in_doubt"] for r in plain)
    st = [max([s["duration_ms"] for s in r["probe"]["stalls"]] or [0]) for r in paused]
    pf = sum(r["probe"]["totals"]["failed"] for r in paused)
    pd = sum(r["probe"]["totals"]["in_doubt"] for r in paused)
    print(f"{m:<11} {statistics.median(w):>15.0f} / {pct(w, .95):<9.0f} {pe:>22} {statistics.median(st):>15.0f} / {pct(st, .95):<9.0f} {pf:>14} {pd:>16}")
PY
