#!/bin/sh
# Writes PgBouncer's userlist with the server's SCRAM secret (read from a node; never the
# password), refreshes the shared pgbouncer.ini from the image's copy (keeping the leader the
# Patroni callback wrote there), then runs PgBouncer on it.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
umask 077
patroni-lab pgbouncer-start
exec /usr/sbin/pgbouncer /etc/pgbouncer/shared/pgbouncer.ini
