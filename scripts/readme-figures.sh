#!/usr/bin/env bash
# Re-measures the README's scenario tables: runs every command behind them (seed 42, release
# build) and prints each table's rows as Markdown, so a change to the model is followed by one
# command and a paste. Not part of the test suite; takes a few minutes on 2 cores.
#
#   scripts/readme-figures.sh            # all tables
#   scripts/readme-figures.sh single     # one table: single | autoscale | cache | migrate
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bin sim -q
SIM=target/release/sim
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
WHICH=${1:-all}

# run NAME SCENARIO [sim run flags...]: runs quietly into $OUT/NAME.
run() {
    local name=$1 scenario=$2
    shift 2
    "$SIM" run "$scenario" --out "$OUT/$name" "$@" >/dev/null
}

# row NAME LABEL FORMAT KEYS...: one Markdown row; FORMAT is a python format over the values.
row() {
    local name=$1 label=$2 format=$3
    shift 3
    python3 - "$OUT/$name/summary.json" "$label" "$format" "$@" <<'EOF'
import json, re, sys
summary = json.load(open(sys.argv[1]))
label, fmt, keys = sys.argv[2], sys.argv[3], sys.argv[4:]
def get(key):
    node = summary
    for part in key.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if node != {} else 0
values = [get(k) for k in keys]
cells = re.sub(r"(\d)%", r"\1 %", fmt.format(*values))  # the README writes "48.3 %"
print("| " + label + " | " + cells + " |")
EOF
}

if [[ $WHICH == all || $WHICH == single ]]; then
    s=scenarios/seed-single-server.toml
    run single "$s"
    run single-c8 "$s" --set concurrent=8
    run single-h2 "$s" --set runner.hosts=2
    run single-imm "$s" --set gitlab.pickup=immediate
    run single-lp "$s" --set gitlab.long_polling=50s
    echo "## seed-single-server: p50 | p95 | p99 | cost per 30 days"
    f='{:.1f} s | {:.1f} s | {:.1f} s | ${:.2f}'
    k=(pending.p50_s pending.p95_s pending.p99_s cost.per_month_usd)
    row single 'as configured (`concurrent = 5`)' "$f" "${k[@]}"
    row single-c8 '`--set concurrent=8`' "$f" "${k[@]}"
    row single-h2 '`--set runner.hosts=2`' "$f" "${k[@]}"
    row single-imm '`--set gitlab.pickup=immediate`' "$f" "${k[@]}"
    row single-lp '`--set gitlab.long_polling=50s`' "$f" "${k[@]}"
fi

if [[ $WHICH == all || $WHICH == autoscale ]]; then
    echo "## autoscaled seed: p50 | p95 | p99 | to script p95 | created | per 30 days"
    f='{:.1f} s | {:.1f} s | {:.1f} s | {:.1f} s | {} | ${:.2f}'
    k=(pending.p50_s pending.p95_s pending.p99_s to_script.p95_s machines.created cost.per_month_usd)
    for sc in seed-autoscale-spot seed-autoscale-spot-s3; do
        for n in 0 1 2 4; do
            run "$sc-$n" "scenarios/$sc.toml" --set "runners[0].machine.IdleCount=$n"
            row "$sc-$n" "$sc, \`IdleCount = $n\`" "$f" "${k[@]}"
        done
    done
fi

if [[ $WHICH == all || $WHICH == cache ]]; then
    echo "## caches: p95 | to script p95 | mean run | hit rate | cold/key/never | cache cost | per 30 days"
    f='{:.1f} s | {:.1f} s | {:.1f} s | {:.1%} | {} cold machine, {} key changed, {} never uploaded | ${:.2f} | ${:.2f}'
    k=(pending.p95_s to_script.p95_s utilization.mean_run_s cache.hit_rate
        cache.miss_reasons.cold_machine cache.miss_reasons.key_changed
        cache.miss_reasons.never_uploaded cache.cost_usd cost.per_month_usd)
    for sc in seed-autoscale-local-cache seed-autoscale-spot seed-autoscale-spot-s3 seed-autoscale-minio; do
        run "$sc" "scenarios/$sc.toml"
        row "$sc" "$sc" "$f" "${k[@]}"
    done
fi

if [[ $WHICH == all || $WHICH == migrate ]]; then
    echo "## migration: p50 | p95 | p99 | to script p95 | mean run | created | most at once | per 30 days"
    f='{:.1f} s | {:.1f} s | {:.1f} s | {:.1f} s | {:.1f} s | {} | {} | ${:.2f}'
    k=(pending.p50_s pending.p95_s pending.p99_s to_script.p95_s utilization.mean_run_s
        machines.created machines.max cost.per_month_usd)
    m=scenarios/seed-autoscale-migrated.toml
    a='runners[0].autoscaler'
    run dm scenarios/seed-autoscale-spot-s3.toml
    row dm 'docker+machine (seed: IdleCount 1, cache section fixed)' "$f" "${k[@]}"
    run m1 "$m"
    row m1 'capacity 1, preemptive on (migrated as is)' "$f" "${k[@]}"
    run m1z "$m" --set gitlab.request_latency=0s
    row m1z 'capacity 1, preemptive on, request latency 0 s' "$f" "${k[@]}"
    run m2 "$m" --set "$a.policy[0].preemptive_mode=false"
    row m2 'capacity 1, preemptive off' "$f" "${k[@]}"
    c2=(--set "$a.capacity_per_instance=2" --set "$a.max_instances=10" --set "$a.policy[0].idle_count=2")
    run m3 "$m" "${c2[@]}"
    row m3 'capacity 2, idle_count 2, preemptive on' "$f" "${k[@]}"
    run m4 "$m" "${c2[@]}" --set "$a.policy[0].preemptive_mode=false"
    row m4 'capacity 2, idle_count 2, preemptive off' "$f" "${k[@]}"
    run m5 "$m" "${c2[@]}" --set autoscaler.contention=0.3
    row m5 'capacity 2, preemptive on, contention 0.3' "$f" "${k[@]}"
    run m6 "$m" "${c2[@]}" --set "$a.policy[0].preemptive_mode=false" --set autoscaler.contention=0.3
    row m6 'capacity 2, preemptive off, contention 0.3' "$f" "${k[@]}"
fi
