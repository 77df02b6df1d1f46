#!/usr/bin/env bash
# Server set-up the integration tests need, idempotent, as the first lines of pg_hba.conf
# (first match wins) on the local trust-auth server: role pgsync_pw_role must give its
# password (the wrong-password test); role pgsync_tls_role may only connect over TLS, with
# its password (the TLS and .pgpass tests); and the server must have ssl = on. A remote
# PGSYNC_TEST_URL server must be set up the same way by its owner; the tests that need it
# fail, with this file named, when it is not.
set -euo pipefail
url="${PGSYNC_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
[ -n "${PGSYNC_TEST_URL:-}" ] && exit 0

lines=(
  "host all pgsync_pw_role 127.0.0.1/32 scram-sha-256"
  "hostssl all pgsync_tls_role 127.0.0.1/32 scram-sha-256"
  "hostssl all pgsync_tls_role ::1/128 scram-sha-256"
  "host all pgsync_tls_role all reject"
)
hba=$(psql -d "$url" -Atc 'SHOW hba_file')
changed=
# Inserted in reverse, each at the top, so that they end up in the order above.
for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
  line=${lines[i]}
  grep -qxF "$line" "$hba" && continue
  if [ ! -w "$hba" ]; then
    echo "test-server: cannot write $hba; add these first lines: ${lines[*]}" >&2
    exit 1
  fi
  sed -i "1i $line" "$hba"
  changed=1
done
[ -n "$changed" ] && psql -d "$url" -qc 'SELECT pg_reload_conf()' >/dev/null
if [ "$(psql -d "$url" -Atc 'SHOW ssl')" != on ]; then
  echo "test-server: the server has ssl = off; the TLS tests need ssl = on (a certificate for localhost)" >&2
  exit 1
fi
