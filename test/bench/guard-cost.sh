#!/usr/bin/env bash
# guard-cost.sh — what the partial-window guard costs a real Prometheus (make bench-guard): for
# each pod count, the fake's model (test/bench/cmd/fakeprom, 300 pods per namespace, two
# http_requests_total series per pod) is scraped by Debian's Prometheus every
# BENCH_SCRAPE_INTERVAL; once every pod's window has been full for two intervals, guardcost
# (test/bench/cmd/guardcost) sends the rule's query plain and guarded in interleaved rounds and
# prints Prometheus' evaluation time, samples and CPU per query for each form. Not run by CI.
#
#   BENCH_GUARD_PODS="3000 30000"   pod counts, one Prometheus each (multiples of 300)
#   BENCH_GUARD_QUERY=...           the query (default: the default config's Pods rule, cluster-wide)
#   BENCH_GUARD_ROUNDS=20           rounds of guardcost
#   BENCH_GUARD_FORMS=              the forms besides plain (guardcost --forms; default all)
#   BENCH_SCRAPE_INTERVAL=15s       Prometheus' scrape interval
#   BENCH_GUARD_PORT=25420          fakeprom's port; Prometheus listens on the next one
#   PROMETHEUS_BIN=prometheus
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PODS=${BENCH_GUARD_PODS:-3000}
QUERY=${BENCH_GUARD_QUERY:-'sum(rate(http_requests_total{namespace!="",pod!=""}[1m])) by (namespace,pod)'}
ROUNDS=${BENCH_GUARD_ROUNDS:-20}
FORMS=${BENCH_GUARD_FORMS:-}
SCRAPE_INTERVAL=${BENCH_SCRAPE_INTERVAL:-15s}
PORT=${BENCH_GUARD_PORT:-25420}
PROM_PORT=$((PORT + 1))
PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(command -v prometheus || true)}
DIR=$ROOT/.cache/bench-guard
BIN=$DIR/bin
log() { echo "== $*" >&2; }

[ -x "$PROMETHEUS_BIN" ] || { echo "bench-guard: needs prometheus (apt-get install prometheus, or PROMETHEUS_BIN)" >&2; exit 1; }
interval_s=${SCRAPE_INTERVAL%s}
case $interval_s in '' | *[!0-9]*) echo "bench-guard: BENCH_SCRAPE_INTERVAL=$SCRAPE_INTERVAL: want whole seconds, e.g. 15s" >&2; exit 2 ;; esac

mkdir -p "$BIN"
log "building fakeprom and guardcost"
go build -o "$BIN/" ./test/bench/cmd/fakeprom ./test/bench/cmd/guardcost

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# value QUERY: the value of a one-sample instant query ("" if none).
value() {
  curl -fsS --max-time 30 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" 2> /dev/null |
    sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}

for n in $PODS; do
  [ $((n % 300)) = 0 ] || { echo "bench-guard: $n pods: want a multiple of 300" >&2; exit 2; }
  run=$DIR/$n
  rm -rf "$run"
  mkdir -p "$run"
  "$BIN/fakeprom" --listen="127.0.0.1:$PORT" --layout="ns-[0-$((n / 300 - 1))]=300" --app-metrics=-1 > "$run/fakeprom.log" 2>&1 &
  pids+=($!)
  cat > "$run/prometheus.yml" << YAML
global:
  scrape_interval: $SCRAPE_INTERVAL
  scrape_timeout: 10s
scrape_configs:
  - job_name: model
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$PORT']
YAML
  "$PROMETHEUS_BIN" --config.file="$run/prometheus.yml" --storage.tsdb.path="$run/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn > "$run/prometheus.log" 2>&1 &
  prom=$!
  pids+=("$prom")
  log "$n pods: Prometheus ($("$PROMETHEUS_BIN" --version 2>&1 | head -1)) scraping every $SCRAPE_INTERVAL; waiting for full windows"
  want=$((2 * n)) got=
  for _ in $(seq 600); do
    got=$(value 'count(rate(http_requests_total[1m]))')
    [ "$got" = "$want" ] && break
    sleep 1
  done
  [ "$got" = "$want" ] || { log "Prometheus has $got rates, want $want"; tail -20 "$run/prometheus.log" >&2; exit 1; }
  # The guard reads the sample before the window: wait for the window and two more scrapes.
  sleep $((60 + 2 * interval_s))
  log "$n pods: $(value 'count({__name__!=""})') series in Prometheus"
  "$BIN/guardcost" --prometheus="http://127.0.0.1:$PROM_PORT" --pid="$prom" --query="$QUERY" --rounds="$ROUNDS" --forms="$FORMS" | tee "$run/report.txt"
  cleanup
  pids=()
done
