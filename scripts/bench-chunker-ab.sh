#!/usr/bin/env bash
# A kernel change measured on a shared, noisy machine: this build's
# `examples/throughput` and a baseline build of it run alternately, and for
# each kernel the median of its per-run ratios to the fastcdc crate (timed in
# the same process, so the machine's slow and fast moments cancel) is given
# for both builds.
# Usage: CHUNKAH_BASELINE=/path/to/baseline/examples/throughput \
#        scripts/bench-chunker-ab.sh [INPUT|-] [PAIRS] [RUNS]
# Build a baseline with: git worktree add /tmp/base REV &&
#   (cd /tmp/base && cargo build --release --example throughput)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CHUNKAH_BASELINE:?set CHUNKAH_BASELINE to a baseline build of examples/throughput}"
input="${1:--}"
pairs="${2:-5}"
runs="${3:-5}"
cargo build --release --locked --example throughput
ours=target/release/examples/throughput
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for _ in $(seq "$pairs"); do
    "$CHUNKAH_BASELINE" "$input" "$runs" | sed -n 's/^\([a-z0-9]*\/[a-z0-9]*\) .* ratio \([0-9.]*\)$/baseline \1 \2/p' >> "$out"
    "$ours" "$input" "$runs" | sed -n 's/^\([a-z0-9]*\/[a-z0-9]*\) .* ratio \([0-9.]*\)$/this \1 \2/p' >> "$out"
done
python3 - "$out" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import statistics, sys
ratios = {}
for line in open(sys.argv[1]):
    build, kernel, ratio = line.split()
    ratios.setdefault(kernel, {}).setdefault(build, []).append(float(ratio))
print(f"CPU: {sys.argv[2]}; median of per-run ratios to the fastcdc crate")
print(f"{'kernel':<18} {'baseline':>9} {'this':>9} {'this/baseline':>14}  runs")
for kernel, by in ratios.items():
    b = statistics.median(by.get("baseline", [float("nan")]))
    t = statistics.median(by.get("this", [float("nan")]))
    print(f"{kernel:<18} {b:>9.2f} {t:>9.2f} {t / b:>14.2f}  {len(by.get('this', []))}")
PY
