#!/bin/bash
# Runs once when the container's data directory is created.
set -e
psql -v ON_ERROR_STOP=1 --username postgres <<-SQL
  CREATE DATABASE pgsync_src;
  CREATE DATABASE pgsync_dst;
  -- A source role with nothing but CONNECT and SELECT (grant SELECT on your tables to it).
  CREATE ROLE pgsync_reader LOGIN PASSWORD 'reader';
  GRANT CONNECT ON DATABASE pgsync_src TO pgsync_reader;
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO pgsync_reader;
  -- The role the wrong-password test uses.
  CREATE ROLE pgsync_pw_role LOGIN PASSWORD 'right-password';
SQL
# Passwords are checked for the two roles above; everyone else keeps trust auth.
sed -i '1i host all pgsync_pw_role all scram-sha-256\nhost all pgsync_reader all scram-sha-256' "$PGDATA/pg_hba.conf"
