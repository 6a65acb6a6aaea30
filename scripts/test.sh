#!/usr/bin/env bash
# The test suite: unit, conformance (proptest, 10,000 cases), golden vectors, CLI, doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP_FUZZ_SETUP=1 scripts/setup.sh
cargo test --release --all-targets --locked
cargo test --release --doc --locked
