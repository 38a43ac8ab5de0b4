#!/bin/sh
# Writes PgBouncer's userlist from the container's variables, then runs PgBouncer on the
# shared pgbouncer.ini (the copy on the volume, which the Patroni callback keeps current).
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
umask 077
printf '"%s" "%s"\n' "${POSTGRES_USER:-postgres}" "$POSTGRES_PASSWORD" > /etc/pgbouncer/userlist.txt
exec /usr/sbin/pgbouncer /etc/pgbouncer/shared/pgbouncer.ini
