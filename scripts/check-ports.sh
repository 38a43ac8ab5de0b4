#!/usr/bin/env bash
# Before `make up` builds or starts anything: is a port the lab publishes already taken by
# another program? Reads the published ports from the compose files (COMPOSE_FILE, as make
# sets it), each with the variable that sets its address (LAB_BIND_ADDRESS, ETCD_BIND_ADDRESS).
# A port this lab's own container already publishes is fine (`make up` on a running lab).
# Prints one line naming the first taken port, its service and the variable, or nothing.
# Usage: check-ports.sh (LAB_BIND_ADDRESS, ETCD_BIND_ADDRESS and COMPOSE_FILE from the environment)
set -uo pipefail
cd "$(dirname "$0")/.."

# "${VAR:-default}:published:target" in a service's ports list.
published='"\$\{([A-Z_]+):-([^}]*)\}:([0-9]+):([0-9]+)"'
IFS=: read -r -a files <<< "${COMPOSE_FILE:-docker-compose.yml}"
for file in "${files[@]}"; do
    service=
    while IFS= read -r line; do
        if [[ $line =~ ^\ \ ([A-Za-z0-9_.-]+):[[:space:]]*$ ]]; then
            service=${BASH_REMATCH[1]}
        fi
        [[ $line =~ $published ]] || continue
        var=${BASH_REMATCH[1]} default=${BASH_REMATCH[2]} port=${BASH_REMATCH[3]} target=${BASH_REMATCH[4]}
        address=${!var:-$default}
        # This lab's container publishing it already: not a conflict.
        if docker port "$service" "$target/tcp" 2>/dev/null | grep -qxF "$address:$port"; then
            continue
        fi
        reach=$address
        [ "$address" = 0.0.0.0 ] && reach=127.0.0.1
        if timeout 1 bash -c "exec 3<>/dev/tcp/$reach/$port" 2>/dev/null; then
            echo "port $port on $address ($service's) is already in use by another program: stop it, or set $var in .env to another address (another loopback address such as 127.0.0.2 works)"
            exit 0
        fi
    done < "$file"
done
