#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (unit, integration, CLI, examples,
# the backend conformance suite on SQLite and on a throwaway PostgreSQL 15 server that this
# script starts and stops), the C ABI stage (C programs under valgrind and AddressSanitizer),
# the check that the committed C header is what the build generates, and the Java library
# (JNI bindings: JUnit 5 under -Xcheck:jni, packaged-jar tests).
#
# Needs: cargo, a C compiler (cc), valgrind (.ci/run installs it; without CI set, a missing
# valgrind only skips the memcheck run with a note), PostgreSQL 15 server binaries
# (`apt-get install -y postgresql-15`; .ci/run installs them when missing), JDK 17 and Maven.
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
echo "== cargo test (Rust)"
cargo test --locked -- --skip c_abi_ 2>&1 | tee "$log"
echo "== C ABI: tests/c plain, under valgrind memcheck and AddressSanitizer; examples/c"
cargo test --locked --test c_abi 2>&1 | tee -a "$log"
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
echo "== java: mvn verify (builds the native library, JUnit 5 under -Xcheck:jni, packaged-jar tests)"
mvn -B -ntp -f java/pom.xml verify 2>&1 | tee -a "$log"

# One closing line for the whole suite: every cargo test binary's result line plus Maven's
# per-plugin totals (the "Tests run:" lines without a class name).
awk '
  /^test result:/ { p += $4; f += $6; i += $8 }
  /Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$/ {
    line = $0; sub(/.*Tests run: /, "", line); split(line, n, /[^0-9]+/)
    p += n[1] - n[2] - n[3] - n[4]; f += n[2] + n[3]; i += n[4]
  }
  END { printf "all: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
