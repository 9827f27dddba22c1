#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every Rust test (unit, integration, CLI,
# examples). Later stages (C ABI, Java) are added here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked 2>&1 | tee "$log"

# One closing line for the whole suite: the sum of every test binary's result line.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
