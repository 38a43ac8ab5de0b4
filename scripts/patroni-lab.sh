#!/usr/bin/env bash
# Runs patroni-lab the way make does: PATRONI_LAB_BIN when set, else built by the host's cargo
# when there is one (and TOOLS is not 1), else in the tools image (scripts/in-tools.sh), so
# scripts need Docker and make only.
# Usage: patroni-lab.sh ARG...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# A caller with a build of its own names it (the tests run `make switchover` with theirs): no
# second build.
if [ -n "${PATRONI_LAB_BIN:-}" ] && [ -x "$PATRONI_LAB_BIN" ]; then
    exec "$PATRONI_LAB_BIN" "$@"
fi
tools=${TOOLS:-$(command -v cargo >/dev/null && echo 0 || echo 1)}
if [ "$tools" = 1 ]; then
    exec "$here/in-tools.sh" patroni-lab "$@"
fi
exec cargo run --release -q --bin patroni-lab -- "$@"
