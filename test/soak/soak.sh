#!/usr/bin/env bash
# soak.sh — promgate's soak test (`make soak`; see docs/soak.md). Not part of CI.
#
# Starts the loopback world of test/e2e/hack/world.sh in its own run directory and on its own
# ports (so that it can run next to an e2e world and a benchmark), without the synthetic
# exporter and with the benchmark's fake Prometheus (test/bench/cmd/fakeprom) in place of the
# real one, failing SOAK_FAIL_RATIO of the queries (HTTP 503, timeouts, truncated and invalid
# JSON, partial-response warnings, in turn; with SOAK_FAIL_KINDS=all,oversize also answers
# larger than promgate accepts); creates the pods with the benchmark's loadgen; registers
# promgate; runs test/soak/cmd/soak for SOAK_DURATION at SOAK_RPS across the three APIs (and,
# with hostile=N in SOAK_MIX, selectors at and over promgate's request limits), which prints
# every interval the outcomes, latencies and promgate's RSS, goroutines and memory budget (from
# its own /metrics), then the totals and the verdict; stops everything it started, also on
# failure or Ctrl-C. Exits 1 if the verdict is FAIL. `make soak-hostile` is the hostile mode.
#
# Needs bin/promgate (make build) and the world's tools (make tools). Knobs (environment):
#   SOAK_DURATION=1h        measured time (SOAK_DURATION=3m for a smoke run)
#   SOAK_RPS=200            requests per second, open loop
#   SOAK_MIX=pods=2,external=1,resource=1   shares of the APIs; hostile=N adds Pods requests
#                           with a distinct metricLabelSelector at the request limits, 1 in 20 over
#                           them (make soak-hostile: pods=2,external=1,resource=1,hostile=2)
#   SOAK_TARGET=direct      direct to promgate, or aggregated (through kube-apiserver)
#   SOAK_INTERVAL=          time between reports (default 30s, or SOAK_DURATION/12 if shorter)
#   SOAK_FAIL_RATIO=0.01    fraction of the fake Prometheus' queries that fail
#   SOAK_FAIL_KINDS=all     some of 503,timeout,truncated,invalid,warning,oversize (taken in
#                           turn); all is the first five (make soak-hostile: all,oversize)
#   SOAK_OVERSIZE_BYTES=83886080   size of an oversize answer (80 MiB; promgate takes 64 MiB)
#   SOAK_LATENCY=5ms        latency the fake Prometheus adds to every query
#   SOAK_LAYOUT='ns-[0-9]=100'  namespaces and pods (1,000 pods)
#   SOAK_NODES=20           kwok nodes
#   SOAK_PROMGATE_ARGS=     promgate flags beyond the world's and the soak's
#   SOAK_RSS_TOLERANCE=0.10 SOAK_GOROUTINE_TOLERANCE=10   the flatness criterion (docs/soak.md)
#   SOAK_RUN_DIR=<repo>/.cache/soak-run   world.sh run directory (E2E_RUN_DIR)
#   SOAK_RESULTS=<repo>/.cache/soak-results   soak.json, the printed report, fakeprom's log
#   SOAK_FAKEPROM_PORT=49400, and every E2E_*_PORT of world.sh (defaults below, all 4xxxx)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
WORLD=$ROOT/test/e2e/hack/world.sh

export E2E_RUN_DIR=${SOAK_RUN_DIR:-$ROOT/.cache/soak-run}
export E2E_ETCD_PORT=${E2E_ETCD_PORT:-43379} E2E_ETCD_PEER_PORT=${E2E_ETCD_PEER_PORT:-43380}
export E2E_APISERVER_PORT=${E2E_APISERVER_PORT:-46443} E2E_PROMGATE_PORT=${E2E_PROMGATE_PORT:-46444}
export E2E_KCM_PORT=${E2E_KCM_PORT:-40257} E2E_SCHEDULER_PORT=${E2E_SCHEDULER_PORT:-40259}
export E2E_KWOK_PORT=${E2E_KWOK_PORT:-40247} E2E_PROMETHEUS_PORT=${E2E_PROMETHEUS_PORT:-49390}
export E2E_EXPORTER_PORT=${E2E_EXPORTER_PORT:-49391}
export E2E_SKIP_EXPORTER=1
export E2E_BACKENDS=0 # no Thanos or VictoriaMetrics: unused here, and their ports are the e2e world's
export E2E_NODES=${SOAK_NODES:-20}
RESULTS=${SOAK_RESULTS:-$ROOT/.cache/soak-results}
LAYOUT=${SOAK_LAYOUT:-ns-[0-9]=100}
FAKEPROM_PORT=${SOAK_FAKEPROM_PORT:-49400}
FAKEPROM_URL=http://127.0.0.1:$FAKEPROM_PORT
BIN=$ROOT/.cache/soak/bin
# promgate's flags beyond world.sh's: the fake Prometheus, and production-like intervals
# (world.sh's 5 s relist is for tests), as the benchmark runs it.
PROMGATE_FLAGS="--prometheus-url=$FAKEPROM_URL --metrics-relist-interval=1m --discovery-interval=1m ${SOAK_PROMGATE_ARGS:-}"

T0=$(date +%s)
log() { printf '[soak.sh %4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

export PROMGATE_BIN=${PROMGATE_BIN:-$ROOT/bin/promgate}
[ -x "$PROMGATE_BIN" ] || { log "$PROMGATE_BIN missing: run make build"; exit 1; }

log "building fakeprom, loadgen, soak"
mkdir -p "$BIN"
go build -o "$BIN/" ./test/bench/cmd/fakeprom ./test/bench/cmd/loadgen ./test/soak/cmd/soak

if ss -Hltn "sport = :$FAKEPROM_PORT" | grep -q .; then
  log "port $FAKEPROM_PORT is in use: set SOAK_FAKEPROM_PORT"; exit 1
fi
rm -rf "$RESULTS"
mkdir -p "$RESULTS" "$E2E_RUN_DIR"

FAKEPROM_PID=
WORLD_STARTED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$WORLD_STARTED" = 1 ]; then "$WORLD" down || rc=1; fi
  if [ -n "$FAKEPROM_PID" ] && kill -0 "$FAKEPROM_PID" 2>/dev/null; then
    kill -TERM "$FAKEPROM_PID" 2>/dev/null || true
    wait "$FAKEPROM_PID" 2>/dev/null || true
  fi
  log "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/fakeprom" --listen="127.0.0.1:$FAKEPROM_PORT" --layout="$LAYOUT" --nodes="$E2E_NODES" \
  --latency="${SOAK_LATENCY:-5ms}" --fail-ratio="${SOAK_FAIL_RATIO:-0.01}" --fail-kinds="${SOAK_FAIL_KINDS:-all}" \
  --fail-oversize-bytes="${SOAK_OVERSIZE_BYTES:-83886080}" \
  > "$RESULTS/fakeprom.log" 2>&1 &
FAKEPROM_PID=$!
for _ in $(seq 50); do curl -fsS --max-time 1 "$FAKEPROM_URL/-/ready" > /dev/null 2>&1 && break; sleep 0.1; done
curl -fsS --max-time 1 "$FAKEPROM_URL/-/ready" > /dev/null || { log "fakeprom did not start"; cat "$RESULTS/fakeprom.log" >&2; exit 1; }

log "starting the world in $E2E_RUN_DIR ($E2E_NODES kwok nodes, no exporter, no scale-out backends)"
WORLD_STARTED=1
"$WORLD" up

"$BIN/loadgen" pods --run-dir="$E2E_RUN_DIR" --fakeprom="$FAKEPROM_URL" --nodes="$E2E_NODES" --layout="$LAYOUT"

log "starting promgate $PROMGATE_FLAGS"
PROMGATE_ARGS="$PROMGATE_FLAGS" "$WORLD" register-promgate 2> "$RESULTS/register.log" ||
  { cat "$RESULTS/register.log" >&2; exit 1; }

rc=0
"$BIN/soak" --run-dir="$E2E_RUN_DIR" --fakeprom="$FAKEPROM_URL" --layout="$LAYOUT" \
  --duration="${SOAK_DURATION:-1h}" --rps="${SOAK_RPS:-200}" --mix="${SOAK_MIX:-pods=2,external=1,resource=1}" \
  --target="${SOAK_TARGET:-direct}" ${SOAK_INTERVAL:+--interval="$SOAK_INTERVAL"} \
  --rss-tolerance="${SOAK_RSS_TOLERANCE:-0.10}" --goroutine-tolerance="${SOAK_GOROUTINE_TOLERANCE:-10}" \
  --out="$RESULTS/soak.json" | tee "$RESULTS/report.txt" || rc=$?
cp "$E2E_RUN_DIR/logs/promgate.log" "$RESULTS/promgate.log" 2>/dev/null || true
exit "$rc"
