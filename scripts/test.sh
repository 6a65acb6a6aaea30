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
cargo test --release --doc --locked
