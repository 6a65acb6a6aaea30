#!/usr/bin/env bash
# Binary deltas between consecutive trees of a series, side by side:
# `zstd -19 --long=28 -T2 --patch-from=old.tar new.tar` on tars of the two
# trees, and examples/delta_series.rs (per-file patches against a reference
# file of OLD, the rest as one solid stream).
# Usage: scripts/bench-deltas.sh TREE1 TREE2 ...   (e.g. target/series/v1 ... v4)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
cargo build --release --locked --example delta_series
work="${BENCH_DIR:-/tmp/chunkah-deltas}"
mkdir -p "$work"
tars=()
for tree in "$@"; do
    t="$work/$(echo "$tree" | tr / _).tar"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$t" -C "$tree" .
    tars+=("$t")
done
for ((i = 1; i < $#; i++)); do
    old="${!i}"
    j=$((i + 1))
    new="${!j}"
    echo "## $old -> $new"
    /usr/bin/time -f "zstd --patch-from: %e s, peak RSS %M KiB" \
        zstd -q -f -19 --long=28 -T2 --patch-from="${tars[$((i - 1))]}" "${tars[$i]}" -o "$work/patch.zst"
    echo "zstd --patch-from: $(stat -c %s "$work/patch.zst") bytes"
    /usr/bin/time -f "delta_series: %e s, peak RSS %M KiB" \
        target/release/examples/delta_series "$old" "$new" "${LEVEL:-19}"
done
rm -f "${tars[@]}" "$work/patch.zst"
