#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (unit, integration, CLI, examples,
# the backend conformance suite on SQLite and on a throwaway PostgreSQL 15 server that this
# script starts and stops), the C ABI stage (C programs under valgrind and AddressSanitizer),
# the check that the committed C header is what the build generates, and the Java library
# (JNI bindings: JUnit 5 under -Xcheck:jni, packaged-jar tests), and the Python package (an abi3
# wheel built with maturin in a venv under target/py-venv, pytest against the ThingsBoard IoT
# Gateway from PyPI), and the benchmark report's generator on fixture results (pytest,
# matplotlib in a venv under target/bench-report-venv).
#
# Besides the defaults it builds and tests each documented feature set (ffi, ffi,postgres,
# jni,postgres) and checks the ffi-only release library: no OpenSSL in ldd, stripped size
# under 5 MB, SONAME libtbsecrets.so.0. Stage times are printed at the end.
#
# Needs: cargo, a C compiler (cc), pkg-config, readelf (binutils), the openssl CLI (test
# certificates), valgrind (.ci/run installs it; without CI set, a missing
# valgrind only skips the memcheck run with a note), PostgreSQL 15 server binaries
# (`apt-get install -y postgresql-15`; .ci/run installs them when missing), JDK 17 and Maven,
# python3 with venv (PyPI reachable for maturin, pytest, PyYAML, thingsboard-gateway).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
pgroot=$(mktemp -d /tmp/tbsecrets-pg.XXXXXX)
cleanup() {
  scripts/pg-test-server.sh stop "$pgroot/pg" >/dev/null 2>&1 || true
  rm -rf "$pgroot" "$log"
}
trap cleanup EXIT

# Stage timings, printed at the end.
stage_start=$SECONDS
stage_name=""
stage_times=""
stage() {
    if [ -n "$stage_name" ]; then
        stage_times+=$(printf '%5ds  %s' $((SECONDS - stage_start)) "$stage_name")$'\n'
    fi
    stage_name=$1
    stage_start=$SECONDS
    echo "== $1"
}

stage "starting a throwaway PostgreSQL server"
TBS_TEST_POSTGRES_URL=$(scripts/pg-test-server.sh start "$pgroot/pg")
export TBS_TEST_POSTGRES_URL
export TBS_TEST_PG_DIR="$pgroot/pg"
echo "   $TBS_TEST_POSTGRES_URL"

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy -D warnings (default features)"
cargo clippy --all-targets --locked -- -D warnings
stage "cargo test (Rust, default features: every surface)"
cargo test --locked -- --skip c_abi_ 2>&1 | tee "$log"
stage "C ABI: tests/c plain, under valgrind memcheck and AddressSanitizer; examples/c; install.sh and every documented link line"
cargo test --locked --test c_abi 2>&1 | tee -a "$log"
stage "include/tbsecrets.h matches the build"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    if ! git diff --exit-code -- include/ || [ -n "$(git status --porcelain -- include/)" ]; then
        echo "include/tbsecrets.h differs from the header the build generates from src/ffi:" >&2
        echo "commit the regenerated include/tbsecrets.h" >&2
        exit 1
    fi
else
    echo "(not a git checkout: header drift check skipped)"
fi
# The feature sets README.md documents besides the defaults (ffi: scripts/install.sh;
# ffi,postgres: its FEATURES option; jni,postgres: the jar, tested by the Maven stage): each
# passes clippy and runs the tests of its surfaces (Cargo skips the other integration tests
# through their required-features).
stage "feature set ffi (the C library alone): clippy, unit and core tests, C ABI, link lines"
cargo clippy --all-targets --locked --no-default-features --features ffi -- -D warnings
cargo test --locked --no-default-features --features ffi -- --skip c_abi_ 2>&1 | tee -a "$log"
cargo test --locked --no-default-features --features ffi --test c_abi -- --exact c_abi_tests_pass \
    c_abi_install_script_and_every_documented_link_line_build_the_example 2>&1 | tee -a "$log"
stage "feature set ffi,postgres: clippy, unit tests, PostgreSQL backend tests"
cargo clippy --all-targets --locked --no-default-features --features ffi,postgres -- -D warnings
cargo test --locked --no-default-features --features ffi,postgres --lib --test conformance \
    --test postgres_listener --test postgres_restart --test postgres_tls --test group_commit \
    --test rotation_online 2>&1 | tee -a "$log"
stage "feature set jni,postgres (the jar's library): clippy"
cargo clippy --all-targets --locked --no-default-features --features jni,postgres -- -D warnings
stage "C library release build (--features ffi only): no OpenSSL, size"
cargo build --release --locked --lib --no-default-features --features ffi
so=${CARGO_TARGET_DIR:-target}/release/libtbsecrets.so
if ldd "$so" | grep -E 'libssl|libcrypto'; then
    echo "the ffi-only library links OpenSSL" >&2
    exit 1
fi
size=$(stat -c %s "$so")
echo "   ldd $so: $(ldd "$so" | awk '{print $1}' | tr '\n' ' ')"
echo "   size (release profile, stripped): $size bytes"
if [ "$size" -gt $((5 * 1024 * 1024)) ]; then
    echo "the stripped ffi-only library is over 5 MB" >&2
    exit 1
fi
readelf -d "$so" | grep -q 'Library soname: \[libtbsecrets.so.0\]' \
    || { echo "the library has no SONAME libtbsecrets.so.0" >&2; exit 1; }
echo "   SONAME libtbsecrets.so.0"
stage "java: mvn verify of java/all.xml (builds the stripped jni,postgres library, JUnit 5 under -Xcheck:jni, packaged-jar tests)"
mvn -B -ntp -f java/all.xml verify 2>&1 | tee -a "$log"

stage "python: wheel (maturin, abi3) in a venv, pytest incl. the ThingsBoard IoT Gateway's configs"
venv=${CARGO_TARGET_DIR:-$PWD/target}/py-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test.txt
PYO3_PYTHON="$venv/bin/python" cargo clippy --locked -p tbsecrets-python --all-targets -- -D warnings
rm -rf "${CARGO_TARGET_DIR:-target}/wheels"
(cd python && "$venv/bin/maturin" build --locked --profile wheel \
    --out "${CARGO_TARGET_DIR:-$PWD/../target}/wheels" 2>&1 | tail -3)
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps \
    "${CARGO_TARGET_DIR:-target}"/wheels/tbsecrets-*.whl
# Run from python/tests so that the installed wheel (not the source tree) is imported.
(cd python/tests && "$venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir=. . 2>&1) \
    | tee -a "$log"

stage "benchmark report generator: pytest on tests/fixtures/bench-report (matplotlib venv under target/)"
scripts/bench-report.sh --test 2>&1 | tee -a "$log"

stage "done"
echo "== stage times"
printf '%s' "$stage_times"
echo "== disk: target/ holds $(du -sh "${CARGO_TARGET_DIR:-target}" | cut -f1), $(df -h --output=avail . | tail -1 | tr -d ' ') free"

# One closing line for the whole suite: every cargo test binary's result line, Maven's
# per-plugin totals (the "Tests run:" lines without a class name) and pytest's summary line.
awk '
  /^test result:/ { p += $4; f += $6; i += $8 }
  /Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$/ {
    line = $0; sub(/.*Tests run: /, "", line); split(line, n, /[^0-9]+/)
    p += n[1] - n[2] - n[3] - n[4]; f += n[2] + n[3]; i += n[4]
  }
  # pytest: "27 passed, 1 skipped in 3.2s" (-q), or the same between "=" rules.
  /^=+ [0-9]+ .* in [0-9.]+s/ || /^[0-9]+ (passed|failed|skipped|error).* in [0-9.]+s/ {
    for (k = 2; k <= NF; k++) {
      w = $k; gsub(/,/, "", w)
      if (w == "passed") p += $(k - 1)
      else if (w == "failed" || w == "error" || w == "errors") f += $(k - 1)
      else if (w == "skipped") i += $(k - 1)
    }
  }
  END { printf "all: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
