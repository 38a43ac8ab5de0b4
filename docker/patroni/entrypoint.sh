#!/bin/bash
# Renders /etc/patroni/patroni.yml from the container's variables, then runs Patroni.
# Patroni itself only reads PATRONI_* variables and never expands ${VAR} in its file, so the
# file is written here, once per start, and patronictl inside the container reads the same file.
set -euo pipefail

: "${NODE_NAME:?NODE_NAME must name this member (patroni1, patroni2)}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
: "${REPLICATION_PASSWORD:?REPLICATION_PASSWORD must be set}"
: "${PATRONI_API_PASSWORD:?PATRONI_API_PASSWORD must be set}"

callback=/usr/local/bin/patroni-lab\ callback
umask 077
cat > /etc/patroni/patroni.yml <<YAML
# Rendered by patroni-entrypoint at container start from the compose variables.
scope: ${CLUSTER_SCOPE:-postgres-cluster}
name: ${NODE_NAME}

log:
  level: INFO

restapi:
  listen: 0.0.0.0:8008
  connect_address: ${NODE_NAME}:8008
  # Unsafe endpoints (switchover, failover, restart, config) need these credentials;
  # GET/OPTIONS health checks do not.
  authentication:
    username: ${PATRONI_API_USER:-patroni}
    password: ${PATRONI_API_PASSWORD}

ctl:
  authentication:
    username: ${PATRONI_API_USER:-patroni}
    password: ${PATRONI_API_PASSWORD}

etcd3:
  hosts: ${ETCD_HOSTS:-etcd:2379}

bootstrap:
  # Written to etcd once, when the cluster is first made; later changes: patronictl edit-config.
  dcs:
    ttl: ${PATRONI_LAB_TTL:-30}
    loop_wait: ${PATRONI_LAB_LOOP_WAIT:-10}
    retry_timeout: ${PATRONI_LAB_RETRY_TIMEOUT:-10}
    maximum_lag_on_failover: ${PATRONI_LAB_MAXIMUM_LAG_ON_FAILOVER:-1048576}
    synchronous_mode: ${PATRONI_LAB_SYNCHRONOUS_MODE:-off}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_connections: 200
        max_wal_senders: 10
        max_replication_slots: 10
        password_encryption: scram-sha-256
  initdb:
    - encoding: UTF8
    - data-checksums
  # Run once on the new cluster (Patroni appends a connection string): pg_walinspect lets the
  # doctor compare a replica's last record with the leader's at the same place.
  post_bootstrap: psql -q -c "CREATE EXTENSION IF NOT EXISTS pg_walinspect"

postgresql:
  listen: 0.0.0.0:5432
  connect_address: ${NODE_NAME}:5432
  data_dir: /var/lib/postgresql/data/pgdata
  bin_dir: /usr/lib/postgresql/17/bin
  pgpass: /tmp/pgpass
  authentication:
    superuser:
      username: postgres
      password: ${POSTGRES_PASSWORD}
    replication:
      username: replicator
      password: ${REPLICATION_PASSWORD}
  parameters:
    unix_socket_directories: /var/run/postgresql
  pg_hba:
    - local all all trust
    - host replication replicator all scram-sha-256
    - host all all all scram-sha-256
  # Points PgBouncer at this node when it becomes the leader; a no-op on other roles.
  callbacks:
    on_start: ${callback}
    on_restart: ${callback}
    on_role_change: ${callback}

tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
YAML

exec patroni /etc/patroni/patroni.yml
