#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every Rust test (unit, integration, CLI,
# examples). Later stages (C ABI, Java) are added here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
