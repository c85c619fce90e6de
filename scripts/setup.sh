#!/usr/bin/env bash
# Installs what building and testing fleetsim needs on a fresh Debian machine (run as root).
# Today that is only the Rust toolchain's rustfmt and clippy components; later live-mode
# tests add dockerd and an S3 server here.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "setup: $(cargo --version)"
