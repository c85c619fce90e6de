#!/usr/bin/env bash
# Runs every scenario in scenarios/ with two `sim` binaries and compares their report folders
# byte for byte (the check behind "every report is byte-identical" in benches/README.md):
#
#   cargo build --release --bin sim && cp target/release/sim /tmp/sim-new
#   git stash; cargo build --release --bin sim; cp target/release/sim /tmp/sim-old; git stash pop
#   benches/same-outputs.sh /tmp/sim-old /tmp/sim-new
#
# Exit status 1 if any exit code or file differs.
set -u
old=$1
new=$2
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rc=0
for s in scenarios/*.toml; do
    case "$s" in *.config.toml) continue ;; esac
    n=$(basename "$s" .toml)
    "$old" run "$s" --out "$work/old/$n" >/dev/null 2>&1
    a=$?
    "$new" run "$s" --out "$work/new/$n" >/dev/null 2>&1
    b=$?
    if [ "$a" != "$b" ]; then
        echo "$n: exit $a against $b"
        rc=1
    fi
    if diff -r "$work/old/$n" "$work/new/$n" >/dev/null; then
        echo "$n: same"
    else
        echo "$n: DIFFERS"
        diff -rq "$work/old/$n" "$work/new/$n"
        rc=1
    fi
done
exit $rc
