#!/usr/bin/env bash
# pack wall time beside `tar | zstd` on the same tree, and pack's peak RSS.
# Usage: scripts/bench-pack.sh TREE...   (e.g. /work/series/v3 /usr)
# With CHUNKAH_BASELINE=/path/to/an/older/chunkah, that binary packs the same
# tree in the same hyperfine run, and its median is reported beside ours.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
cargo build --release --locked --bin chunkah
work="${BENCH_DIR:-/tmp/chunkah-bench}"
mkdir -p "$work"
for tree in "$@"; do
    echo "## $tree"
    tar -cf - -C "$tree" . > /dev/null 2>&1 || true   # page cache
    pack_args="$tree -o oci:$work/pack-layout --compression zstd --compression-level 3 --threads 2 --quiet"
    baseline=()
    if [ -n "${CHUNKAH_BASELINE:-}" ]; then
        baseline=(-n "baseline pack --threads 2" "$CHUNKAH_BASELINE pack $pack_args")
    fi
    # One preparation for every command: no layout left from the run before.
    hyperfine -w 1 -r "${RUNS:-5}" --prepare "rm -rf $work/pack-layout" \
        -n "tar | zstd -3 -T2" "tar -cf - -C $tree . 2>/dev/null | zstd -q -3 -T2 > /dev/null" \
        -n "chunkah pack --threads 2" \
        "target/release/chunkah pack $pack_args" \
        "${baseline[@]}" \
        --export-json "$work/pack.json"
    python3 -c 'import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
base, ours = r["tar | zstd -3 -T2"], r["chunkah pack --threads 2"]
print(f"medians: tar | zstd {base * 1000:.1f} ms, chunkah pack {ours * 1000:.1f} ms, ratio {ours / base:.2f}")
old = r.get("baseline pack --threads 2")
if old:
    print(f"baseline binary {old * 1000:.1f} ms: this build / baseline = {ours / old:.3f}")' "$work/pack.json"
    rm -rf "$work/pack-layout"
    /usr/bin/time -f "chunkah pack peak RSS: %M KiB, %e s" \
        target/release/chunkah pack "$tree" -o "oci:$work/pack-layout" --threads 2 --quiet
    rm -rf "$work/pack-layout"
done
