#!/bin/sh
# The streaming replica: clone the primary once (pg_basebackup -R writes standby.signal and
# primary_conninfo), then run as a hot standby that roomlog reads history from (DATABASE_REPLICA_URLS).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h postgres-primary -U postgres; do sleep 1; done
  PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h postgres-primary -U replicator -D "$PGDATA" \
    -X stream -S replica_1 -R
  chmod 0700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on
