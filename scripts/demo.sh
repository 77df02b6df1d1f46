#!/usr/bin/env bash
# Demo: makes a source database with 200,000 rows of the prototype's `transactions` table,
# copies it with `pgsync single`, changes some rows, runs an incremental pass, and shows
# `pgsync status` and `pgsync verify`. Uses the local server (or PGHOST/PGPORT/PGUSER); drops nothing but its
# own two demo databases.
set -euo pipefail
cd "$(dirname "$0")/.."
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
rows="${DEMO_ROWS:-200000}"
scripts/pg-up.sh
cargo build --release -q
bin=target/release/pgsync
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT

psql -q -d postgres -c 'DROP DATABASE IF EXISTS pgsync_demo_src' -c 'DROP DATABASE IF EXISTS pgsync_demo_dst' \
     -c 'CREATE DATABASE pgsync_demo_src' -c 'CREATE DATABASE pgsync_demo_dst'
psql -q -d pgsync_demo_src <<SQL
CREATE TABLE transactions (
  id uuid PRIMARY KEY, user_id uuid NOT NULL, created bigint NOT NULL, updated bigint NOT NULL,
  certified_by_user bigint, amount numeric(18,2) NOT NULL, status text NOT NULL);
CREATE INDEX ON transactions (updated, id);
INSERT INTO transactions
  SELECT gen_random_uuid(), gen_random_uuid(), 1533945600000 + g, 1533945600000 + (g / 40) * 1000,
         CASE WHEN g % 20 = 0 THEN NULL ELSE 1533945600000 + g + 500 END,
         round((random() * 2000 - 1000)::numeric, 2), (ARRAY['APPROVED', 'BLOCKED', 'PENDING'])[1 + g % 3]
  FROM generate_series(1, $rows) g;
ANALYZE transactions;
SQL

echo "== fresh copy of $rows rows"
$bin single pgsync_demo_src pgsync_demo_dst transactions --state-dir "$state"
echo "== 5% of rows change, 1,000 new rows"
psql -q -d pgsync_demo_src -c "UPDATE transactions SET amount = amount + 1, updated = updated + 100000000 WHERE random() < 0.05" \
     -c "INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1, 1700000000000, NULL, 9.99, 'NEW' FROM generate_series(1, 1000)"
$bin single pgsync_demo_src pgsync_demo_dst transactions --state-dir "$state"
echo "== status"
$bin status pgsync_demo_src pgsync_demo_dst transactions --state-dir "$state"
echo "== pgsync verify (exit 0: equal)"
$bin verify pgsync_demo_src pgsync_demo_dst transactions --state-dir "$state"
echo "== independent check (count and hash of every row on both sides)"
for db in pgsync_demo_src pgsync_demo_dst; do
  printf '%s: ' "$db"; psql -Atd "$db" -c "SELECT count(*) || ' rows, hash ' || sum(hashtextextended(t::text, 0)) FROM transactions t"
done
