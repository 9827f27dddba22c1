#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (unit, integration, CLI,
# examples), the C ABI stage (C programs under valgrind and AddressSanitizer), and the check
# that the committed C header is what the build generates. Later stages (Java) are added here
# as they land.
#
# Needs: cargo, a C compiler (cc), valgrind (.ci/run installs it; without CI set, a missing
# valgrind only skips the memcheck run with a note).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test (Rust)"
cargo test --locked -- --skip c_abi_
echo "== C ABI: tests/c plain, under valgrind memcheck and AddressSanitizer; examples/c"
cargo test --locked --test c_abi
echo "== include/tbsecrets.h matches the build"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    if ! git diff --exit-code -- include/ || [ -n "$(git status --porcelain -- include/)" ]; then
        echo "include/tbsecrets.h differs from the header the build generates from src/ffi:" >&2
        echo "commit the regenerated include/tbsecrets.h" >&2
        exit 1
    fi
else
    echo "(not a git checkout: header drift check skipped)"
fi
