#!/usr/bin/env bash
# A hot standby of the local test server for the tests of standby sources: cluster
# "pgsync_standby" on port 5433, made with pg_basebackup -R from the server on 5432 and
# streaming from it, idempotent (an existing streaming standby is kept). Needs Debian's
# postgresql-common tools and root; with PGSYNC_TEST_URL set, the owner of that server
# provides PGSYNC_TEST_STANDBY_URL instead, and the standby tests fail naming this file.
set -euo pipefail
[ -n "${PGSYNC_TEST_URL:-}" ] && exit 0
if ! command -v pg_createcluster >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "test-standby: making the test standby needs Debian's postgresql-common (pg_createcluster) and root;" \
    "or run a standby of the test server yourself and set PGSYNC_TEST_URL and PGSYNC_TEST_STANDBY_URL" >&2
  exit 1
fi
primary="postgres://postgres@127.0.0.1:5432/postgres"
standby="postgres://postgres@127.0.0.1:5433/postgres"
version=$(ls /etc/postgresql | sort -n | tail -1)
name=pgsync_standby

streaming() {
  [ "$(psql -d "$standby" -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] &&
    [ "$(psql -d "$primary" -Atc "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$name'")" -ge 1 ]
}
# Replay keeps up with the whole suite's WAL more easily without fsync (a test cluster).
tune() {
  local conf="/etc/postgresql/$version/$name/postgresql.conf"
  [ -f "$conf" ] || return 0
  if ! grep -qx "fsync = off" "$conf"; then
    echo "fsync = off" >> "$conf"
    pg_ctlcluster "$version" "$name" reload 2>/dev/null || true
  fi
}
tune
streaming && exit 0

# The primary lets the standby stream (trust, from loopback only), first match wins.
hba=$(psql -d "$primary" -Atc 'SHOW hba_file')
line="host replication all 127.0.0.1/32 trust"
if ! grep -qxF "$line" "$hba"; then
  sed -i "1i $line" "$hba"
  psql -d "$primary" -qc 'SELECT pg_reload_conf()' >/dev/null
fi

if pg_lsclusters -h | awk '{print $2}' | grep -qx "$name"; then
  pg_dropcluster --stop "$version" "$name"
fi
pg_createcluster -p 5433 "$version" "$name" >/dev/null
# The standby authenticates as the primary does (trust from loopback for the tests).
cp "$hba" "/etc/postgresql/$version/$name/pg_hba.conf"
data=/var/lib/postgresql/$version/$name
rm -rf "${data:?}"/*
runuser -u postgres -- pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D "$data" -R -X stream -c fast \
  -d "application_name=$name" >/dev/null
tune
pg_ctlcluster "$version" "$name" start
for _ in $(seq 1 60); do
  streaming && exit 0
  sleep 0.5
done
echo "test-standby: the standby on 5433 does not stream from 5432" >&2
exit 1
