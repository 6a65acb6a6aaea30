#!/usr/bin/env bash
# Binary deltas end to end, side by side with zstd --patch-from, for each
# consecutive pair of trees given (a series, or pairs of any trees):
#   - the trees packed by chunkah (oci layout, --prior the one before);
#   - `zstd -19 --long=28 -T2 --patch-from=old.tar new.tar` on deterministic
#     tars of the same two trees: bytes, time, peak RSS;
#   - `chunkah delta OLD NEW` (published in NEW's layout): time, peak RSS;
#   - `chunkah diff OLD NEW`: chunk and delta levels;
#   - `chunkah apply` with the delta and with --no-delta: bytes read, time,
#     peak RSS, and the rebuilt manifest digest checked against NEW's.
# Usage: scripts/bench-delta-apply.sh TREE1 TREE2 [TREE3 ...]
#        PAIRS=1 scripts/bench-delta-apply.sh A1 B1 A2 B2 ...  (independent pairs)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v zstd >/dev/null || { apt-get update -qq && apt-get install -y -qq zstd >/dev/null; }
cargo build --release --locked --bin chunkah >&2
bin="$PWD/target/release/chunkah"
work="${BENCH_DIR:-/tmp/chunkah-delta-apply}"
rm -rf "$work"
mkdir -p "$work"
lscpu | grep -E 'Model name' | sed 's/^/# /'
echo "| step | zstd --patch-from | apply reads (delta) | ratio | chunk level | zstd time / RSS | delta time / RSS | apply time / RSS (delta) | apply time / RSS (ranges) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
timed() { # FILE CMD...: runs CMD, writes "seconds kib" to FILE
    local out="$1"
    shift
    /usr/bin/time -f "%e %M" -o "$out" "$@"
}
step() { # OLD NEW I
    local old="$1" new="$2" i="$3"
    local layout="$work/images-$i"
    local a="oci:$layout:old" b="oci:$layout:new"
    "$bin" pack "$old" -o "$a" --source-date-epoch 0 --quiet
    "$bin" pack "$new" -o "$b" --source-date-epoch 0 --quiet --prior "$a"
    for t in old new; do
        local tree
        [ $t = old ] && tree="$old" || tree="$new"
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/$t.tar" -C "$tree" .
    done
    timed "$work/t.zstd" zstd -q -f -19 --long=28 -T2 --patch-from="$work/old.tar" "$work/new.tar" -o "$work/patch.zst"
    local zbytes
    zbytes=$(stat -c %s "$work/patch.zst")
    timed "$work/t.delta" "$bin" delta "$a" "$b" --quiet --json >"$work/delta.json"
    "$bin" diff "$a" "$b" --json >"$work/diff.json"
    rm -rf "$work/out-d" "$work/out-r"
    timed "$work/t.applyd" "$bin" apply --from "$a" --source "$b" -o "oci:$work/out-d:new" --json >"$work/applyd.json"
    timed "$work/t.applyr" "$bin" apply --from "$a" --source "$b" -o "oci:$work/out-r:new" --json --no-delta >"$work/applyr.json"
    python3 - "$work" "$(basename "$old") -> $(basename "$new")" "$zbytes" <<'EOF'
import json, sys
work, name, zbytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
j = lambda f: json.load(open(f"{work}/{f}"))
t = lambda f: open(f"{work}/{f}").read().split()
d, r, diff = j("applyd.json"), j("applyr.json"), j("diff.json")
assert d["manifest"] == r["manifest"], "the two applies rebuilt different images"
assert d.get("delta") and not d["fallbacks"], d
chunk = diff["levels"]["chunk"]["bytes"]
assert r["bytesRead"] == chunk
fmt = lambda n: f"{n:,}"
tz, td, tad, tar = t("t.zstd"), t("t.delta"), t("t.applyd"), t("t.applyr")
mib = lambda k: f"{int(k) / 1024:.0f} MiB"
print(f"| {name} | {fmt(zbytes)} | {fmt(d['bytesRead'])} | {d['bytesRead'] / zbytes:.2f}x | {fmt(chunk)} "
      f"| {tz[0]} s / {mib(tz[1])} | {td[0]} s / {mib(td[1])} | {tad[0]} s / {mib(tad[1])} | {tar[0]} s / {mib(tar[1])} |")
EOF
    # The rebuilt image is NEW's.
    local want got
    want=$(python3 -c "import json;print([m['digest'] for m in json.load(open('$layout/index.json'))['manifests'] if m.get('annotations',{}).get('org.opencontainers.image.ref.name')=='new'][0])")
    got=$(python3 -c "import json;print(json.load(open('$work/applyd.json'))['manifest'])")
    [ "$want" = "$got" ] || { echo "apply rebuilt $got, NEW is $want" >&2; exit 1; }
    rm -rf "$layout" "$work/out-d" "$work/out-r" "$work"/*.tar "$work/patch.zst"
}
if [ "${PAIRS:-0}" = 1 ]; then
    i=0
    while [ $# -ge 2 ]; do
        step "$1" "$2" $i
        shift 2
        i=$((i + 1))
    done
else
    args=("$@")
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
        step "${args[$i]}" "${args[$((i + 1))]}" $i
    done
fi
