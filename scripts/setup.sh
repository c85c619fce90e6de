#!/usr/bin/env bash
# Installs what building and testing fleetsim needs on a fresh Debian machine (run as root):
# the Rust toolchain's rustfmt and clippy components, Debian's chromium for the
# report.html screenshot test, and for the live-mode tests a Docker engine (Debian's
# docker.io), a static busybox for the job image (busybox-static) and an S3 server
# (s3s-fs from crates.io). scripts/test.sh starts the servers.
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

# Live mode (README "Live mode"): dockerd, a static busybox for `sim live prepare-image`,
# and an S3-compatible server. Installed once; later runs reuse them.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    need=""
    command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
    dpkg -s busybox-static >/dev/null 2>&1 || need="$need busybox-static"
    if [ -n "$need" ]; then
        echo "setup: installing$need for the live-mode tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
    fi
fi
# s3s-fs 0.14.1 is the last release that builds with Rust 1.95; it builds in under 2 minutes.
S3S_VERSION=0.14.1
if ! command -v s3s-fs >/dev/null 2>&1 || ! s3s-fs --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    echo "setup: installing s3s-fs $S3S_VERSION (S3 server for the live-mode tests)"
    cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked --quiet
fi
echo "setup: $(command -v dockerd || echo 'no dockerd'), $(s3s-fs --version 2>/dev/null || echo 'no s3s-fs')"
