#!/usr/bin/env bash
# Server set-up the integration tests need, idempotent: a pg_hba line that makes the
# server check the password of role pgsync_pw_role (the wrong-password test). On the
# local trust-auth server it is the first line of pg_hba.conf (first match wins). A remote
# PGSYNC_TEST_URL server must be set up the same way by its owner; the tests that need it
# fail, with this file named, when it is not.
set -euo pipefail
url="${PGSYNC_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
[ -n "${PGSYNC_TEST_URL:-}" ] && exit 0

hba=$(psql -d "$url" -Atc 'SHOW hba_file')
if ! grep -q '^host all pgsync_pw_role 127.0.0.1/32 scram-sha-256' "$hba"; then
  if [ ! -w "$hba" ]; then
    echo "test-server: cannot write $hba; add 'host all pgsync_pw_role 127.0.0.1/32 scram-sha-256' as its first line" >&2
    exit 1
  fi
  sed -i '1i host all pgsync_pw_role 127.0.0.1/32 scram-sha-256' "$hba"
  psql -d "$url" -qc 'SELECT pg_reload_conf()' >/dev/null
fi
