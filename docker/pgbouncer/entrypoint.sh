#!/bin/sh
# Writes PgBouncer's userlist from the container's variables, refreshes the shared
# pgbouncer.ini from the image's copy (keeping the leader the Patroni callback wrote there),
# then runs PgBouncer on it.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
umask 077
printf '"%s" "%s"\n' "${POSTGRES_USER:-postgres}" "$POSTGRES_PASSWORD" > /etc/pgbouncer/userlist.txt
# The shared pgbouncer.ini from this image's copy, keeping the leader the callback wrote.
patroni-lab pgbouncer-start
exec /usr/sbin/pgbouncer /etc/pgbouncer/shared/pgbouncer.ini
