#!/usr/bin/env bash
# The benchmark report (issue 15): runs the Rust (criterion), C (benches/c/bench_ffi.c) and Java
# (JMH) benches with short settings and writes docs/BENCHMARKS.md with tables and SVG plots in
# docs/benchmarks/ (scripts/bench_report/generate.py, matplotlib in a venv this script creates
# under target/bench-report-venv). About 14 minutes on 2 cores from an empty target (7-8 of them
# the fat-LTO build), about 7 with the build warm; it prints its duration. A stage that
# fails or cannot run (no PostgreSQL binaries, no JDK/Maven, a bench not yet written) is skipped
# and named in the report, never fatal.
#
#   scripts/bench-report.sh            the whole run
#   scripts/bench-report.sh --test     only the generator's test on tests/fixtures/bench-report/
#
# Environment: BENCH_STAGES (default "rust c cli scale java") picks stages; BENCH_FILTER is passed to
# every criterion bench as its filter; TBS_TEST_POSTGRES_URL makes the PostgreSQL bench use a
# running server instead of starting its own (scripts/pg-test-server.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/bench-report-venv

ensure_venv() {
    if ! "$venv/bin/python" -c 'import matplotlib, pytest' 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/bench_report/requirements.txt
    fi
}

if [ "${1:-}" = "--test" ]; then
    ensure_venv
    exec "$venv/bin/python" -m pytest -q -p no:cacheprovider scripts/bench_report
fi

start=$SECONDS
out=$target/bench-report
rm -rf "$out"
mkdir -p "$out"
export CRITERION_HOME=$out/criterion
notes=()
times=""
mark=$SECONDS
lap() { times+="${times:+, }$1 $((SECONDS - mark)) s"; mark=$SECONDS; }
note() { notes+=("$1"); echo "   note: $1"; }
load_start=$(cut -d' ' -f1 /proc/loadavg)
stages=${BENCH_STAGES:-rust c cli scale java}
filter=${BENCH_FILTER:-}
# The plotting venv (pip downloads) is made while the benches build; waited for before its use.
ensure_venv >"$out/venv.log" 2>&1 &
venv_job=$!

# Short criterion settings; benches with 10 MiB inputs use the minimum sample count. Each suite
# runs from the one report binary (benches/report.rs), named by TBS_BENCH_SUITES.
crit() { # crit SUITE SAMPLES [FILTER]: FILTER (a regex of ids) unless BENCH_FILTER is set
    local suite=$1 samples=$2 rc
    local only=${filter:-${3:-}}
    echo "== cargo bench --bench $suite"
    set +e
    # shellcheck disable=SC2086 # an empty filter is no argument
    TBS_BENCH_SUITES=$suite cargo bench --locked --bench report -- --noplot --warm-up-time 1 \
        --measurement-time 2 --sample-size "$samples" $only 2>&1 | tee "$out/$suite.log" \
        | grep --line-buffered -E '^[A-Za-z0-9_]+/[^ ]*( |$)|^ +(time|thrpt):'
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" != 0 ]; then
        note "criterion suite \`$suite\` failed (exit $rc; target/bench-report/$suite.log)"
    fi
}

# One build for every stage: `cargo bench --no-run` also links the library as a cdylib
# (target/release/deps/libtbsecrets.so, bench profile: release settings + LTO, default features
# ffi, jni, postgres). C and Java use a copy of that file: a separate `cargo build --lib` would
# resolve other dependency features (no dev-dependencies), overwrite the same file and make the
# next `cargo bench` rebuild and relink every bench. The same goes for the CLI: `cargo bench`
# builds the package's binaries too, so the CLI stage runs target/release/tbsecrets of the bench
# profile (a `cargo build --release` would share the library's output files under another
# profile and make every later `cargo bench --bench X` rebuild it, a minute each).
# Only the report's bench binary, which holds every suite the report runs: a fat-LTO link takes
# about 90 s here, so one binary instead of seven saves about 4 minutes of a cold build.
echo "== building the benches (bench profile: release settings + LTO)"
cargo bench --locked --no-run --bench report 2>&1 | tail -3
libdir=$out/cargo/release
mkdir -p "$libdir"
cp "$target/release/deps/libtbsecrets.so" "$libdir/"
ln -sf libtbsecrets.so "$libdir/libtbsecrets.so.0" # the SONAME the C program asks for
lap build

if [[ " $stages " == *" rust "* ]]; then
    for bench in core ffi dynamic_names; do
        crit "$bench" 30
    done
    # Only the groups the report shows (the adversarial inputs and the 6-placeholder JSON are
    # `cargo bench --bench placeholder`'s).
    crit placeholder 10 '^(resolve_text_10MiB|resolve_json_1MiB|scan_10MiB)'
    crit resolve_sizes 10
    # Uses TBS_TEST_POSTGRES_URL or starts its own throwaway server (scripts/pg-test-server.sh).
    crit postgres 20
    lap "Rust benches"
fi

if [[ " $stages " == *" c "* ]]; then
    echo "== C: benches/c/bench_ffi.c"
    if cc -O2 -Iinclude benches/c/bench_ffi.c -L"$libdir" -ltbsecrets -Wl,-rpath,"$libdir" \
        -o "$out/bench_ffi" && "$out/bench_ffi" | tee "$out/bench_ffi.txt"; then
        :
    else
        note "C bench (benches/c/bench_ffi.c) failed"
    fi
    lap C
fi

if [[ " $stages " == *" cli "* ]]; then
    echo "== CLI: scripts/bench-cli-resolve.sh 64 5"
    if TBSECRETS="$target/release/tbsecrets" scripts/bench-cli-resolve.sh 64 5 | tee -a "$out/extra.txt"; then
        :
    else
        note "CLI resolve bench (scripts/bench-cli-resolve.sh) failed"
    fi
    lap CLI
fi

if [[ " $stages " == *" scale "* ]]; then
    # Generates the 1,000,000-secret store once (target/bench-data, ~1.5 min), then rotates the
    # master key of a copy while two threads read.
    echo "== scale: master-key rotation of 1,000,000 secrets over 10,000 tenants, readers reading"
    if TBS_SCALE_ONLY_ROTATION=1 TBS_BENCH_SUITES=scale cargo bench --locked --bench report 2>&1 \
        | tee "$out/scale.log" \
        | grep --line-buffered -E '^(generated|scale_rotation)' | tee -a "$out/extra.txt"; then
        :
    fi
    grep -q '^scale_rotation' "$out/scale.log" || note "scale rotation bench failed (target/bench-report/scale.log)"
    lap scale
fi

if [[ " $stages " == *" java "* ]]; then
    echo "== Java: JMH (mvn -Pbench), short settings"
    if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
        note "Java benches skipped: no mvn or java on PATH"
    else
        # One fork, 2 warm-up and 3 measured iterations of 1 s per benchmark and mode; without
        # the benchmarks the report does not show (plain-Jackson baselines, `byte[]` variants).
        if mvn -B -ntp -q -f java/pom.xml -Pbench verify -DskipTests -Dcargo.skip=true \
            -Dcargo.target.dir="$out/cargo" \
            "-Dbench.args=-f 1 -wi 2 -w 1s -i 3 -r 1s -e JacksonPlainMap|ruleChainTbsecretsBytes|largeTextBytes" \
            >"$out/jmh.log" 2>&1; then
            cp java/target/jmh.json "$out/jmh.json"
            grep -E '^(Benchmark|GetSecret|Resolve)' "$out/jmh.log" | grep -v ':p0\.' || true
        else
            tail -20 "$out/jmh.log"
            if grep -q "Unable to acquire the JMH lock" "$out/jmh.log"; then
                note "Java JMH benches skipped: another JMH run held /tmp/jmh.lock"
            else
                note "Java JMH benches failed (see target/bench-report/jmh.log)"
            fi
        fi
    fi
    lap Java
fi

load_end=$(cut -d' ' -f1 /proc/loadavg)
wait "$venv_job" || { cat "$out/venv.log"; exit 1; }
duration=$((SECONDS - start))
cores=$(nproc)
loaded=""
if awk -v a="$load_start" -v b="$load_end" -v c="$cores" 'BEGIN { exit !(a > c * 0.5 || b > c * 0.5) }'; then
    loaded="load average $load_start at start, $load_end at end, on $cores cores"
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
notes_json=$(printf '%s\n' "${notes[@]+"${notes[@]}"}" | "$venv/bin/python" -c \
    'import json, sys; print(json.dumps([l for l in sys.stdin.read().splitlines() if l]))')
"$venv/bin/python" - "$out/meta.json" <<EOF
import json, sys
json.dump({
    "date": "$(date -u '+%Y-%m-%d %H:%M')",
    "commit": "$commit",
    "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')",
    "cores": "$cores",
    "kernel": "$(uname -sr)",
    "load": "$load_start / $load_end",
    "loaded": "$loaded",
    "duration": "$((duration / 60)) min $((duration % 60)) s (scripts/bench-report.sh: $times)",
    "settings": "criterion: 1 s warm-up, 2 s measurement, 10-30 samples; JMH: 1 fork, 2 × 1 s warm-up, 3 × 1 s iterations; stages: $stages",
    "notes": $notes_json,
}, open(sys.argv[1], "w"), indent=1)
EOF
jmh=$out/jmh.json
[ -f "$jmh" ] || jmh=""
"$venv/bin/python" scripts/bench_report/generate.py --criterion "$CRITERION_HOME" \
    ${jmh:+--jmh "$jmh"} --c-output "$out/bench_ffi.txt" --extra "$out/extra.txt" --meta "$out/meta.json" \
    --out docs/BENCHMARKS.md --svg-dir docs/benchmarks
echo "== bench report done in $((duration / 60)) min $((duration % 60)) s ($times): docs/BENCHMARKS.md, docs/benchmarks/*.svg"
