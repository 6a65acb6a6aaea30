#!/usr/bin/env bash
# Update-download baselines with the real casync and zchunk tools.
#
# Usage: scripts/bench-baselines.sh SERIES_DIR OUT_DIR
#   SERIES_DIR holds the trees v1 v2 ... (../shared/data/make-rootfs-series.sh);
#   OUT_DIR gets baselines.json and baselines.txt (the table).
# Environment:
#   VERSIONS="v1 v2 v3 v4"   trees to use, in order; steps are consecutive pairs
#   KEEP=1                   keep the intermediates (tarballs, stores, .zck) in
#                            OUT_DIR/work.*; by default they are removed
#   CASYNC_CHUNK_SIZES="..." extra casync runs on the directory trees, one per
#                            word, each passed as --chunk-size=WORD (MIN:AVG:MAX
#                            or AVG; casync's default is 16K:64K:256K already)
#
# For each step OLD -> NEW and each tool: the bytes a client holding OLD must
# download to get NEW, beside the whole of NEW in that tool's format.
#   casync-dir  `casync make --store=S vN.caidx TREE` (catar of the directory,
#               default features and chunk sizes); download = NEW's .caidx +
#               the .cacnk files of NEW's store whose chunk id OLD's store lacks
#   casync-tar  the same from the tarball (`casync make --store=S vN.caibx vN.tar`)
#   zchunk      `zck vN.tar` (defaults); download = `zck_delta_size OLD NEW`
#               (header + compressed chunks of NEW that OLD lacks)
# The tarball: GNU tar, names sorted, numeric owners, xattrs, mtimes clamped to
# 1700000000 (as `chunkah pack --source-date-epoch 1700000000`), no atime/ctime.
# Installs nothing.
set -euo pipefail

die() { echo "bench-baselines: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 SERIES_DIR OUT_DIR"
series=$(cd "$1" && pwd) || die "no such directory: $1"
out=$2
read -r -a versions <<< "${VERSIONS:-v1 v2 v3 v4}"
read -r -a extra_sizes <<< "${CASYNC_CHUNK_SIZES:-}"
(( ${#versions[@]} >= 2 )) || die "need at least two versions"
for v in "${versions[@]}"; do
    [[ -d $series/$v ]] || die "missing tree $series/$v"
done

missing=()
for t in casync zck zck_delta_size zck_read_header tar find join awk od stat; do
    command -v "$t" >/dev/null || missing+=("$t")
done
if (( ${#missing[@]} )); then
    die "missing tools: ${missing[*]}; install with: apt-get install -y casync zchunk tar findutils coreutils gawk"
fi
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 (EPOCHREALTIME)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/work.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "kept intermediates in $work" >&2
    else
        echo "removing intermediates in $work" >&2
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT

export LC_ALL=C
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
size() { stat -c %s "$1"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? 100 * a / b : 0) }'; }

start=$EPOCHREALTIME
load=$(cut -d' ' -f1-3 /proc/loadavg)
casync_version=$(casync --version 2>&1 | head -n1)
zck_version=$(zck --version 2>&1 | head -n1)
tar_version=$(tar --version | head -n1)
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
ncpu=$(nproc)

# ---------------------------------------------------------------- tarballs
declare -A tar_bytes tree_files
t0=$EPOCHREALTIME
for v in "${versions[@]}"; do
    tar --sort=name --format=posix \
        --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
        --numeric-owner --xattrs --xattrs-include='*' \
        --mtime=@1700000000 --clamp-mtime \
        -C "$series/$v" -cf "$work/$v.tar" .
    tar_bytes[$v]=$(size "$work/$v.tar")
    tree_files[$v]=$(find "$series/$v" -xdev -type f | wc -l)
done
tar_secs=$(elapsed "$t0")
echo "tarballs: ${tar_secs}s" >&2

# JSON fragments, filled in per variant.
declare -A json_versions json_steps json_meta
variants=()
rows=()   # "step<TAB>variant<TAB>download<TAB>full<TAB>percent<TAB>chunks new/total"

# ------------------------------------------------------------------ casync
# casync_index_entries FILE: chunks listed in a .caidx/.caibx (48-byte index
# header, 16-byte table header, 40-byte items, 40-byte table tail).
casync_index_entries() {
    local s; s=$(size "$1")
    (( (s - 104) % 40 == 0 )) || die "unexpected casync index size $s: $1"
    echo $(( (s - 104) / 40 ))
}
# casync_index_bytes FILE: end offset of the last item = bytes the index covers.
casync_index_bytes() {
    local s; s=$(size "$1")
    od -An -tu8 -j $(( s - 80 )) -N8 "$1" | tr -d ' '
}
# casync_index_ids FILE: the chunk id of every index item, in order.
casync_index_ids() {
    local s; s=$(size "$1")
    od -An -v -tx1 -w40 -j64 -N$(( s - 104 )) "$1" \
        | awk '{ id = ""; for (i = 9; i <= 40; i++) id = id $i; print id }'
}
# store_list STORE: "chunkid<TAB>bytes", sorted.
store_list() {
    find "$1" -type f -name '*.cacnk' -printf '%f\t%s\n' | sed 's/\.cacnk\t/\t/' | sort
}

run_casync() { # variant kind(dir|tar) chunk-size-or-empty
    local variant=$1 kind=$2 cs=$3 v ext idx store opts=() t0 make_secs diff_secs
    local d="$work/$variant"
    mkdir -p "$d"
    [[ -n $cs ]] && opts+=("--chunk-size=$cs")
    [[ $kind == dir ]] && ext=caidx || ext=caibx
    t0=$EPOCHREALTIME
    for v in "${versions[@]}"; do
        idx="$d/$v.$ext"
        store="$d/$v.castr"
        if [[ $kind == dir ]]; then
            casync make "${opts[@]}" --store="$store" "$idx" "$series/$v" >"$d/$v.log" 2>&1 \
                || { cat "$d/$v.log" >&2; die "casync make failed for $v"; }
        else
            casync make "${opts[@]}" --store="$store" "$idx" "$work/$v.tar" >"$d/$v.log" 2>&1 \
                || { cat "$d/$v.log" >&2; die "casync make failed for $v"; }
        fi
    done
    make_secs=$(elapsed "$t0")

    t0=$EPOCHREALTIME
    local js="" prev="" ib entries covered distinct chunk_bytes full
    for v in "${versions[@]}"; do
        idx="$d/$v.$ext"
        store_list "$d/$v.castr" > "$d/$v.lst"
        ib=$(size "$idx")
        entries=$(casync_index_entries "$idx")
        covered=$(casync_index_bytes "$idx")
        read -r distinct chunk_bytes < <(awk -F'\t' '{ n++; s += $2 } END { print n + 0, s + 0 }' "$d/$v.lst")
        full=$(( ib + chunk_bytes ))
        js+="${js:+,}\"$v\":{\"indexBytes\":$ib,\"chunks\":$entries,\"distinctChunks\":$distinct,"
        js+="\"chunkBytes\":$chunk_bytes,\"fullBytes\":$full,\"uncompressedBytes\":$covered,"
        js+="\"avgChunkBytes\":$(( covered / entries ))}"
    done
    json_versions[$variant]=$js

    js=""
    local new_n new_b dl distinct_new rep_n rep_b
    for v in "${versions[@]}"; do
        if [[ -n $prev ]]; then
            idx="$d/$v.$ext"
            ib=$(size "$idx")
            read -r new_n new_b < <(join -t $'\t' -v1 "$d/$v.lst" "$d/$prev.lst" \
                | awk -F'\t' '{ n++; s += $2 } END { print n + 0, s + 0 }')
            read -r distinct_new chunk_bytes < <(awk -F'\t' '{ n++; s += $2 } END { print n + 0, s + 0 }' "$d/$v.lst")
            # Index items whose chunk OLD lacks, repeats counted: what a
            # client that fetches every such item separately would get.
            read -r rep_n rep_b < <(casync_index_ids "$idx" | awk -F'\t' '
                FILENAME == ARGV[1] { old[$1] = 1; next }
                FILENAME == ARGV[2] { sz[$1] = $2; next }
                !($1 in old) { n++; s += sz[$1] }
                END { print n + 0, s + 0 }' "$d/$prev.lst" "$d/$v.lst" -)
            dl=$(( ib + new_b ))
            full=$(( ib + chunk_bytes ))
            js+="${js:+,}\"$prev->$v\":{\"downloadBytes\":$dl,\"fullBytes\":$full,\"percent\":$(pct "$dl" "$full"),"
            js+="\"indexBytes\":$ib,\"newChunks\":$new_n,\"newChunkBytes\":$new_b,\"distinctChunks\":$distinct_new,"
            js+="\"missingIndexItems\":$rep_n,\"downloadBytesRepeatsCounted\":$(( ib + rep_b ))}"
            rows+=("$prev->$v"$'\t'"$variant"$'\t'"$dl"$'\t'"$full"$'\t'"$(pct "$dl" "$full")"$'\t'"$new_n/$distinct_new")
        fi
        prev=$v
    done
    diff_secs=$(elapsed "$t0")
    json_steps[$variant]=$js
    local avg_opt=${cs:-default}
    json_meta[$variant]="\"tool\":\"casync\",\"input\":\"$( [[ $kind == dir ]] && echo "directory tree (.caidx)" || echo "tarball (.caibx)")\",\"chunkSize\":\"$avg_opt\",\"compression\":\"zstd (casync default, level 3)\",\"wallSeconds\":{\"make\":$make_secs,\"diff\":$diff_secs}"
    variants+=("$variant")
    echo "$variant: make ${make_secs}s, diff ${diff_secs}s" >&2
}

run_casync casync-dir dir ""
run_casync casync-tar tar ""
for cs in "${extra_sizes[@]}"; do
    run_casync "casync-dir@$cs" dir "$cs"
done

# ------------------------------------------------------------------ zchunk
# zck_chunks FILE: "digest<TAB>compressed<TAB>uncompressed" per data chunk
# (the empty dictionary chunk 0 is left out).
zck_chunks() {
    zck_read_header -c "$1" | awk 'NF == 5 && $1 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ && !($1 == 0 && $5 == 0) { print $2 "\t" $4 "\t" $5 }'
}
zck_header_size() {
    zck_read_header "$1" | sed -n 's/^Header size: *//p'
}

run_zchunk() {
    local variant=zchunk d="$work/zchunk" v t0 make_secs diff_secs
    mkdir -p "$d"
    t0=$EPOCHREALTIME
    for v in "${versions[@]}"; do
        zck -o "$d/$v.zck" "$work/$v.tar" >"$d/$v.log" 2>&1 \
            || { cat "$d/$v.log" >&2; die "zck failed for $v"; }
    done
    make_secs=$(elapsed "$t0")

    t0=$EPOCHREALTIME
    local js="" hs n unc full
    for v in "${versions[@]}"; do
        zck_chunks "$d/$v.zck" > "$d/$v.chunks"
        sort -u -k1,1 "$d/$v.chunks" > "$d/$v.distinct"
        hs=$(zck_header_size "$d/$v.zck")
        read -r n unc < <(awk -F'\t' '{ n++; s += $3 } END { print n + 0, s + 0 }' "$d/$v.chunks")
        full=$(size "$d/$v.zck")
        js+="${js:+,}\"$v\":{\"headerBytes\":$hs,\"chunks\":$n,\"distinctChunks\":$(wc -l < "$d/$v.distinct"),"
        js+="\"fullBytes\":$full,\"uncompressedBytes\":$unc,\"avgChunkBytes\":$(( unc / n ))}"
    done
    json_versions[$variant]=$js

    # Does zck_delta_size count the header? Comparing a file with itself
    # leaves nothing but what it always adds.
    local self includes_header
    self=$(zck_delta_size "$d/${versions[0]}.zck" "$d/${versions[0]}.zck" | sed -n 's/^Would download \([0-9]*\) of.*/\1/p')
    hs=$(zck_header_size "$d/${versions[0]}.zck")
    if [[ $self == "$hs" ]]; then includes_header=true
    elif [[ $self == 0 ]]; then includes_header=false
    else die "zck_delta_size of a file against itself gave $self (header $hs)"
    fi

    js=""
    local prev="" outp would total matched count dl distinct_dl distinct_new distinct_bytes distinct_total
    for v in "${versions[@]}"; do
        if [[ -n $prev ]]; then
            outp=$(zck_delta_size "$d/$prev.zck" "$d/$v.zck")
            read -r would total < <(sed -n 's/^Would download \([0-9]*\) of \([0-9]*\) bytes.*/\1 \2/p' <<< "$outp")
            read -r matched count < <(sed -n 's/^Matched \([0-9]*\) of \([0-9]*\) chunks.*/\1 \2/p' <<< "$outp")
            [[ -n ${would:-} && -n ${matched:-} ]] || die "unexpected zck_delta_size output: $outp"
            hs=$(zck_header_size "$d/$v.zck")
            full=$(size "$d/$v.zck")
            [[ $includes_header == true ]] && dl=$would || dl=$(( would + hs ))
            # Cross-check: header + distinct chunks of NEW that OLD lacks
            # (zck_delta_size counts a repeated missing chunk each time).
            read -r distinct_new distinct_bytes < <(join -t $'\t' -v1 "$d/$v.distinct" "$d/$prev.distinct" \
                | awk -F'\t' '{ n++; s += $2 } END { print n + 0, s + 0 }')
            distinct_dl=$(( hs + distinct_bytes ))
            distinct_total=$(wc -l < "$d/$v.distinct")
            js+="${js:+,}\"$prev->$v\":{\"downloadBytes\":$dl,\"fullBytes\":$full,\"percent\":$(pct "$dl" "$full"),"
            js+="\"headerBytes\":$hs,\"zckDeltaSizeOutput\":{\"wouldDownload\":$would,\"ofBytes\":$total,"
            js+="\"matchedChunks\":$matched,\"chunkCount\":$count},\"downloadBytesDistinctChunks\":$distinct_dl,"
            js+="\"newChunks\":$distinct_new,\"distinctChunks\":$distinct_total}"
            rows+=("$prev->$v"$'\t'"$variant"$'\t'"$dl"$'\t'"$full"$'\t'"$(pct "$dl" "$full")"$'\t'"$distinct_new/$distinct_total")
        fi
        prev=$v
    done
    diff_secs=$(elapsed "$t0")
    json_steps[$variant]=$js
    json_meta[$variant]="\"tool\":\"zchunk\",\"input\":\"tarball (.zck)\",\"chunkSize\":\"default (buzhash, 8K/32K/128K)\",\"compression\":\"zstd per chunk (zchunk default, level 9)\",\"deltaSizeIncludesHeader\":$includes_header,\"wallSeconds\":{\"make\":$make_secs,\"diff\":$diff_secs}"
    variants+=("$variant")
    echo "$variant: make ${make_secs}s, diff ${diff_secs}s" >&2
}
run_zchunk

# ------------------------------------------------------------------- output
table() {
    printf '| step | tool | download bytes | full bytes | percent | distinct chunks new/all |\n'
    printf '|---|---|---:|---:|---:|---:|\n'
    printf '%s\n' "${rows[@]}" | sort -s -t $'\t' -k1,1 \
        | awk -F'\t' '
            function commas(n,   s) { s = sprintf("%d", n); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
            { sub("->", " → ", $1); printf "| %s | %s | %s | %s | %s%% | %s |\n", $1, $2, commas($3), commas($4), $5, $6 }'
}
table | tee "$out/baselines.txt"

{
    printf '{"schemaVersion":1,"generated":"%s","series":"%s",' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$series"
    printf '"machine":{"nproc":%s,"cpu":"%s","loadAverageAtStart":"%s"},' "$ncpu" "$cpu" "$load"
    printf '"wallSeconds":%s,' "$(elapsed "$start")"
    printf '"toolVersions":{"casync":"%s","zchunk":"%s","tar":"%s"},' "$casync_version" "$zck_version" "$tar_version"
    printf '"tarball":{"wallSeconds":%s,"versions":{' "$tar_secs"
    sep=""
    for v in "${versions[@]}"; do
        printf '%s"%s":{"tarBytes":%s,"regularFiles":%s}' "$sep" "$v" "${tar_bytes[$v]}" "${tree_files[$v]}"
        sep=","
    done
    printf '}},"tools":{'
    sep=""
    for var in "${variants[@]}"; do
        printf '%s"%s":{%s,"versions":{%s},"steps":{%s}}' "$sep" "$var" "${json_meta[$var]}" "${json_versions[$var]}" "${json_steps[$var]}"
        sep=","
    done
    printf '}}\n'
} > "$out/baselines.json"
echo "wrote $out/baselines.json and $out/baselines.txt" >&2
