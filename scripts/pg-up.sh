#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at PGSYNC_TEST_URL (default: the local one on
# 127.0.0.1:5432). Starts the local cluster if it is installed but down; installs it from
# Debian's packages if it is missing and we are root.
set -euo pipefail
url="${PGSYNC_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

ready() { pg_isready -d "$url" -q 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "pg-up: installing PostgreSQL from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "pg-up: PostgreSQL client tools are missing; install PostgreSQL or point PGSYNC_TEST_URL at a server" >&2
    exit 1
  fi
fi

if ! ready && [ -z "${PGSYNC_TEST_URL:-}" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "pg-up: starting local cluster $version/main" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi

for _ in $(seq 1 30); do
  ready && exit 0
  sleep 1
done
echo "pg-up: no PostgreSQL answers at $url" >&2
exit 1
