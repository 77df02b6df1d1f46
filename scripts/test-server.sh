#!/usr/bin/env bash
# Server set-up the integration tests need, idempotent, as the first lines of pg_hba.conf
# (first match wins) on the local trust-auth server: role pgsync_pw_role must give its
# password (the wrong-password test); role pgsync_tls_role may only connect over TLS, with
# its password (the TLS and .pgpass tests); role pgsync_cert_role only with a client
# certificate signed by a test CA made here (ssl_ca_file; the client-certificate test); and
# the server must have ssl = on. A remote
# PGSYNC_TEST_URL server must be set up the same way by its owner; the tests that need it
# fail, with this file named, when it is not.
set -euo pipefail
url="${PGSYNC_TEST_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
[ -n "${PGSYNC_TEST_URL:-}" ] && exit 0

lines=(
  "host all pgsync_pw_role 127.0.0.1/32 scram-sha-256"
  "hostssl all pgsync_cert_role 127.0.0.1/32 cert"
  "host all pgsync_cert_role all reject"
  "hostssl all pgsync_tls_role 127.0.0.1/32 scram-sha-256"
  "hostssl all pgsync_tls_role ::1/128 scram-sha-256"
  "host all pgsync_tls_role all reject"
)
hba=$(psql -d "$url" -Atc 'SHOW hba_file')
changed=
# A test CA next to pg_hba.conf, a client certificate for pgsync_cert_role signed by it, and
# the server trusting it for client certificates (ssl_ca_file: a reload is enough).
ca=$(dirname "$hba")/pgsync-test-ca
# Version 3 certificates (with extensions): rustls refuses version 1.
if ! openssl x509 -in "$ca/client.pem" -noout -text 2>/dev/null | grep -q 'Version: 3'; then
  mkdir -p "$ca"
  new_key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1" "${@:2}" 2>/dev/null; }
  new_key "$ca/ca.key" -x509 -out "$ca/ca.pem" -subj /CN=pgsync-test-ca -days 3650
  new_key "$ca/client.key" -out "$ca/client.csr" -subj /CN=pgsync_cert_role
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' > "$ca/client.ext"
  openssl x509 -req -in "$ca/client.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
    -extfile "$ca/client.ext" -out "$ca/client.pem" -days 3650 2>/dev/null
  chown -R "$(stat -c %U "$hba")" "$ca" 2>/dev/null || true
  chmod 0644 "$ca/ca.pem" "$ca/client.pem"
  changed=1 # a new CA: the server reloads it
fi
if [ "$(psql -d "$url" -Atc 'SHOW ssl_ca_file')" != "$ca/ca.pem" ]; then
  psql -d "$url" -qc "ALTER SYSTEM SET ssl_ca_file = '$ca/ca.pem'"
  changed=1
fi
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
