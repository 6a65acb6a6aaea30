#!/usr/bin/env bash
# `chunkah build` beside coreos/chunkah's `build` on the same tree, same run:
# uncompressed layers, the archive on stdout to a file, runs alternated,
# median wall time and peak RSS of each. Both get --skip-special-files
# (coreos/chunkah refuses the device nodes of a Debian /dev without it).
# Usage: scripts/bench-build.sh TREE COREOS_CHUNKAH_BINARY [RUNS]
# (build coreos/chunkah from its public source outside this repository:
#  cargo build --release --locked in a checkout of github.com/coreos/chunkah)
set -euo pipefail
cd "$(dirname "$0")/.."
tree="$1" theirs="$2" runs="${3:-5}"
cargo build --release --locked --bin chunkah >&2
ours="$PWD/target/release/chunkah"
out="${BENCH_DIR:-/tmp/chunkah-bench-build}"
mkdir -p "$out"
lscpu | grep -E 'Model name' | sed 's/^/# /'
echo "# tree: $tree ($(du -sb "$tree" | cut -f1) bytes), $runs runs each, alternated"
for i in $(seq "$runs"); do
    for who in ours theirs; do
        bin=$ours
        [ $who = theirs ] && bin=$theirs
        SOURCE_DATE_EPOCH=1700000000 /usr/bin/time -f "$who %e %M" -a -o "$out/times" \
            "$bin" build --rootfs "$tree" --skip-special-files >"$out/$who.ociarchive" 2>/dev/null
    done
done
python3 - "$out/times" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, t, kib = line.split()
    rows.setdefault(who, []).append((float(t), int(kib)))
med = {w: (statistics.median(t for t, _ in r), statistics.median(k for _, k in r) / 1024) for w, r in rows.items()}
for w in ("ours", "theirs"):
    print(f"| {w} | {med[w][0]:.2f} s | {med[w][1]:.0f} MiB | {len(rows[w])} |")
print(f"# ratio (theirs / ours, time): {med['theirs'][0] / med['ours'][0]:.2f}x")
PY
ls -l "$out"/*.ociarchive | awk '{print "# " $5 " " $9}'
rm -rf "$out"
