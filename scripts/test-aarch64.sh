#!/usr/bin/env bash
# The same tests built for aarch64 and run under qemu-aarch64, exercising the NEON backend.
# The proptest case count is PROPTEST_CASES (default 10,000, as natively).
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_FUZZ_SETUP=1 scripts/setup.sh
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"
# tests/cli.rs runs the built binary itself: through qemu as well.
export CHUNKAH_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# The chunker's tests; tests/pack.rs (umoci, skopeo, debootstrap trees) runs natively only.
cargo test --release --locked --target aarch64-unknown-linux-gnu --lib --bins \
    --test conformance --test golden --test cli
