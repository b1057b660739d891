#!/usr/bin/env bash
# disco-real.sh measures discovery against a real Prometheus (not run by CI; `make bench-disco-real`):
# for each series count it backfills the discovery benchmark's series set (the fake's: 100 counters
# bench_disco_<f>_total with labels code container endpoint instance job namespace pod service) with
# `promtool tsdb create-blocks-from openmetrics`, starts Prometheus on that data directory, times
# Prometheus serving /api/v1/series for the default config's seriesQueries (curl), then runs
# test/bench/cmd/discobench with --discovery=series and --discovery=index and prints its JSON.
#
# Environment:
#   BENCH_DISCO_REAL="210000 1050000"   series counts
#   BENCH_PORT=29710                    Prometheus' port (127.0.0.1)
#   BENCH_DIR=/tmp/disco-real           work directory (data is kept per count for reruns)
#   PROMETHEUS=prometheus PROMTOOL=promtool
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${BENCH_DISCO_REAL-210000 1050000}
PORT=${BENCH_PORT:-29710}
DIR=${BENCH_DIR:-/tmp/disco-real}
PROMETHEUS=${PROMETHEUS:-prometheus}
PROMTOOL=${PROMTOOL:-promtool}
URL=http://127.0.0.1:$PORT
mkdir -p "$DIR/bin"
log() { echo "== $*" >&2; }

go build -o "$DIR/bin/" ./test/bench/cmd/discobench

# gen N TS writes the OpenMetrics text of N series, one sample each at Unix time TS.
gen() {
  awk -v n="$1" -v ts="$2" 'BEGIN {
    split("200 404 500 503", codes, " ")
    for (f = 0; f < 100; f++) {
      count = int(n / 100); if (f < n % 100) count++
      printf "# TYPE bench_disco_%d counter\n", f
      for (j = 0; j < count; j++) {
        pod = int(j / 4)
        printf "bench_disco_%d_total{code=\"%s\",container=\"app\",endpoint=\"http-metrics\",instance=\"10.%d.%d.%d:8080\",job=\"kubernetes-pods\",namespace=\"ns-%d\",pod=\"pod-%d\",service=\"svc-%d\"} %d %d\n",
          f, codes[j % 4 + 1], int(pod / 65536) % 256, int(pod / 256) % 256, pod % 256, pod % 100, pod, pod % 50, f + j % 7, ts
      }
    }
    print "# EOF"
  }'
}

PROM_PID=
stop() { if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; PROM_PID=; fi; }
trap stop EXIT

# The default config's seriesQueries (config/promgate.yaml).
QUERIES=(
  'http_requests_total{namespace!="",pod!=""}'
  '{__name__=~"^.+_total$",__name__!~"^(http_requests_total|container_.*)$",namespace!="",pod!=""}'
  '{__name__=~"^queue_.+",namespace!=""}'
)

for n in $SIZES; do
  data=$DIR/data-$n
  if [ ! -f "$data/.ts" ]; then
    rm -rf "$data"; mkdir -p "$data"
    ts=$(( $(date +%s) - 600 ))
    log "backfilling $n series at $ts"
    t0=$(date +%s.%N)
    gen "$n" "$ts" > "$DIR/om-$n.txt"
    /usr/bin/time -f "promtool: %e s, peak RSS %M KiB" "$PROMTOOL" tsdb create-blocks-from openmetrics -q "$DIR/om-$n.txt" "$data" >&2
    rm -f "$DIR/om-$n.txt"
    echo "$ts" > "$data/.ts"
    log "backfill took $(echo "$(date +%s.%N) - $t0" | bc) s"
  fi
  ts=$(cat "$data/.ts")
  start=$((ts - 60)); end=$((ts + 60))
  log "starting Prometheus on $data"
  "$PROMETHEUS" --config.file=/dev/null --storage.tsdb.path="$data" --storage.tsdb.retention.time=3650d \
    --web.listen-address=127.0.0.1:$PORT >"$DIR/prometheus-$n.log" 2>&1 &
  PROM_PID=$!
  for _ in $(seq 1 120); do curl -fs "$URL/-/ready" >/dev/null 2>&1 && break; sleep 1; done
  for q in "${QUERIES[@]}"; do
    for ep in api/v1/series api/v1/labels api/v1/label/__name__/values; do
      for i in 1 2; do
        t=$(curl -s -G -o /dev/null -w '%{time_total} %{size_download}' --data-urlencode "match[]=$q" -d start=$start -d end=$end "$URL/$ep")
        echo "{\"series\":$n,\"curl\":\"/$ep\",\"match\":$(printf '%s' "$q" | jq -Rs .),\"run\":$i,\"seconds\":${t% *},\"bytes\":${t#* }}"
      done
    done
  done
  for m in index series; do
    "$DIR/bin/discobench" --prometheus-url="$URL" --config=config/promgate.yaml --series="$n" \
      --discovery="$m" --start="$start" --end="$end" --refreshes=2 --timeout=15m
  done
  stop
done
