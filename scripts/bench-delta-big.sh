#!/usr/bin/env bash
# Binary deltas on a big tree: this machine's /usr (about 5 GB) against a
# copy in which every tenth regular file (in path order) has one byte
# changed in its middle and 16 bytes appended. Packs both, then reports
# time and peak RSS of `chunkah delta` and of `apply` with the delta, and
# the delta's size beside the chunk level.
# Usage: scripts/bench-delta-big.sh [TREE]   (default /usr)
# DELTA_LEVEL=N sets `chunkah delta --level` (default 19): apply's memory
# does not depend on it (parts are bounded in content and reference alike).
set -euo pipefail
cd "$(dirname "$0")/.."
tree="${1:-/usr}"
work="${BENCH_DIR:-/work/chunkah-delta-big}"
cargo build --release --locked --bin chunkah >&2
bin="$PWD/target/release/chunkah"
rm -rf "$work"
mkdir -p "$work"
lscpu | grep -E 'Model name' | sed 's/^/# /'
cp -a "$tree" "$work/new"
python3 - "$work/new" <<'EOF'
import os, sys
root = sys.argv[1]
files = []
for d, dirs, names in os.walk(root):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(p)
changed = 0
for p in sorted(files)[::10]:
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        if size:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x5A]))
        f.seek(0, 2)
        f.write(b"chunkah-changed!")
    changed += 1
print(f"# {changed} of {len(files)} files changed", file=sys.stderr)
EOF
du -sb "$tree" "$work/new" | sed 's/^/# /'
layout="$work/images"
/usr/bin/time -f "pack old: %e s, peak RSS %M KiB" \
    "$bin" pack "$tree" -o "oci:$layout:old" --source-date-epoch 0 --quiet
/usr/bin/time -f "pack new: %e s, peak RSS %M KiB" \
    "$bin" pack "$work/new" -o "oci:$layout:new" --source-date-epoch 0 --quiet --prior "oci:$layout:old"
/usr/bin/time -f "delta: %e s, peak RSS %M KiB" \
    "$bin" delta "oci:$layout:old" "oci:$layout:new" --level "${DELTA_LEVEL:-19}" --quiet --json >"$work/delta.json"
python3 -c "import json; d=json.load(open('$work/delta.json')); print('delta size', d['size'], 'parts', d['parts'], 'missing (chunk) bytes', d['stats']['missingBytes'])"
"$bin" diff "oci:$layout:old" "oci:$layout:new"
/usr/bin/time -f "apply with the delta: %e s, peak RSS %M KiB" \
    "$bin" apply --from "oci:$layout:old" --source "oci:$layout:new" -o "oci:$work/out-d:new" >/dev/null
/usr/bin/time -f "apply by ranges: %e s, peak RSS %M KiB" \
    "$bin" apply --from "oci:$layout:old" --source "oci:$layout:new" -o "oci:$work/out-r:new" --no-delta >/dev/null
rm -rf "$work"
