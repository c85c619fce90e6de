#!/usr/bin/env bash
# Installs what building and testing fleetsim needs on a fresh Debian machine (run as root):
# the Rust toolchain's rustfmt and clippy components, and Debian's chromium for the
# report.html screenshot test. Later live-mode tests add dockerd and an S3 server here.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "setup: $(cargo --version)"

# Headless Chromium renders report.html in the screenshot test (which skips without it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium for the report screenshot test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null) \
        || echo "setup: chromium could not be installed; the screenshot test will be skipped"
fi
