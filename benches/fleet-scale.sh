#!/usr/bin/env bash
# Issue 15's scale series in one run: for docker+machine and docker-autoscaler, fleets of 10
# to 10,000 single-slot machines at 60 % load (benches/src/lib.rs `FleetScale`); and 1 to 500
# tagged `[[runners]]` entries on one manager (`RunnerScale`), without job request latency and
# with the scenarios' default 300 ms (`runners_latency`). One process per size, so each
# peak RSS is its own. Prints a Markdown table: jobs per second, time per job relative to the
# smallest size, and peak RSS (GNU time's %M).
#
# The sizes of a series run in turn, ROUNDS times over, and each size keeps its fastest run:
# on a shared 2-core machine one run varies by ±20 %, and what another process took from a
# run says nothing of the simulator (the inputs are the same in every round).
#
#   benches/fleet-scale.sh [JOBS] [ROUNDS]      (defaults 300000 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-300000}"
rounds="${2:-5}"
cargo build --release -q -p fleetsim-benches --example fleet_scale
bin=target/release/examples/fleet_scale
echo "| series | size | jobs | inputs | wall time (best of $rounds) | jobs/s | per job vs the smallest | peak RSS |"
echo "|---|---|---|---|---|---|---|---|"
for series in docker_machine docker_autoscaler runners runners_latency; do
    sizes="10 100 1000 10000"
    case "$series" in runners*) sizes="1 10 100 500" ;; esac
    declare -A best=() line=() rss=()
    for _ in $(seq "$rounds"); do
        for size in $sizes; do
            out=$( { /usr/bin/time -f "rss %M" "$bin" "$series" "$size" "$jobs"; } 2>&1 )
            l=$(grep "^$series " <<<"$out")
            secs=$(awk '{print $(NF-3)}' <<<"$l")
            kb=$(awk '/^rss/ {print $2}' <<<"$out")
            if [ -z "${best[$size]:-}" ] || awk -v a="$secs" -v b="${best[$size]}" 'BEGIN {exit !(a < b)}'; then
                best[$size]=$secs
                line[$size]=$l
            fi
            [ "${rss[$size]:-0}" -ge "$kb" ] || rss[$size]=$kb
        done
    done
    base=""
    for size in $sizes; do
        secs=${best[$size]}
        inputs=$(sed -E 's/.*inputs=([0-9]+).*/\1/' <<<"${line[$size]}")
        done_jobs=$(sed -E 's/.*jobs=([0-9]+).*/\1/' <<<"${line[$size]}")
        rate=$(awk -v j="$done_jobs" -v s="$secs" 'BEGIN {printf "%.0f", j / s}')
        mb=$(awk -v k="${rss[$size]}" 'BEGIN {printf "%.1f MB", k / 1024}')
        [ -n "$base" ] || base="$secs"
        rel=$(awk -v a="$secs" -v b="$base" 'BEGIN {printf "%.2f×", a / b}')
        echo "| $series | $size | $done_jobs | $inputs | $secs s | $rate | $rel | $mb |"
    done
    unset best line rss
done
