#!/usr/bin/env bash
# `tbsecrets resolve` of a large text file against `cp` of the same file, in the same run.
#
#   scripts/bench-cli-resolve.sh [SIZE_MIB] [RUNS]      (defaults: 64 MiB, 7 runs)
#
# Builds the release CLI (unless TBSECRETS=/path/to/tbsecrets is given), makes a store with
# 50 TEXT secrets in a temporary directory, writes a text file of SIZE_MIB MiB with a
# placeholder every ~64 KiB, then alternates `tbsecrets resolve FILE -o OUT`, `tbsecrets
# resolve FILE > OUT`, `cp FILE OUT` and `dd ... conv=fsync` (a copy synced to disk) RUNS times
# (after one warm-up) and prints the median wall time of each, their ratios to `cp`, and the
# peak RSS of each (from /usr/bin/time -v when it is installed). The file stays in the page
# cache, so `cp` is a memory-speed copy. `-o` replaces OUT atomically and syncs it before the
# rename (a crash never leaves half a resolved file), so its like-for-like baseline is the
# synced copy (`cp_fsync`); `> OUT` syncs nothing, like `cp`.
set -euo pipefail

size_mib=${1:-64}
runs=${2:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${TBSECRETS:-}" ]]; then
    cargo build --release --quiet --bin tbsecrets --manifest-path "$root/Cargo.toml"
    TBSECRETS="$root/target/release/tbsecrets"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TBS_STORE="$work/store.db" TBS_TENANT=bench
unset TBS_MASTER_KEY TBS_MASTER_KEY_FILE
"$TBSECRETS" init >/dev/null
for i in $(seq -w 0 49); do
    printf 'value-%s-%s' "$i" "$(head -c 24 /dev/zero | tr '\0' x)" |
        "$TBSECRETS" put "secret-$i" >/dev/null
done

# One 64 KiB block: JSON-like filler ending in a placeholder; repeated to the size.
python3 - "$work/in.txt" "$size_mib" <<'EOF'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
filler = '{"type": "org.thingsboard.rule.engine.rest.TbRestApiCallNode", "url": "https://${deviceName}/x"},\n'
blocks = []
for i in range(mib * 16):
    block = filler * (64 * 1024 // len(filler))
    blocks.append(block + "token=${secret:secret-%02d;type:TEXT}\n" % (i % 50))
with open(path, "w") as f:
    f.write("".join(blocks))
EOF

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A times
kinds=(resolve_o resolve_stdout cp cp_fsync)
# run_one KIND [WRAPPER...]: one run of KIND's command, started through WRAPPER when given.
run_one() {
    local kind=$1
    shift
    case $kind in
        resolve_o) "$@" "$TBSECRETS" resolve "$work/in.txt" -o "$work/out.txt" >/dev/null ;;
        resolve_stdout) "$@" "$TBSECRETS" resolve "$work/in.txt" >"$work/out.txt" ;;
        cp) "$@" cp "$work/in.txt" "$work/copy.txt" ;;
        cp_fsync) "$@" dd if="$work/in.txt" of="$work/copy.txt" bs=1M conv=fsync status=none ;;
    esac
}
for kind in "${kinds[@]}"; do run_one "$kind"; done # warm-up
for _ in $(seq "$runs"); do
    for kind in "${kinds[@]}"; do
        start=$(now)
        run_one "$kind"
        times[$kind]+="$(( ($(now) - start) / 1000 )) "
    done
done
cmp -s "$work/in.txt" "$work/copy.txt"
if cmp -s "$work/in.txt" "$work/out.txt"; then
    echo "error: the output equals the input (nothing was resolved)" >&2
    exit 1
fi

# peak KIND: the peak RSS of one run of KIND (time -v reports on stderr; the command's own
# output goes where run_one sends it).
peak() {
    if [[ -x /usr/bin/time ]]; then
        run_one "$1" /usr/bin/time -v 2>&1 | awk -F': ' '/Maximum resident/ {print $2 " KiB"}'
    else
        echo "n/a"
    fi
}
bytes=$(stat -c %s "$work/in.txt")
cp_us=$(tr ' ' '\n' <<<"${times[cp]}" | grep . | median)
printf '%s MiB text (%s bytes), %s runs, median wall time:\n' "$size_mib" "$bytes" "$runs"
for kind in "${kinds[@]}"; do
    us=$(tr ' ' '\n' <<<"${times[$kind]}" | grep . | median)
    rss=$(peak "$kind")
    awk -v k="$kind" -v us="$us" -v cp="$cp_us" -v rss="$rss" -v b="$bytes" \
        'BEGIN {printf "  %-15s %8.1f ms  %5.2f GB/s  %5.2fx cp  peak RSS %s\n", k, us/1000, b/us/1000, us/cp, rss}'
done
