#!/bin/sh
# Generates a store of 1,000,000 secrets over 10,000 tenants (TEXT and TEXT_FILE mixed) and
# 100,000 tracked sources: DIR/large.db and its master key DIR/large.key. Kept when both
# exist already. Usage: scripts/gen-large-store.sh DIR [SECRETS [TENANTS [SOURCES]]]
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release --quiet --example gen_large_store -- "$@"
