#!/usr/bin/env bash
# Packing a tree of many small files: wall time and peak RSS of `chunkah pack`
# (one run per compression asked) beside `tar -cf - | zstd -3 -T2` on the same
# tree, which streams and holds nothing per file.
#
# usage: [CHUNKAH_BASELINE=OLD_BINARY] scripts/bench-many-files.sh [FILES (default 1000000)] [DIR]
#   DIR (default target/many-files-FILES) is made once and reused: FILES files
#   of 0 to 2 KiB in directories of 1,000, deterministic content. The tree is
#   read once before the figures (page cache), and with CHUNKAH_BASELINE an
#   older chunkah packs it too, in the same run.
# Needs GNU time (/usr/bin/time, package `time`), tar and zstd.
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-1000000}
dir=${2:-target/many-files-$files}
chunkah=${CHUNKAH:-target/release/chunkah}
[ -x "$chunkah" ] || cargo build --release --locked --bin chunkah >&2
for tool in /usr/bin/time tar zstd python3; do
    command -v "$tool" >/dev/null || { echo "bench-many-files: needs $tool" >&2; exit 1; }
done
if [ ! -e "$dir.complete" ]; then
    echo "bench-many-files: making $files files in $dir" >&2
    rm -rf "$dir"
    python3 - "$dir" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
# Text-like content: slices of one pseudo-random run of words.
words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta"]
state, parts = 12345, []
for k in range(400000):
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    parts.append(words[state >> 61] + b"%d" % (state >> 50))
text = b" ".join(parts)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    size, at = (state >> 33) % 2049, (state >> 8) % (len(text) - 2048)
    with open(os.path.join(d, "f%03d.txt" % (i % 1000)), "wb") as f:
        f.write(text[at:at + size])
open(root + ".complete", "w").close()
PY
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/chunkah-many-files.XXXXXX")
trap 'rm -rf "$out"' EXIT
echo "# $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $files files in $dir"
echo "# command | wall s | peak RSS MiB"
measure() {
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null
    read -r wall rss < "$out/time"
    printf '%s | %s | %d\n' "$name" "$wall" $((rss / 1024))
}
tar -C "$dir" -cf - . > /dev/null
measure "tar -cf - | zstd -3 -T2" sh -c "tar -C '$dir' -cf - . | zstd -3 -T2 -c"
for compression in ${COMPRESSIONS:-zstd}; do
    for bin in "$chunkah" ${CHUNKAH_BASELINE:-}; do
        rm -rf "$out/layout"
        measure "$bin pack --compression $compression" \
            "$bin" pack "$dir" -o "oci:$out/layout:latest" --compression "$compression" \
            --source-date-epoch 0 --quiet
    done
done
