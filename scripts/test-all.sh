#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (unit, integration, CLI, examples),
# then the Java library (JNI bindings). Later stages (C ABI) are added here as they land.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== java: mvn verify (builds the native library, JUnit 5 under -Xcheck:jni, packaged-jar tests)"
mvn -B -ntp -f java/pom.xml verify
