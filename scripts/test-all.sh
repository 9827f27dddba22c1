#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every Rust test (unit, integration, CLI,
# examples, the backend conformance suite on SQLite and on a throwaway PostgreSQL 15 server
# that this script starts and stops).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
pgroot=$(mktemp -d /tmp/tbsecrets-pg.XXXXXX)
cleanup() {
  scripts/pg-test-server.sh stop "$pgroot/pg" >/dev/null 2>&1 || true
  rm -rf "$pgroot" "$log"
}
trap cleanup EXIT

echo "== starting a throwaway PostgreSQL server"
TBS_TEST_POSTGRES_URL=$(scripts/pg-test-server.sh start "$pgroot/pg")
export TBS_TEST_POSTGRES_URL
export TBS_TEST_PG_DIR="$pgroot/pg"
echo "   $TBS_TEST_POSTGRES_URL"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked 2>&1 | tee "$log"

# One closing line for the whole suite: the sum of every test binary's result line.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
