#!/usr/bin/env bash
# bench.sh — promgate's whole-system load benchmark (`make bench`; see docs/performance.md).
#
# Starts the loopback world of test/e2e/hack/world.sh in its own run directory and on its own
# ports (so that it can run next to an e2e world), without the synthetic exporter and with a
# fake Prometheus (test/bench/cmd/fakeprom) in place of the real one; creates pods with kwok;
# runs the scenarios with test/bench/cmd/loadgen, restarting promgate (world.sh
# register-promgate) before each so that its CPU and peak RSS are its own; runs the discovery
# benchmark (test/bench/cmd/discobench) per series count; prints the tables; stops everything
# it started, also on failure or Ctrl-C.
#
#   A  GET custom.metrics.k8s.io .../namespaces/ns-0/pods/*/http_requests_per_second (300 pods),
#      concurrency 20, directly to promgate and through kube-apiserver; then the same on
#      test/bench/cmd/staticapi (the library's floor: a prepared answer of the same size);
#      in JSON (as kubectl asks) and in protobuf (as the HPA controller asks)
#   C  the same request at 200 req/s, fake Prometheus latency 20 ms, --query-cache-ttl=0
#   D  kubectl top pod -A, 3,000 pods (and 10,000), --query-cache-ttl=0, 10 runs
#   B  1,000 simulated HPAs, 20 metrics, 50 namespaces, 15 s period, 2 cycles after 1 unmeasured,
#      in protobuf
#   E  10 simulated HPAs polling one Pods metric (one per namespace), 4 cycles after 2 unmeasured:
#      shared, narrowed to their pods, and one query per poll (prometheus-adapter's) to compare with
#   discovery: 10k, 21k, 100k, 210k, 1M, 1.05M series with config/promgate.yaml's broad rules
#
# BENCH_PLAN=scale (make bench-scale) runs, on BENCH_NODES=300 kwok nodes, with fakeprom's
# app metrics off (BENCH_APP_METRICS=-1: 8 series per pod) and Prometheus scraping every 30 s
# in 30 targets (BENCH_SCRAPE_SHARDS):
#   50 A   the Pods request through kube-apiserver, protobuf, 3,000 pods (cluster and series)
#   51 A   the same with 30,000 pods in the cluster and 150,000 pods' series in Prometheus
#   52     its static floor
#   53 B   5,000 simulated HPAs in 100 namespaces, every 15 s, 2 cycles after 1 unmeasured, protobuf
#   54 B   the same, shared queries over the whole cluster (--shared-query-namespaces=0)
#   56 B   the same, one query per poll (--query-batching=false), 1 cycle
#   55 D   kubectl top pod -A at 30,000 pods (5 runs), beside kubectl get pods -A
# (every row with --discovery-method=auto; 54 with --shared-query-namespaces=0)
#
# Needs bin/promgate (make build) and the world's tools (make tools). Knobs (environment):
#   BENCH_RUN_DIR=<repo>/.cache/bench-run   world.sh run directory (E2E_RUN_DIR)
#   BENCH_RESULTS=<repo>/.cache/bench-results   one JSON per row, and report.md
#   BENCH_DURATION=20s      measured time of A and C
#   BENCH_10K=1             also D with 10,000 pods (0: skip; saves ~2 min)
#   BENCH_UNBATCHED=1       also B and C with --query-batching=false, for comparison (0: skip)
#   BENCH_DISCO="10000 21000 100000 210000 1000000 1050000"   discovery sizes ("" skips)
#   BENCH_FAKEPROM_PORT=25400, and every E2E_*_PORT of world.sh (defaults below, all 3xxxx)
#   BENCH_NODES=100         kwok nodes (110 pods each)
#   BENCH_BACKEND=prometheus  what answers promgate's queries: "prometheus", a real Prometheus
#                           (the Debian one, or $PROMETHEUS_BIN) scraping the fake's model from its
#                           /metrics every BENCH_SCRAPE_INTERVAL (15s), the fake forwarding and
#                           counting the queries; or "fake", the fake's model itself
#   BENCH_PROMETHEUS_PORT=25410
#   BENCH_SCRAPE_SHARDS=1   scrape targets the real Prometheus splits the model into (by namespace)
#   BENCH_PROMGATE_ARGS=    more promgate flags for every scenario (e.g. --partial-window-guard=off)
#   BENCH_PLAN=default      "scale": make bench-scale's rows instead (see below)
#   BENCH_ONLY=             rows to run, an extended regexp on their order numbers (e.g. '1[0-3]' for
#                           A and its floor); empty: all
#   BENCH_PROFILE=0         1: the closed-loop rows (A, floor) also write promgate's CPU profile of
#                           the measured time to $BENCH_RESULTS/<order>-<letter>.cpu.pprof, and
#                           the HPA rows (B) its heap profile after the measured cycles to
#                           <order>-<letter>.heap.pprof, and the kubectl top rows (D) the real
#                           Prometheus' CPU profile of their first 30 s to
#                           <order>-<letter>.prometheus.cpu.pprof
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
WORLD=$ROOT/test/e2e/hack/world.sh

export E2E_RUN_DIR=${BENCH_RUN_DIR:-$ROOT/.cache/bench-run}
export E2E_ETCD_PORT=${E2E_ETCD_PORT:-25379} E2E_ETCD_PEER_PORT=${E2E_ETCD_PEER_PORT:-25380}
export E2E_APISERVER_PORT=${E2E_APISERVER_PORT:-25443} E2E_PROMGATE_PORT=${E2E_PROMGATE_PORT:-25444}
export E2E_KCM_PORT=${E2E_KCM_PORT:-25257} E2E_SCHEDULER_PORT=${E2E_SCHEDULER_PORT:-25259}
export E2E_KWOK_PORT=${E2E_KWOK_PORT:-25247} E2E_PROMETHEUS_PORT=${E2E_PROMETHEUS_PORT:-25390}
export E2E_EXPORTER_PORT=${E2E_EXPORTER_PORT:-25391}
export E2E_SKIP_EXPORTER=1
export E2E_BACKENDS=0 # no Thanos or VictoriaMetrics (their ports are the e2e world's)
PLAN=${BENCH_PLAN:-default}
case "$PLAN" in
  default) ;;
  scale) : "${BENCH_NODES:=300}" "${BENCH_APP_METRICS:=-1}" "${BENCH_SCRAPE_INTERVAL:=30s}" "${BENCH_SCRAPE_TIMEOUT:=25s}" "${BENCH_DISCO:=}" "${BENCH_SCRAPE_SHARDS:=30}" ;;
  *) echo "bench: BENCH_PLAN=$PLAN: want default or scale" >&2; exit 1 ;;
esac
export E2E_NODES=${BENCH_NODES:-100}
RESULTS=${BENCH_RESULTS:-$ROOT/.cache/bench-results}
DURATION=${BENCH_DURATION:-20s}
FAKEPROM_PORT=${BENCH_FAKEPROM_PORT:-25400}
FAKEPROM_URL=http://127.0.0.1:$FAKEPROM_PORT
DISCO=${BENCH_DISCO-10000 21000 100000 210000 1000000 1050000}
BIN=$ROOT/.cache/bench/bin
BACKEND=${BENCH_BACKEND:-prometheus}
SCRAPE_INTERVAL=${BENCH_SCRAPE_INTERVAL:-15s}
SCRAPE_SHARDS=${BENCH_SCRAPE_SHARDS:-1}
PROM_PORT=${BENCH_PROMETHEUS_PORT:-25410}
PROM_URL=http://127.0.0.1:$PROM_PORT
PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(command -v prometheus || true)}
case "$BACKEND" in
  prometheus) [ -x "$PROMETHEUS_BIN" ] || { echo "bench: BENCH_BACKEND=prometheus needs prometheus (apt-get install prometheus, or PROMETHEUS_BIN)" >&2; exit 1; } ;;
  fake) ;;
  *) echo "bench: BENCH_BACKEND=$BACKEND: want prometheus or fake" >&2; exit 1 ;;
esac
# promgate's flags beyond world.sh's: the fake Prometheus, and production-like intervals
# (world.sh's 5 s relist is for tests).
BASE_ARGS="--prometheus-url=$FAKEPROM_URL --metrics-relist-interval=1m --discovery-interval=1m ${BENCH_PROMGATE_ARGS:-}"
# At 150,000 pods' series /api/v1/series takes longer than discovery's timeout on 2 cores: the
# scale plan discovers from Prometheus' index, as docs/discovery.md advises at that size.
[ "$PLAN" = scale ] && BASE_ARGS="$BASE_ARGS --discovery-method=auto"

T0=$(date +%s)
log() { printf '[bench %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

export PROMGATE_BIN=${PROMGATE_BIN:-$ROOT/bin/promgate}
[ -x "$PROMGATE_BIN" ] || { log "$PROMGATE_BIN missing: run make build"; exit 1; }

log "building fakeprom, loadgen, discobench"
mkdir -p "$BIN"
go build -o "$BIN/" ./test/bench/cmd/fakeprom ./test/bench/cmd/loadgen ./test/bench/cmd/discobench ./test/bench/cmd/staticapi

if ss -Hltn "sport = :$FAKEPROM_PORT" | grep -q .; then
  log "port $FAKEPROM_PORT is in use: set BENCH_FAKEPROM_PORT"; exit 1
fi
rm -rf "$RESULTS"
mkdir -p "$RESULTS" "$E2E_RUN_DIR"

FAKEPROM_PID=
PROM_PID=
WORLD_STARTED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$WORLD_STARTED" = 1 ]; then "$WORLD" down || rc=1; fi
  for pid in $FAKEPROM_PID $PROM_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  log "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

upstream=()
[ "$BACKEND" = prometheus ] && upstream=(--upstream="$PROM_URL")
"$BIN/fakeprom" --listen="127.0.0.1:$FAKEPROM_PORT" --layout='ns-[0-9]=300' --nodes="$E2E_NODES" "${upstream[@]}" \
  --app-metrics="${BENCH_APP_METRICS:-12}" \
  > "$RESULTS/fakeprom.log" 2>&1 &
FAKEPROM_PID=$!
for _ in $(seq 50); do curl -fsS --max-time 1 "$FAKEPROM_URL/-/ready" > /dev/null 2>&1 && break; sleep 0.1; done
curl -fsS --max-time 1 "$FAKEPROM_URL/-/ready" > /dev/null || { log "fakeprom did not start"; cat "$RESULTS/fakeprom.log" >&2; exit 1; }

# prom_value QUERY: the value of a one-sample instant query on the real Prometheus ("" if none,
# or if it fails: at 150,000 pods a count over every series takes seconds).
prom_value() {
  { curl -fsS --max-time 60 "$PROM_URL/api/v1/query" --data-urlencode "query=$1" 2>/dev/null || true; } |
    sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}
# wait_scraped PODS: until the real Prometheus has a rate for every pod of the fake's model and,
# unless the partial-window guard is off, the [1m] windows of the newest of them are full: the
# guard holds back a series whose window starts before its first sample (a new pod), so until
# then the requests of the scenario would find no values.
wait_scraped() {
  [ "$BACKEND" = prometheus ] || return 0
  local want=$(( 2 * $1 )) got=
  for _ in $(seq 120); do
    got=$(prom_value 'count(rate(http_requests_total[1m]))')
    if [ "$got" = "$want" ]; then
      log "Prometheus has rates for all $1 pods"
      case " $BASE_ARGS " in
        *" --partial-window-guard=off "* | *" --serve-partial-windows "* | *" --serve-partial-windows=true "*) return 0 ;;
      esac
      local interval_s=${SCRAPE_INTERVAL%s}
      log "waiting $((60 + 2 * interval_s)) s for their windows to be full (the partial-window guard is on)"
      sleep $((60 + 2 * interval_s))
      return 0
    fi
    sleep 2
  done
  log "Prometheus has $got http_requests_total rates, want $want"; return 1
}
if [ "$BACKEND" = prometheus ]; then
  PROM_DIR=$E2E_RUN_DIR/bench-prometheus
  rm -rf "$PROM_DIR"; mkdir -p "$PROM_DIR"
  cat > "$PROM_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: $SCRAPE_INTERVAL
  scrape_timeout: ${BENCH_SCRAPE_TIMEOUT:-10s}
scrape_configs:
  - job_name: model
    honor_labels: true
    static_configs:
YAML
  # One target per shard of the model (fakeprom's /metrics?shard=I&of=N), as a cluster's series
  # come from one kubelet per node: a single target of 1.25M series takes most of a 30 s interval
  # to scrape, and a query in that time sees the newest sample one interval late.
  if [ "$SCRAPE_SHARDS" -le 1 ]; then
    echo "      - targets: ['127.0.0.1:$FAKEPROM_PORT']" >> "$PROM_DIR/prometheus.yml"
  else
    for i in $(seq 0 $((SCRAPE_SHARDS - 1))); do
      printf "      - targets: ['127.0.0.1:%s']\n        labels: {__param_shard: '%d', __param_of: '%d', instance: 'shard-%d'}\n" \
        "$FAKEPROM_PORT" "$i" "$SCRAPE_SHARDS" "$i" >> "$PROM_DIR/prometheus.yml"
    done
  fi
  log "starting Prometheus ($("$PROMETHEUS_BIN" --version 2>&1 | head -1)) on $PROM_URL, scraping the model every $SCRAPE_INTERVAL"
  "$PROMETHEUS_BIN" --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
    --storage.tsdb.retention.time=2h --web.listen-address="127.0.0.1:$PROM_PORT" \
    > "$RESULTS/prometheus.log" 2>&1 &
  PROM_PID=$!
  for _ in $(seq 100); do curl -fsS --max-time 1 "$PROM_URL/-/ready" > /dev/null 2>&1 && break; sleep 0.3; done
  curl -fsS --max-time 1 "$PROM_URL/-/ready" > /dev/null || { log "Prometheus did not start"; tail -20 "$RESULTS/prometheus.log" >&2; exit 1; }
fi

log "starting the world in $E2E_RUN_DIR ($E2E_NODES kwok nodes, no exporter)"
WORLD_STARTED=1
"$WORLD" up

LG=("$BIN/loadgen")
common=(--run-dir="$E2E_RUN_DIR" --fakeprom="$FAKEPROM_URL")
[ "$BACKEND" = prometheus ] && common+=(--backend-pid="$PROM_PID" --backend-url="$PROM_URL")

# promgate ARGS...: (re)start promgate with BASE_ARGS plus ARGS, wait until its APIServices are Available.
promgate() {
  log "starting promgate $*"
  PROMGATE_ARGS="$BASE_ARGS $*" "$WORLD" register-promgate 2> "$RESULTS/register.log" ||
    { cat "$RESULTS/register.log" >&2; return 1; }
}
# floor ORDER TARGET: scenario A's request on staticapi (the apiserver library serving a prepared
# answer of the same size) registered in promgate's place: the floor promgate is compared with.
floor() {
  only "$1" || return 0
  local order=$1 target=$2; shift 2
  log "starting staticapi (the static floor) in promgate's place"
  PROMGATE_BIN=$BIN/staticapi PROMGATE_WAIT_APISERVICES="v1beta1.custom.metrics.k8s.io v1beta2.custom.metrics.k8s.io" \
    PROMGATE_ARGS="$BASE_ARGS --pods=300" "$WORLD" register-promgate 2> "$RESULTS/register.log" ||
    { cat "$RESULTS/register.log" >&2; return 1; }
  "${LG[@]}" closed "${common[@]}" --order="$order" --scenario=A --name="static floor, 300 pods${1:+, protobuf}" --floor \
    --out="$RESULTS/$order-A.json" --target="$target" --concurrency=20 --duration="$DURATION" $(profile "$order-A") "$@"
}
# only ORDER: whether BENCH_ONLY selects the row.
only() { [[ "$1" =~ ^(${BENCH_ONLY:-.*})$ ]]; }
# profile NAME: loadgen's flag for a CPU profile of the row, when BENCH_PROFILE=1.
profile() { [ "${BENCH_PROFILE:-0}" = 1 ] && echo "--cpu-profile=$RESULTS/$1.cpu.pprof"; return 0; }
pods() { "${LG[@]}" pods "${common[@]}" --nodes="$E2E_NODES" --layout="$1" "${@:2}"; }
# scenario ORDER LETTER NAME PROMGATE_ARGS LOADGEN_COMMAND FLAGS...
scenario() {
  local order=$1 letter=$2 name=$3 args=$4 cmd=$5; shift 5
  only "$order" || return 0
  [ "$cmd" = closed ] && set -- "$@" $(profile "$order-$letter")
  [ "$cmd" = hpa ] && [ "${BENCH_PROFILE:-0}" = 1 ] && set -- "$@" --heap-profile="$RESULTS/$order-$letter.heap.pprof"
  [ "$cmd" = top ] && [ "${BENCH_PROFILE:-0}" = 1 ] && [ "$BACKEND" = prometheus ] &&
    set -- "$@" --backend-cpu-profile="$RESULTS/$order-$letter.prometheus.cpu.pprof"
  promgate $args
  "${LG[@]}" "$cmd" "${common[@]}" --order="$order" --scenario="$letter" --name="$name" \
    --promgate-args="$args" --out="$RESULTS/$order-$letter.json" "$@"
}

default_plan() {
  pods 'ns-[0-9]=300'
  wait_scraped 3000
  scenario 10 A "pods metric, 300 pods" "" closed --target=direct --concurrency=20 --duration="$DURATION"
  scenario 11 A "pods metric, 300 pods" "" closed --target=aggregated --concurrency=20 --duration="$DURATION"
  floor 12 direct
  floor 13 aggregated
  # the same in protobuf, which the HPA controller asks for (kubectl asks for JSON)
  scenario 14 A "pods metric, 300 pods, protobuf" "" closed --target=direct --concurrency=20 --duration="$DURATION" --protobuf
  scenario 15 A "pods metric, 300 pods, protobuf" "" closed --target=aggregated --concurrency=20 --duration="$DURATION" --protobuf
  floor 16 direct --protobuf
  floor 17 aggregated --protobuf
  scenario 20 C "pods metric, 300 pods, no cache" "--query-cache-ttl=0" rate --target=direct --rps=200 --latency=20ms --duration="$DURATION"
  if [ "${BENCH_UNBATCHED:-1}" = 1 ]; then
    scenario 21 C "pods metric, 300 pods, no cache, no batching" "--query-cache-ttl=0 --query-batching=false" rate --comparison --target=direct --rps=200 --latency=20ms --duration="$DURATION"
  fi
  scenario 30 D "top pod -A, 3,000 pods" "--query-cache-ttl=0" top --runs=10
  # E: one Pods metric polled by 10 HPAs (one per namespace, 15 pods each): what promgate asks of
  # Prometheus per cycle against the same HPAs' own queries (prometheus-adapter's, one per poll)
  local e=(hpa --protobuf --target=aggregated --hpas=10 --namespaces='ns-[0-9]' --hpa-metric=http_requests_per_second --period=15s --warm-cycles=2 --cycles=4)
  scenario 35 E "10 HPAs, one metric" "" "${e[@]}"
  scenario 36 E "10 HPAs, one metric, narrowed to their pods" "--shared-query-namespaces=100 --shared-query-objects=1000" "${e[@]}"
  scenario 37 E "10 HPAs, one metric, one query per poll" "--query-batching=false" "${e[@]:0:1}" --comparison "${e[@]:1}"
  if only 40 || only 41; then
    pods 'ns-[0-9]=300,ns-[10-49]=20'
    wait_scraped 3800
  fi
  scenario 40 B "1,000 HPAs" "" hpa --protobuf --target=aggregated --hpas=1000 --namespaces='ns-[0-49]' --period=15s --warm-cycles=1 --cycles=3
  if [ "${BENCH_UNBATCHED:-1}" = 1 ]; then
    scenario 41 B "1,000 HPAs, no batching" "--query-batching=false" hpa --protobuf --comparison --target=aggregated --hpas=1000 --namespaces='ns-[0-49]' --period=15s --warm-cycles=1 --cycles=3
  fi
  if [ "${BENCH_10K:-1}" = 1 ] && only 31; then
    pods 'ns-[0-9]=920,ns-[10-49]=20'
    wait_scraped 10000
    scenario 31 D "top pod -A, 10,000 pods" "--query-cache-ttl=0" top --runs=10
  fi
}

# scale_plan: make bench-scale's rows (see the header).
scale_plan() {
  local apps=${BENCH_APP_METRICS:--1} demand=""
  pods 'ns-[0-9]=300'
  wait_scraped 3000
  scenario 50 A "pods metric, 300 pods, 3,000 pods' series" "$demand" closed --target=aggregated --concurrency=20 --duration="$DURATION" --protobuf
  pods 'ns-[0-99]=300' --series-layout='ns-[0-99]=300,other-[0-479]=250' --timeout=20m
  wait_scraped 150000
  scenario 51 A "pods metric, 300 pods, 150,000 pods' series" "$demand" closed --target=aggregated --concurrency=20 --duration="$DURATION" --protobuf
  floor 52 aggregated --protobuf
  scenario 53 B "5,000 HPAs" "$demand" hpa --protobuf --target=aggregated --hpas=5000 --namespaces='ns-[0-99]' --app-metrics="$apps" --period=15s --warm-cycles=1 --cycles=2
  # The comparisons may fail on this machine (the whole cluster's queries time out under
  # ingestion): a failed one is reported, and the run goes on.
  scenario 54 B "5,000 HPAs, shared queries over the whole cluster" "--shared-query-namespaces=0" hpa --protobuf --comparison --target=aggregated --hpas=5000 --namespaces='ns-[0-99]' --app-metrics="$apps" --period=15s --warm-cycles=1 --cycles=2 ||
    log "row 54 failed (above); going on"
  scenario 56 B "5,000 HPAs, one query per poll" "--query-batching=false" hpa --protobuf --comparison --target=aggregated --hpas=5000 --namespaces='ns-[0-99]' --app-metrics="$apps" --period=15s --cycles=1 ||
    log "row 56 failed (above); going on"
  scenario 55 D "top pod -A, 30,000 pods" "--query-cache-ttl=0" top --runs=5 ||
    log "row 55 failed (above); going on"
}

"${PLAN}_plan"

log "stopping the world"
"$WORLD" down
WORLD_STARTED=0

for n in $DISCO; do
  log "discovery: $n series"
  "$BIN/discobench" --prometheus-url="$FAKEPROM_URL/disco/$n/" --series="$n" --config="$ROOT/config/promgate.yaml" \
    > "$RESULTS/disco-$n.json"
done

"${LG[@]}" report --dir="$RESULTS" | tee "$RESULTS/report.md"
