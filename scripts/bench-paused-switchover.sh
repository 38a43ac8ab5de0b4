#!/usr/bin/env bash
# Benchmark: the paused switchover against the plain one, side by side in one run, in both
# probe modes. For each mode: RUNS plain switchovers, then RUNS paused ones (the scenario
# runner, `patroni-lab scenario run`), and from their JSON reports (`patroni-lab bench
# paused-switchover`): the plain switchover's median/p95 window, the paused one's median/p95
# stall, and the failed / in-doubt writes.
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
scripts/patroni-lab.sh bench paused-switchover --runs "$runs" --dir probe-out
