#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) in total, split between targets.
set -euo pipefail
cd "$(dirname "$0")/.."
total="${1:-60}"
targets=$(cargo +nightly fuzz list)
n=$(echo "$targets" | wc -w)
each=$(( total / n ))
for t in $targets; do
    echo "fuzz: $t for ${each}s" >&2
    cargo +nightly fuzz run "$t" -- -max_total_time="$each" -rss_limit_mb=4096
done
