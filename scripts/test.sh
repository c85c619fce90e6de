#!/usr/bin/env bash
# The whole test suite (README: "Run the tests"). Release mode: the queueing-theory
# validation simulates millions of jobs, and `sim run` shares the same build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release "$@"
