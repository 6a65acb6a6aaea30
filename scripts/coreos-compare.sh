#!/usr/bin/env bash
# Builds coreos/chunkah from its source (a checkout or snapshot, outside
# this repository) and runs tests/coreos_output.rs against it: our `build`
# and coreos/chunkah's on the same rpm tree, compared field by field.
# Usage: scripts/coreos-compare.sh COREOS_CHUNKAH_SOURCE_DIR
# (needs pkg-config, libssl-dev, zlib1g-dev, rpm, sqlite3; Rust >= 1.92).
set -euo pipefail
src=${1:?usage: scripts/coreos-compare.sh COREOS_CHUNKAH_SOURCE_DIR}
cd "$(dirname "$0")/.."
cargo build --release --locked --manifest-path "$src/Cargo.toml" --target-dir "$src/target"
CHUNKAH_COREOS_BIN="$src/target/release/chunkah" cargo test --release --locked --test coreos_output
