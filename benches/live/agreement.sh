#!/usr/bin/env bash
# Sim against live (benches/README.md "Sim against live"): for the docker executor
# (concurrent = 4) and docker+machine (IdleCount = 1), calibrate against the engine and S3
# server at hand, then run `sim live --compare` at the given speed on the agreement trace.
# Needs a running Docker engine, the image from `sim live prepare-image`, and an S3 server:
#   S3=127.0.0.1:9310 KEY=fleetsim SECRET=fleetsim-secret BUCKET=fleetsim-cache \
#     benches/live/agreement.sh [JOBS] [SPEED]
# KINDS="docker" runs one configuration only. Prints each configuration's calibration and
# comparison table; reports in $OUT (a temp dir), with each run's whole output in live.log
# (the table is cut from it, so a run that dies still says why there).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${S3:?host:port of the S3 server}" "${KEY:?}" "${SECRET:?}" "${BUCKET:?}"
JOBS=${1:-200}
SPEED=${2:-1}
SIM=${SIM:-target/release/sim}
OUT=${OUT:-$(mktemp -d)}
IMAGE=fleetsim/busybox:latest

KINDS=${KINDS:-docker docker-machine}

for kind in $KINDS; do
    dir="$OUT/$kind-$JOBS-x$SPEED"; mkdir -p "$dir"
    python3 benches/live/agreement_trace.py "$JOBS" > "$dir/trace.csv"
    {
        echo "concurrent = 4"
        echo "check_interval = 3"
        echo '[[runners]]'
        echo "  name = \"$kind\""
        echo '  url = "http://gitlab.example"'
        echo '  token = "glrt-agreementxyz"'
        if [ "$kind" = docker ]; then
            echo '  executor = "docker"'
        else
            echo '  executor = "docker+machine"'
            echo '  limit = 4'
            echo '  [runners.machine]'
            echo '    IdleCount = 1'
            echo '    IdleTime = 60'
            echo '    MachineDriver = "amazonec2"'
            echo '    MachineName = "runner-%s"'
            echo '    MachineOptions = ["amazonec2-region=ap-northeast-2", "amazonec2-instance-type=t2.medium"]'
        fi
        echo '  [runners.docker]'
        echo "    image = \"$IMAGE\""
        echo '  [runners.cache]'
        echo '    Type = "s3"'
        # A fresh prefix: objects of an earlier run would make this one start warm.
        echo "    Path = \"agreement-$(date +%s%N)\""
        echo '    [runners.cache.s3]'
        echo "      ServerAddress = \"$S3\""
        echo "      AccessKey = \"$KEY\""
        echo "      SecretKey = \"$SECRET\""
        echo "      BucketName = \"$BUCKET\""
        echo '      Insecure = true'
    } > "$dir/config.toml"
    {
        echo '[scenario]'
        echo "name = \"agreement-$kind\""
        echo 'seed = 5'
        echo '[runner]'
        echo 'config = "config.toml"'
        echo '[workload]'
        echo 'trace = "trace.csv"'
        if [ "$kind" = docker-machine ]; then
            echo '[cloud]'
            echo 'boot_time = "3s"'
            echo 'removal_time = "1s"'
        fi
        echo '[calibration]'
        echo 'file = "calibration.toml"'
    } > "$dir/scenario.toml"
    echo "== $kind, $JOBS jobs, --speed $SPEED"
    $SIM live calibrate "$dir/scenario.toml" --speed "$SPEED" --out "$dir/calibration.toml"
    status=0
    $SIM live "$dir/scenario.toml" --speed "$SPEED" --compare --out "$dir/live" \
        > "$dir/live.log" 2>&1 || status=$?
    sed -n '/^metric/,/^sim reports/p' "$dir/live.log"
    if [ "$status" != 0 ]; then
        echo "sim live failed (exit $status); its last lines ($dir/live.log):"
        tail -n 20 "$dir/live.log"
        exit "$status"
    fi
done
echo "reports in $OUT"
