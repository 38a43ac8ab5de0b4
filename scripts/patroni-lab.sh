#!/usr/bin/env bash
# Runs patroni-lab the way make does: built by the host's cargo when there is one (and TOOLS is
# not 1), else in the tools image (scripts/in-tools.sh), so scripts need Docker and make only.
# Usage: patroni-lab.sh ARG...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${TOOLS:-$(command -v cargo >/dev/null && echo 0 || echo 1)}
if [ "$tools" = 1 ]; then
    exec "$here/in-tools.sh" patroni-lab "$@"
fi
exec cargo run --release -q --bin patroni-lab -- "$@"
