#!/usr/bin/env bash
# The test command: unit tests, then the integration suite against a real PostgreSQL
# (PGSYNC_TEST_URL, default postgres://postgres@127.0.0.1:5432/postgres), with the crash
# points compiled in (--features failpoints). scripts/test-server.sh sets up what some
# tests need on the server (a password-checked role); scripts/test-standby.sh a hot standby
# of it on port 5433. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pg-up.sh
scripts/test-server.sh
scripts/test-standby.sh
cargo test --features failpoints "$@"
