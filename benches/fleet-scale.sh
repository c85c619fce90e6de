#!/usr/bin/env bash
# Issue 15's scale series in one run: for docker+machine and docker-autoscaler, fleets of 10
# to 10,000 single-slot machines at 60 % load (benches/src/lib.rs `FleetScale`); and 1 to 500
# tagged `[[runners]]` entries on one manager (`RunnerScale`). One process per size, so each
# peak RSS is its own. Prints a Markdown table: jobs per second, time per job relative to the
# smallest size, and peak RSS (GNU time's %M).
#
#   benches/fleet-scale.sh [JOBS]      (default 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-300000}"
cargo build --release -q -p fleetsim-benches --example fleet_scale
bin=target/release/examples/fleet_scale
echo "| series | size | jobs | inputs | wall time | jobs/s | per job vs the smallest | peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
for series in docker_machine docker_autoscaler runners; do
    base=""
    sizes="10 100 1000 10000"
    [ "$series" = runners ] && sizes="1 10 100 500"
    for size in $sizes; do
        out=$( { /usr/bin/time -f "rss %M" "$bin" "$series" "$size" "$jobs"; } 2>&1 )
        line=$(grep "^$series " <<<"$out")
        rss=$(awk '/^rss/ {printf "%.1f MB", $2 / 1024}' <<<"$out")
        secs=$(awk '{print $(NF-3)}' <<<"$line")
        inputs=$(sed -E 's/.*inputs=([0-9]+).*/\1/' <<<"$line")
        rate=$(awk '{print $(NF-1)}' <<<"$line")
        done_jobs=$(sed -E 's/.*jobs=([0-9]+).*/\1/' <<<"$line")
        [ -n "$base" ] || base="$secs"
        rel=$(awk -v a="$secs" -v b="$base" 'BEGIN {printf "%.2f×", a / b}')
        echo "| $series | $size | $done_jobs | $inputs | $secs s | $rate | $rel | $rss |"
    done
done
