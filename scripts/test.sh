#!/usr/bin/env bash
# The test suite: unit, conformance (proptest, 10,000 cases), golden vectors, CLI,
# pack round trips through umoci and skopeo on a synthetic tree and on real Debian
# trees, doc tests. Needs root (devices, owners, debootstrap), as CI has.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_FUZZ_SETUP=1 scripts/setup.sh
# Real Debian root file systems (v1..v4), built once by the shared script.
if [ -z "${CHUNKAH_SERIES_DIR:-}" ]; then
    export CHUNKAH_SERIES_DIR="$PWD/target/series"
    series_script="$(cd .. && pwd)/shared/data/make-rootfs-series.sh"
    echo "test: building the Debian series in $CHUNKAH_SERIES_DIR" >&2
    bash "$series_script" "$CHUNKAH_SERIES_DIR" >&2
fi
cargo test --release --all-targets --locked
# The binary chunkah's Containerfile builds, by its own command.
containerfile_build=$(sed -n 's/^RUN \(cargo build [^\\&]*[^ \\&]\).*/\1/p' Containerfile)
[ "$containerfile_build" = "cargo build --release --locked --bin chunkah" ] || {
    echo "test: unexpected build command in Containerfile: $containerfile_build" >&2
    exit 1
}
$containerfile_build
cargo test --release --doc --locked
