#!/usr/bin/env bash
# Installs what the whole test suite needs, when it is missing. `scripts/test.sh` (the README's
# test command) runs this first, so a newcomer never has to; running it alone is harmless.
#
# As root on Debian (apt-get present) it installs, once:
#   - Debian's docker.io (dockerd) and busybox-static: the live-mode tests run real containers
#     from a locally built busybox image (no registry is needed);
#   - Debian's chromium and fonts-dejavu-core: the report.html screenshot test;
#   - s3s-fs 0.14.1 from crates.io: the S3 server of the live-mode tests (compiled from source);
#   - rustup's rustfmt and clippy components, for .ci/run.
# Each step says what it does and how long it takes the first time; when everything is there the
# script takes about a second.
#
# Without root or apt-get it installs nothing, and prints nothing but one line saying which
# command would install the servers; scripts/test.sh then runs every test that needs no server.
#
# Exit status: 0 when everything is installed (or nothing could be, without root), 1 when an
# install was attempted and failed.
set -euo pipefail

# s3s-fs 0.14.1 is the last release that builds with Rust 1.95.
S3S_VERSION=0.14.1
# The apt packages and the command that tells each is there.
APT_PACKAGES=(docker.io busybox-static chromium fonts-dejavu-core)

say() { echo "setup: $*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing; install Rust 1.95 or newer (https://rustup.rs), then run scripts/test.sh again" >&2
    exit 1
fi

can_install=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then can_install=1; fi

missing_apt=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$pkg")
done
s3s_ok=0
if command -v s3s-fs >/dev/null 2>&1 && s3s-fs --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    s3s_ok=1
fi

if [ "$can_install" = 0 ]; then
    if [ "${#missing_apt[@]}" -gt 0 ] || [ "$s3s_ok" = 0 ]; then
        missing="${missing_apt[*]}"
        [ "$s3s_ok" = 1 ] || missing="${missing:+$missing }s3s-fs"
        skipped=""
        case " $missing " in *" docker.io "*|*" busybox-static "*|*" s3s-fs "*) skipped="the live-mode tests" ;; esac
        case " $missing " in *" chromium "*) skipped="${skipped:+$skipped and }the report screenshot test" ;; esac
        say "not root with apt-get, so nothing is installed (missing: $missing); ${skipped:-some tests} will be skipped. To install everything: sudo scripts/setup.sh"
    fi
    exit 0
fi

if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

if [ "${#missing_apt[@]}" -gt 0 ]; then
    start=$SECONDS
    say "installing ${missing_apt[*]} with apt-get (about 1 to 3 minutes the first time; chromium is the largest)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq; then
        say "apt-get update failed; see above" >&2
        exit 1
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null; then
        say "apt-get install ${missing_apt[*]} failed; see above" >&2
        exit 1
    fi
    say "apt packages installed in $((SECONDS - start)) s"
fi

if [ "$s3s_ok" = 0 ]; then
    start=$SECONDS
    say "compiling the S3 server s3s-fs $S3S_VERSION from crates.io (about 2 to 5 minutes on 2 cores, once)"
    # A progress line every 30 s, so a long compile never looks hung.
    (
        while sleep 30; do say "  ... still compiling s3s-fs ($((SECONDS - start)) s)"; done
    ) &
    ticker=$!
    status=0
    cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked --quiet || status=$?
    kill "$ticker" 2>/dev/null || true
    wait "$ticker" 2>/dev/null || true
    if [ "$status" != 0 ]; then
        say "cargo install s3s-fs failed (exit $status); see above" >&2
        exit 1
    fi
    say "s3s-fs installed in $((SECONDS - start)) s"
fi

say "ready: $(command -v dockerd), $(s3s-fs --version 2>/dev/null | head -1), $(command -v chromium)"
