#!/usr/bin/env bash
# Live mode against plain clients (benches/README.md "Live mode"). Needs a running Docker
# engine, the image from `sim live prepare-image`, and an S3 server:
#   S3=127.0.0.1:9310 KEY=fleetsim SECRET=fleetsim-secret BUCKET=fleetsim-cache benches/live/measure.sh
# Prints: per-job overhead of live mode and of a plain `docker run --rm` loop; S3 throughput
# of live mode's cache steps and of curl (SigV4) PUT/GET of same-size objects.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${S3:?host:port of the S3 server}" "${KEY:?}" "${SECRET:?}" "${BUCKET:?}"
N=${N:-20}
MB=${MB:-20}
IMAGE=fleetsim/busybox:latest
SIM=target/release/sim
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

scenario() { # name concurrent cache(yes/no)
    local dir="$tmp/$1"; mkdir -p "$dir"
    {
        echo "concurrent = $2"
        echo "check_interval = 1"
        echo '[[runners]]'
        echo '  name = "bench"'
        echo '  url = "http://gitlab.example"'
        echo '  token = "glrt-benchbenchbench"'
        echo '  executor = "docker"'
        echo '  [runners.docker]'
        echo "    image = \"$IMAGE\""
        if [ "$3" = yes ]; then
            echo '  [runners.cache]'
            echo '    Type = "s3"'
            echo "    Path = \"bench-$$\""
            echo '    [runners.cache.s3]'
            echo "      ServerAddress = \"$S3\""
            echo "      AccessKey = \"$KEY\""
            echo "      SecretKey = \"$SECRET\""
            echo "      BucketName = \"$BUCKET\""
            echo '      Insecure = true'
        fi
    } > "$dir/config.toml"
    printf '[scenario]\nname = "%s"\nseed = 1\n[runner]\nconfig = "config.toml"\n[workload]\ntrace = "trace.csv"\n[gitlab]\npickup = "immediate"\n' "$1" > "$dir/scenario.toml"
    echo "job_id,project_id,created_at,duration,cache_key,cache_size,cache_changed" > "$dir/trace.csv"
    for i in $(seq 1 "$N"); do
        if [ "$3" = yes ]; then echo "$i,1,0,1,main,${MB}MB,true"; else echo "$i,1,0,1,,,"; fi
    done >> "$dir/trace.csv"
    echo "$dir/scenario.toml"
}

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== per-job overhead: $N jobs of 1 s, one at a time (concurrent 1, pickup immediate, no cache)"
s=$(scenario overhead 1 no)
$SIM live "$s" --speed 1 --out "$tmp/overhead-out" >/dev/null
wall=$(json "$tmp/overhead-out/summary.json" "d['live']['wall_s']")
echo "sim live:            wall $wall s → $(python3 -c "print(round(($wall - $N) / $N * 1000))") ms per job beyond its 1 s"
start=$(date +%s.%N)
for _ in $(seq 1 "$N"); do docker run --rm --network none "$IMAGE" sleep 1; done
end=$(date +%s.%N)
plain=$(python3 -c "print(round($end - $start, 3))")
echo "docker run --rm loop: wall $plain s → $(python3 -c "print(round(($plain - $N) / $N * 1000))") ms per job beyond its 1 s"

echo "== cache throughput: $N jobs with a ${MB} MB cache (random bytes: zip cannot shrink them)"
s=$(scenario cache 1 yes)
$SIM live "$s" --speed 1 --out "$tmp/cache-out" >/dev/null
json "$tmp/cache-out/summary.json" "'sim live: S3 GET %s MB/s, PUT %s MB/s over the requests; restore step p50 %s ms, save step p50 %s ms; %s restores, %s hits' % (d['live']['s3_down_mb_per_s'], d['live']['s3_up_mb_per_s'], d['live']['latency_ms']['cache_restore']['p50_ms'], d['live']['latency_ms']['cache_save']['p50_ms'], d['live']['cache']['restores'], d['cache']['hits'])"
head -c $((MB * 1000000)) /dev/urandom > "$tmp/blob"
put=0; get=0
for i in $(seq 1 "$N"); do
    t=$(curl -sf -o /dev/null -w '%{time_total}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$tmp/blob" "http://$S3/$BUCKET/bench-plain-$$/obj$i")
    put=$(python3 -c "print($put + $t)")
    t=$(curl -sf -o /dev/null -w '%{time_total}' --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://$S3/$BUCKET/bench-plain-$$/obj$i")
    get=$(python3 -c "print($get + $t)")
done
python3 -c "print('curl (SigV4):   GET %.1f MB/s, PUT %.1f MB/s' % ($N * $MB / $get, $N * $MB / $put))"
