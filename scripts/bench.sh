#!/usr/bin/env bash
# Chunking benchmarks behind BENCHMARKS.md. Usage: scripts/bench.sh [SERIES_DIR]
#   - the kernel chosen for each algorithm (by measured speed), then the single-thread
#     throughput of every backend beside the fastcdc crate (same run),
#     on 256 MiB of random bytes and on 256 MiB of /usr/lib files (a real file mix);
#   - one 1 GiB file split over 1 and 2 threads (library, in memory);
#   - `chunkah chunk` end to end on that file in page cache, BLAKE3 digests, 1 and 2 threads;
#   - with SERIES_DIR (from ../shared/data/make-rootfs-series.sh), chunk counts and
#     new bytes per step for FastCDC and the vector algorithm.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${BENCH_DIR:-/tmp/chunkah-bench}"
mkdir -p "$work"
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --locked --examples --bin chunkah
[ -s "$work/random-1g.bin" ] || head -c $((1 << 30)) /dev/urandom > "$work/random-1g.bin"
[ -s "$work/usr-lib-mix.bin" ] || find /usr/lib -type f -print0 | sort -z | xargs -0 cat 2>/dev/null | head -c $((256 << 20)) > "$work/usr-lib-mix.bin" || true
# The machine, on x86_64 and aarch64 alike (aarch64's /proc/cpuinfo has no
# "model name" line).
echo "## machine"; uname -m; lscpu | grep -m1 -E '^(Model name|Vendor ID)' || true; nproc
echo "## random 256 MiB, one thread (median of 9)"; target/release/examples/throughput - 9
echo "## /usr/lib file mix 256 MiB, one thread (median of 9)"; target/release/examples/throughput "$work/usr-lib-mix.bin" 9
echo "## 1 GiB random file in memory, 1 and 2 threads (median of 9)"; target/release/examples/throughput "$work/random-1g.bin" 9 | grep thread
echo "## chunkah chunk on the 1 GiB file in page cache"
cat "$work/random-1g.bin" > /dev/null
hyperfine -N -w 2 -r 10 \
    "target/release/chunkah chunk --threads 1 $work/random-1g.bin" \
    "target/release/chunkah chunk --threads 2 $work/random-1g.bin" \
    "target/release/chunkah chunk --threads 2 --algorithm fastcdc $work/random-1g.bin" \
    "target/release/chunkah chunk --threads 1 --digest none $work/random-1g.bin" \
    "target/release/chunkah chunk --threads 2 --digest none $work/random-1g.bin" \
    --output=null
if [ $# -ge 1 ]; then
    echo "## series $1"
    target/release/examples/series "$1"/v1 "$1"/v2 "$1"/v3 "$1"/v4
fi
