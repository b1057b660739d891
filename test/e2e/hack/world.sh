#!/usr/bin/env bash
# world.sh — the promgate end-to-end "world" on loopback: etcd 3.6, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok (fake nodes and pods), Prometheus, the
# synthetic exporter, the scale-out backends (Thanos and VictoriaMetrics, see below), and (on
# request) promgate itself registered behind real APIServices.
#
#   world.sh up                 start everything, wait until ready, write $E2E_RUN_DIR/env
#   world.sh down               stop everything (clients, then kube-apiserver, then etcd)
#   world.sh env                print the sourceable env file:  eval "$(test/e2e/hack/world.sh env)"
#   world.sh status             one line per component: running or not; exit 0 iff the world is up
#   world.sh register-promgate  apply deploy/ (through an e2e overlay), start $PROMGATE_BIN locally,
#                               wait for its APIServices to be Available
#   world.sh stop-promgate      stop the local promgate process (APIServices stay registered)
#   world.sh signal <c> <SIG>   send a signal to component <c> (e.g. STOP / CONT to freeze Prometheus)
#   world.sh kill <c> [SIG]     save <c>'s command line, send SIG (default KILL), wait until it is gone
#   world.sh revive <c>         start <c> again with its saved command line (same flags and data
#                               directory), wait until it is ready
#   world.sh restart <c>        kill <c> TERM, then revive it
#
# The scale-out backends (when $E2E_CACHE/bin has thanos and victoria-metrics, unless
# E2E_BACKENDS=0; E2E_BACKENDS=1 makes their absence an error):
#   prometheus               external label tenant_id=team-a (direct queries do not show it)
#   prometheus-b             a second Prometheus (external label tenant_id=team-b) scraping the
#                            same exporter, its namespace labels prefixed: namespace="team-b-<ns>"
#   thanos-sidecar-a/-b      a Thanos sidecar for each
#   thanos-store             a store gateway over a FILESYSTEM bucket holding one marker block
#                            (no series the tests read): killing it makes answers partial
#   thanos-query             querier over thanos-sidecar-a and thanos-store        ($THANOS_URL)
#   thanos-query-tenancy     querier over both sidecars with --query.enforce-tenancy: header
#                            THANOS-TENANT=<tenant> sees only tenant_id=<tenant>   ($THANOS_TENANCY_URL)
#   victoria-metrics         single node scraping the exporter every 1 s; the Prometheus API at /
#                            and under /prometheus (VM cluster's form)              ($VM_URL)
# E2E_BACKEND=prometheus|thanos|thanos-tenancy|victoriametrics (default prometheus) selects what
# register-promgate points promgate at (thanos-tenancy adds --prometheus-header=THANOS-TENANT=team-a;
# victoriametrics uses $VM_URL/prometheus).
#
# Tools come from $E2E_CACHE/bin (default <repo>/.cache/bin; see install-tools.sh).
# Everything listens on 127.0.0.1. The run directory ($E2E_RUN_DIR, default <repo>/.cache/e2e-run)
# holds: pki/, kubeconfig/*.kubeconfig, logs/<component>.log (previous run's in logs.prev/),
# pids/<component>.pid ("<pid> <start time>", used to stop exactly that process), ports
# (component=port), env, etcd/ and prometheus/ data, kwok/, promgate/ (rendered overlay),
# bin/promgate-test-exporter (built per world, so that worlds side by side do not share it).
#
# Knobs (environment):
#   E2E_RUN_DIR, E2E_CACHE            directories (see above)
#   E2E_NODES=3                       number of fake kwok nodes (kwok-node-0..N-1)
#   E2E_PORT_OFFSET=0                 added to every default port below (worlds side by side)
#   E2E_ETCD_PORT=23379 E2E_ETCD_PEER_PORT=23380 E2E_APISERVER_PORT=26443
#   E2E_KCM_PORT=20257 E2E_SCHEDULER_PORT=20259 E2E_KWOK_PORT=20247
#   E2E_PROMETHEUS_PORT=29390 E2E_EXPORTER_PORT=29391 E2E_PROMGATE_PORT=26444
#   E2E_PROMETHEUS_B_PORT=29400 E2E_VM_PORT=29411 and, HTTP and gRPC, E2E_THANOS_SIDECAR_A_PORT=29401
#   E2E_THANOS_SIDECAR_A_GRPC_PORT=29402 E2E_THANOS_SIDECAR_B_PORT=29403 E2E_THANOS_SIDECAR_B_GRPC_PORT=29404
#   E2E_THANOS_STORE_PORT=29405 E2E_THANOS_STORE_GRPC_PORT=29406 E2E_THANOS_QUERY_PORT=29407
#   E2E_THANOS_QUERY_GRPC_PORT=29408 E2E_THANOS_QUERY_TENANCY_PORT=29409 E2E_THANOS_QUERY_TENANCY_GRPC_PORT=29410
#   E2E_BACKENDS=0|1 E2E_BACKEND=prometheus   (see above)
#   E2E_POD_CIDR=10.244.0.0/16        pod IPs kwok hands out
#   E2E_SKIP_EXPORTER=1               do not build/start test/exporter
#   E2E_{APISERVER,KCM,SCHEDULER,KWOK,PROMETHEUS,EXPORTER}_ARGS  extra flags (word-split)
#   E2E_{PROMETHEUS_B,THANOS,VM}_ARGS  extra flags of prometheus-b, every Thanos component, VictoriaMetrics
#   PROMGATE_BIN=<repo>/bin/promgate  PROMGATE_CONFIG=<repo>/config/promgate.yaml
#   PROMGATE_ARGS                     extra promgate flags (word-split)
#   PROMGATE_WAIT_APISERVICES         APIService names to wait for (default: all of the overlay)
#   PROMGATE_DEPLOY_BASE=<repo>/deploy/base   kustomize base the e2e overlay is built on
#
# Timings measured on the 2-core dev machine, idle, warm binaries and PKI (2026-11, v1.37.2,
# etcd 3.6.16, kwok 0.8.0, Prometheus 2.42):
#   up, 3 nodes, with exporter : 5.5-6.0 s (runs: 5.47, 5.66, 5.74, 5.97)
#       etcd healthy 0.2-0.4 s | kube-apiserver /readyz at 2.0-2.7 s | kwok healthy and 3 nodes
#       Ready +0.4 s | kcm, scheduler healthy, ServiceAccount default/default +0.3 s: the control
#       plane is usable at ~3 s | Prometheus has scraped the exporter at ~5.5 s. That last step is
#       a floor: Prometheus 2.42's scrape manager applies its targets only every 5 s (from start),
#       which is why Prometheus is started first.
#   up, 100 nodes              : 5.7 s (100 nodes Ready at 5.1 s)
#   up while both cores are busy (a fuzz run next to it): 11-16 s
#   first up (PKI generated)   : +0.4 s
#   register-promgate          : 1.3-1.8 s (apply + TokenRequest ~0.5 s, promgate /readyz ~0.3-0.7 s
#                                after its start, its APIServices Available ~0.3-0.6 s later)
#   down                       : 1.2-1.4 s (kube-apiserver ~1.1 s of it); 2.3 s with promgate
#                                running (its graceful shutdown ~1.1 s); ~4 s on a busy machine
# With the scale-out backends (Thanos v0.42.4, VictoriaMetrics v1.151.0; measured 2026-12 with
# other builds running, load 2.5-5, alternating runs with and without them):
#   up                         : 6.3-7.4 s, against 5.4-7.2 s with E2E_BACKENDS=0: within the
#                                noise; the Thanos queriers have the exporter's data ~0.05 s after
#                                Prometheus. Waiting for VictoriaMetrics' data too (which it shows
#                                2-3.5 s after the exporter starts) made it 9.3-9.5 s: only
#                                E2E_BACKEND=victoriametrics waits for it (~9 s)
#   down                       : 1.6-2.2 s (the Thanos components have no grace period)
#   idle cost                  : ~3% of a core for the seven processes together, 40-65 MiB RSS each
#   kill thanos-store          : promgate's answers through thanos-query are 503 (partial
#                                response) within 0.1 s; revive ~0.3 s, values back within ~1 s
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HACK=$ROOT/test/e2e/hack
CACHE=${E2E_CACHE:-${PROMGATE_CACHE:-$ROOT/.cache}}
BIN=$CACHE/bin
RUN=${E2E_RUN_DIR:-$CACHE/e2e-run}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)

NODES=${E2E_NODES:-3}
# Every default port below is shifted by E2E_PORT_OFFSET, so that worlds can run side by side.
PORT_OFFSET=${E2E_PORT_OFFSET:-0}
ETCD_PORT=${E2E_ETCD_PORT:-$((23379 + PORT_OFFSET))}
ETCD_PEER_PORT=${E2E_ETCD_PEER_PORT:-$((23380 + PORT_OFFSET))}
APISERVER_PORT=${E2E_APISERVER_PORT:-$((26443 + PORT_OFFSET))}
KCM_PORT=${E2E_KCM_PORT:-$((20257 + PORT_OFFSET))}
SCHEDULER_PORT=${E2E_SCHEDULER_PORT:-$((20259 + PORT_OFFSET))}
KWOK_PORT=${E2E_KWOK_PORT:-$((20247 + PORT_OFFSET))}
PROMETHEUS_PORT=${E2E_PROMETHEUS_PORT:-$((29390 + PORT_OFFSET))}
EXPORTER_PORT=${E2E_EXPORTER_PORT:-$((29391 + PORT_OFFSET))}
PROMGATE_PORT=${E2E_PROMGATE_PORT:-$((26444 + PORT_OFFSET))}
PROMETHEUS_B_PORT=${E2E_PROMETHEUS_B_PORT:-$((29400 + PORT_OFFSET))}
SIDECAR_A_PORT=${E2E_THANOS_SIDECAR_A_PORT:-$((29401 + PORT_OFFSET))}
SIDECAR_A_GRPC_PORT=${E2E_THANOS_SIDECAR_A_GRPC_PORT:-$((29402 + PORT_OFFSET))}
SIDECAR_B_PORT=${E2E_THANOS_SIDECAR_B_PORT:-$((29403 + PORT_OFFSET))}
SIDECAR_B_GRPC_PORT=${E2E_THANOS_SIDECAR_B_GRPC_PORT:-$((29404 + PORT_OFFSET))}
STORE_PORT=${E2E_THANOS_STORE_PORT:-$((29405 + PORT_OFFSET))}
STORE_GRPC_PORT=${E2E_THANOS_STORE_GRPC_PORT:-$((29406 + PORT_OFFSET))}
QUERY_PORT=${E2E_THANOS_QUERY_PORT:-$((29407 + PORT_OFFSET))}
QUERY_GRPC_PORT=${E2E_THANOS_QUERY_GRPC_PORT:-$((29408 + PORT_OFFSET))}
TENANCY_PORT=${E2E_THANOS_QUERY_TENANCY_PORT:-$((29409 + PORT_OFFSET))}
TENANCY_GRPC_PORT=${E2E_THANOS_QUERY_TENANCY_GRPC_PORT:-$((29410 + PORT_OFFSET))}
VM_PORT=${E2E_VM_PORT:-$((29411 + PORT_OFFSET))}
POD_CIDR=${E2E_POD_CIDR:-10.244.0.0/16}
PROMGATE_BIN=${PROMGATE_BIN:-$ROOT/bin/promgate}
PROMGATE_CONFIG=${PROMGATE_CONFIG:-$ROOT/config/promgate.yaml}
PROMGATE_DEPLOY_BASE=${PROMGATE_DEPLOY_BASE:-$ROOT/deploy/base}
EXPORTER_BIN=$RUN/bin/promgate-test-exporter

PKI=$RUN/pki
KCFG=$RUN/kubeconfig
ADMIN_KUBECONFIG=$KCFG/admin.kubeconfig
PIDS=$RUN/pids
LOGS=$RUN/logs
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
PROMETHEUS_B_URL=http://127.0.0.1:$PROMETHEUS_B_PORT
THANOS_URL=http://127.0.0.1:$QUERY_PORT
THANOS_TENANCY_URL=http://127.0.0.1:$TENANCY_PORT
THANOS_TENANT_HEADER=THANOS-TENANT
VM_URL=http://127.0.0.1:$VM_PORT

# Stop order: promgate and the other clients first (together, signalled in this order: the
# backends before the Prometheus they read), then kube-apiserver, then etcd.
BACKENDS=(thanos-query thanos-query-tenancy thanos-store thanos-sidecar-a thanos-sidecar-b prometheus-b victoria-metrics)
CLIENTS=(promgate "${BACKENDS[@]}" exporter kwok prometheus kube-scheduler kube-controller-manager)

T0=$(date +%s%N)
log() { printf '[world %6.2fs] %s\n' "$(( ($(date +%s%N) - T0) / 10000000 ))e-2" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kubectl() { "$BIN/kubectl" --kubeconfig="$ADMIN_KUBECONFIG" "$@"; }

# ---------------------------------------------------------------------------------------------
# processes

# proc_start_time <pid>: field 22 of /proc/<pid>/stat (start time in clock ticks since boot),
# recorded with the pid so that a reused pid is never mistaken for ours.
proc_start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }          # drop "pid (comm) ", comm may contain spaces
  # shellcheck disable=SC2086
  set -- $stat
  printf '%s' "${20}"
}

proc_state() { # proc_state <pid> -> one-letter state (R, S, Z, ...)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  printf '%s' "${stat%% *}"
}

# running <name>: true if the process recorded in pids/<name>.pid is alive. A zombie whose
# other threads are still tearing down (sockets still open) counts as alive; a finished zombie
# waiting for init to reap it does not.
running() {
  local f=$PIDS/$1.pid pid start state threads
  [ -s "$f" ] || return 1
  read -r pid start < "$f" || true
  [ -n "${pid:-}" ] || return 1
  state=$(proc_state "$pid") || return 1
  [ "$(proc_start_time "$pid")" = "${start:-}" ] || return 1
  if [ "$state" = Z ]; then
    threads=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null) || return 1
    [ "${threads:-0}" -gt 1 ] || return 1
  fi
  return 0
}

pid_of() { local pid _; read -r pid _ < "$PIDS/$1.pid"; echo "$pid"; }

# start <name> <port> <command...>: run detached (own session, stdin /dev/null), output to logs/<name>.log.
start() {
  local name=$1 port=$2; shift 2
  local logf=$LOGS/$name.log
  mkdir -p "$PIDS" "$LOGS"
  printf '### %s: %s\n' "$(date -Is)" "$*" >> "$logf"
  # setsid (without -f) execs in place: $! is the component's own pid.
  setsid "$@" < /dev/null >> "$logf" 2>&1 &
  local pid=$!
  local st
  st=$(proc_start_time "$pid") || st=gone
  echo "$pid $st" > "$PIDS/$name.pid"
  set_port "$name" "$port"
  log "started $name (pid $pid, port $port, log ${logf#"$ROOT"/})"
}

set_port() {
  local f=$RUN/ports
  touch "$f"
  grep -v "^$1=" "$f" > "$f.tmp" || true
  echo "$1=$2" >> "$f.tmp"
  mv "$f.tmp" "$f"
}

# stop <name...>: SIGTERM every named running component, wait for all to exit (SIGKILL after 20 s).
stop() {
  local name pid left=() signaled=() deadline killed=0
  for name in "$@"; do
    if running "$name"; then
      pid=$(pid_of "$name")
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      left+=("$name")
    fi
  done
  signaled=("${left[@]+"${left[@]}"}")
  deadline=$(( $(date +%s) + 20 ))
  while [ ${#left[@]} -gt 0 ]; do
    local still=()
    for name in "${left[@]}"; do running "$name" && still+=("$name"); done
    left=("${still[@]+"${still[@]}"}")
    [ ${#left[@]} -eq 0 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      if [ "$killed" = 1 ]; then
        log "ERROR: still alive after SIGKILL: ${left[*]}"
        return 1
      fi
      for name in "${left[@]}"; do
        log "WARNING: $name did not exit after SIGTERM within 20 s, sending SIGKILL"
        kill -KILL "$(pid_of "$name")" 2>/dev/null || true
      done
      killed=1
      deadline=$(( $(date +%s) + 5 ))
    fi
    sleep 0.05
  done
  # ...and until their ports are released (a dying process may hold its socket a moment longer).
  local port
  for name in "$@"; do rm -f "$PIDS/$name.pid"; done
  deadline=$(( $(date +%s) + 10 ))
  for name in "${signaled[@]+"${signaled[@]}"}"; do
    for port in $(ports_of "$name"); do
      until port_free "$port" || [ "$(date +%s)" -ge "$deadline" ]; do sleep 0.05; done
    done
  done
}

# ports_of <name>: the ports recorded for a component: <name>=P and, for the Thanos components,
# their gRPC port <name>-grpc=P.
ports_of() { sed -n "s/^$1\(-grpc\)\{0,1\}=//p" "$RUN/ports" 2>/dev/null || true; }

# wait_for <component|-> <timeout s> <description> <command...>: poll the command (every 0.1 s)
# until it succeeds; fail early, showing the log tail, if the component process has died.
wait_for() {
  local comp=$1 timeout=$2 what=$3; shift 3
  local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
  until "$@" > /dev/null 2>&1; do
    if [ "$comp" != - ] && ! running "$comp"; then
      log "$comp exited; last lines of its log:"
      tail -n 30 "$LOGS/$comp.log" >&2 || true
      die "$comp died while waiting for: $what"
    fi
    if [ "$(date +%s%N)" -ge "$deadline" ]; then
      if [ "$comp" != - ]; then
        log "last lines of $comp's log:"
        tail -n 30 "$LOGS/$comp.log" >&2 || true
      fi
      die "timed out after ${timeout}s waiting for: $what"
    fi
    sleep 0.1
  done
  log "ready: $what"
}

port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

check_ports() {
  local p bad=0
  for p in "$@"; do
    if ! port_free "$p"; then
      log "port $p on this machine is already in use:"; ss -Hltnp "sport = :$p" >&2 || true
      bad=1
    fi
  done
  [ "$bad" = 0 ] || die "choose other ports (E2E_*_PORT) or stop what holds them"
}

# ---------------------------------------------------------------------------------------------
# configuration files

write_kubeconfig() { # write_kubeconfig <file> <user> (client cert pki/<user>.{crt,key}) | token via 3rd arg
  local file=$1 user=$2 token=${3:-}
  mkdir -p "$(dirname "$file")"
  {
    cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $APISERVER_URL
    certificate-authority: $PKI/ca.crt
contexts:
- name: e2e
  context:
    cluster: e2e
    user: $user
current-context: e2e
users:
- name: $user
  user:
EOF
    if [ -n "$token" ]; then
      echo "    token: $token"
    else
      echo "    client-certificate: $PKI/$user.crt"
      echo "    client-key: $PKI/$user.key"
    fi
  } > "$file.tmp"
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

write_env() {
  local f=$RUN/env
  {
    echo "# Written by test/e2e/hack/world.sh on $(date -Is). Source it: . $f"
    echo "export E2E_RUN_DIR='$RUN'"
    echo "export E2E_CACHE='$CACHE'"
    echo "export E2E_BIN='$BIN'"
    echo "export E2E_PKI_DIR='$PKI'"
    echo "export E2E_LOG_DIR='$LOGS'"
    echo "export KUBECONFIG='$ADMIN_KUBECONFIG'"
    echo "export E2E_KUBECTL='$BIN/kubectl'"
    echo "export E2E_APISERVER_URL='$APISERVER_URL'"
    echo "export E2E_APISERVER_PORT=$APISERVER_PORT"
    echo "export E2E_ETCD_PORT=$ETCD_PORT"
    echo "export E2E_ETCD_PEER_PORT=$ETCD_PEER_PORT"
    echo "export E2E_KCM_PORT=$KCM_PORT"
    echo "export E2E_SCHEDULER_PORT=$SCHEDULER_PORT"
    echo "export E2E_KWOK_PORT=$KWOK_PORT"
    echo "export PROMETHEUS_URL='$PROMETHEUS_URL'"
    echo "export E2E_PROMETHEUS_PORT=$PROMETHEUS_PORT"
    echo "export E2E_EXPORTER_PORT=$EXPORTER_PORT"
    echo "export E2E_EXPORTER_RUNNING=$(running exporter && echo 1 || echo 0)"
    echo "export E2E_EXPORTER_URL='http://127.0.0.1:$EXPORTER_PORT'"
    echo "export E2E_NODES=$NODES"
    echo "export E2E_PROMGATE_PORT=$PROMGATE_PORT"
    echo "export E2E_PROMGATE_URL='https://127.0.0.1:$PROMGATE_PORT'"
    echo "export E2E_PROMGATE_CA='$PKI/promgate-ca.crt'"
    echo "export E2E_PROMGATE_KUBECONFIG='$KCFG/promgate.kubeconfig'"
    echo "export E2E_AUDIT_LOG='$LOGS/kube-apiserver-audit.log'"
    echo "export E2E_BACKEND='${E2E_BACKEND:-prometheus}'"
    if backends_running; then
      echo "export E2E_BACKENDS_RUNNING=1"
      echo "export PROMETHEUS_B_URL='$PROMETHEUS_B_URL'"
      echo "export THANOS_URL='$THANOS_URL'"
      echo "export THANOS_TENANCY_URL='$THANOS_TENANCY_URL'"
      echo "export THANOS_TENANT_HEADER='$THANOS_TENANT_HEADER'"
      echo "export VM_URL='$VM_URL'"
    else
      echo "export E2E_BACKENDS_RUNNING=0"
    fi
    echo "case \":\$PATH:\" in *':$BIN:'*) ;; *) export PATH='$BIN':\"\$PATH\" ;; esac"
  } > "$f.tmp"
  mv "$f.tmp" "$f"
}

write_kwok_config() {
  local stages=$CACHE/kwok-stages s
  mkdir -p "$RUN/kwok"
  : > "$RUN/kwok/kwok.yaml.tmp"
  for s in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$stages/$s" ] || die "kwok stage $stages/$s missing: run test/e2e/hack/install-tools.sh kwok"
    { echo "---"; echo "# from kwok $s"; cat "$stages/$s"; } >> "$RUN/kwok/kwok.yaml.tmp"
  done
  mv "$RUN/kwok/kwok.yaml.tmp" "$RUN/kwok/kwok.yaml"
}

# kube-apiserver's audit log records only promgate's LIST and WATCH requests (a LIST at
# ResponseComplete; a WATCH, also the streamed lists of client-go's WatchListClient, at
# ResponseStarted and ResponseComplete): the fault suite counts them to see that promgate's
# informers do not relist in a storm after kube-apiserver restarts. Nothing else is audited.
write_audit_policy() {
  cat > "$RUN/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["system:serviceaccount:promgate:promgate"]
  verbs: [list, watch]
- level: None
EOF
}

write_prometheus_config() { # write_prometheus_config <with backends: 0|1>
  local external=
  # The Thanos sidecar needs external labels; queries sent to Prometheus itself do not show them.
  [ "$1" = 1 ] && external=$'\n  external_labels: {tenant_id: team-a}'
  mkdir -p "$RUN/prometheus"
  cat > "$RUN/prometheus/prometheus.yml" <<EOF
# Written by test/e2e/hack/world.sh.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s$external
rule_files: ['$RUN/prometheus/rules.yml']
scrape_configs:
# The synthetic exporter publishes series already labelled namespace/pod/node/...; keep its labels.
- job_name: promgate-test-exporter
  honor_labels: true
  static_configs:
  - targets: ['127.0.0.1:$EXPORTER_PORT']
EOF
  # Per-pod requests labelled with the Widget (a CRD the tests create while
  # promgate runs) named after the pod's service: metrics about CRD objects.
  cat > "$RUN/prometheus/rules.yml" <<'EOF'
groups:
- name: e2e
  interval: 1s
  rules:
  - record: widget_requests_total
    expr: label_replace(sum by (namespace, pod, service) (http_requests_total), "widget", "$1", "service", "(.+)")
EOF
}

# write_backend_configs: prometheus-b's configuration (tenant team-b, namespaces prefixed),
# VictoriaMetrics' scrape configuration, the Thanos bucket's and the queriers' endpoints.
write_backend_configs() {
  mkdir -p "$RUN/prometheus-b" "$RUN/victoria-metrics" "$RUN/thanos/bucket"
  cat > "$RUN/prometheus-b/prometheus.yml" <<EOF
# Written by test/e2e/hack/world.sh: a second tenant's Prometheus. Its namespaces are prefixed
# team-b- so that a series of one tenant seen by the other is recognisable.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  external_labels: {tenant_id: team-b}
scrape_configs:
- job_name: promgate-test-exporter
  honor_labels: true
  static_configs:
  - targets: ['127.0.0.1:$EXPORTER_PORT']
  metric_relabel_configs:
  - source_labels: [namespace]
    regex: '(.+)'
    target_label: namespace
    replacement: 'team-b-\$1'
EOF
  cat > "$RUN/victoria-metrics/scrape.yml" <<EOF
# Written by test/e2e/hack/world.sh. VictoriaMetrics evaluates no recording rules: the world's
# widget_requests_total exists in Prometheus only.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: promgate-test-exporter
  honor_labels: true
  static_configs:
  - targets: ['127.0.0.1:$EXPORTER_PORT']
EOF
  cat > "$RUN/thanos/bucket.yml" <<EOF
type: FILESYSTEM
config:
  directory: $RUN/thanos/bucket
EOF
  # Strict endpoints are queried even while their health check fails: a store that is down is
  # reported in the answer's warnings (a partial response) instead of being left out silently.
  cat > "$RUN/thanos/query.yml" <<EOF
endpoints:
- {address: '127.0.0.1:$SIDECAR_A_GRPC_PORT', strict: true}
- {address: '127.0.0.1:$STORE_GRPC_PORT', strict: true}
EOF
  cat > "$RUN/thanos/query-tenancy.yml" <<EOF
endpoints:
- {address: '127.0.0.1:$SIDECAR_A_GRPC_PORT', strict: true}
- {address: '127.0.0.1:$SIDECAR_B_GRPC_PORT', strict: true}
EOF
}

# write_marker_block puts into the Thanos bucket blocks of a single series, promgate_e2e_marker,
# with one sample an hour ago and one a day ahead. A store gateway over an empty bucket
# advertises an empty time range, so Thanos' querier never asks it and stopping it changes no
# answer; with these blocks its time range covers the whole run, every query is sent to it
# too, and a store that is down makes answers partial. No test reads the marker series.
write_marker_block() {
  local dir=$RUN/thanos/marker now b
  rm -rf "$dir"
  mkdir -p "$dir/blocks"
  now=$(date +%s)
  cat > "$dir/marker.om" <<EOF
# TYPE promgate_e2e_marker gauge
promgate_e2e_marker{store="thanos-store"} 1 $((now - 3600))
promgate_e2e_marker{store="thanos-store"} 1 $((now + 86400))
# EOF
EOF
  if ! "$BIN/promtool" tsdb create-blocks-from openmetrics -q "$dir/marker.om" "$dir/blocks" > "$LOGS/marker-block.log" 2>&1; then
    cat "$LOGS/marker-block.log" >&2
    die "promtool tsdb create-blocks-from openmetrics failed (log above)"
  fi
  for b in "$dir"/blocks/*/; do
    b=${b%/}
    [ -f "$b/meta.json" ] || continue
    # Thanos' part of meta.json: the block's external labels and its (raw) resolution.
    sed -i 's/^\(\s*\)"version": 1$/\1"version": 1,\n\1"thanos": {"labels": {"tenant_id": "team-a", "store": "marker"}, "downsample": {"resolution": 0}, "source": "promtool"}/' "$b/meta.json"
    grep -q '"thanos"' "$b/meta.json" || die "could not add Thanos' metadata to $b/meta.json"
    mv "$b" "$RUN/thanos/bucket/"
  done
}

nodes_yaml() {
  local i
  for (( i = 0; i < NODES; i++ )); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"$( (( i == 0 )) && printf '\n    e2e.promgate.io/swap: 1Gi' )
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
spec:
  taints:
  - key: kwok.x-k8s.io/node
    value: fake
    effect: NoSchedule
status:
  capacity: {cpu: "4", memory: 16Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 16Gi, pods: "110"}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
    swap: {capacity: 4294967296}
EOF
  done
}

# ---------------------------------------------------------------------------------------------
# probes

curl_admin() {
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"
}
apiserver_ready() { [ "$(curl_admin "$APISERVER_URL/readyz")" = ok ]; }
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
healthz_ok() { [ "$(curl -fsSk --max-time 2 "https://127.0.0.1:$1/healthz")" = ok ]; }
kwok_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz" > /dev/null; }
prometheus_ready() { curl -fsS --max-time 2 "$PROMETHEUS_URL/-/ready" > /dev/null; }
nodes_ready() {
  local n
  n=$(kubectl get nodes -l type=kwok \
        -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$') || true
  [ "${n:-0}" -ge "$NODES" ]
}
default_sa_exists() { kubectl get serviceaccount default -n default -o name > /dev/null; }
exporter_scraped() {
  curl -fsS --max-time 2 "$PROMETHEUS_URL/api/v1/query" --data-urlencode 'query=up{job="promgate-test-exporter"} == 1' |
    grep -q '"value"'
}
http_ok() { curl -fsS --max-time 2 "$1" > /dev/null; }
# backend_has_exporter <Prometheus API base URL> [tenant]: the backend answers, without warnings,
# that the exporter is up (through Thanos: that its Prometheus scraped it and the querier reaches
# every store).
backend_has_exporter() {
  local out hdr=()
  [ -z "${2:-}" ] || hdr=(-H "$THANOS_TENANT_HEADER: $2")
  out=$(curl -fsS --max-time 2 "${hdr[@]+"${hdr[@]}"}" "$1/api/v1/query" \
          --data-urlencode 'query=up{job="promgate-test-exporter"} == 1') || return 1
  case $out in *'"warnings"'*) return 1 ;; esac
  case $out in *'"value"'*) return 0 ;; esac
  return 1
}
promgate_ready() {
  [ "$(curl -fsS --max-time 2 --cacert "$PKI/promgate-ca.crt" "https://127.0.0.1:$PROMGATE_PORT/readyz")" = ok ]
}

# ---------------------------------------------------------------------------------------------
# subcommands

need_tools() {
  local t missing=()
  for t in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok prometheus; do
    [ -x "$BIN/$t" ] || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing in $BIN: ${missing[*]} — run test/e2e/hack/install-tools.sh (make tools)"
  command -v curl > /dev/null || die "curl not found"
  command -v ss > /dev/null || die "ss (iproute2) not found"
}

# backends_wanted: whether "up" starts the scale-out backends (see the top of this file).
backends_wanted() {
  local have=0
  [ -x "$BIN/thanos" ] && [ -x "$BIN/victoria-metrics" ] && have=1
  case ${E2E_BACKENDS:-} in
    0) return 1 ;;
    1) [ "$have" = 1 ] || die "E2E_BACKENDS=1 but $BIN has no thanos or victoria-metrics: run test/e2e/hack/install-tools.sh thanos; test/e2e/hack/install-tools.sh vm" ;;
    '') if [ "$have" = 0 ]; then
          log "WARNING: no thanos or victoria-metrics in $BIN: starting without the scale-out backends (install-tools.sh thanos; install-tools.sh vm)"
          return 1
        fi ;;
    *) die "E2E_BACKENDS=$E2E_BACKENDS: want 0 or 1" ;;
  esac
  return 0
}

# backends_running: whether this world's "up" started them (recorded in $RUN/backends).
backends_running() { [ "$(cat "$RUN/backends" 2>/dev/null)" = 1 ]; }

backend_ports() {
  echo "$PROMETHEUS_B_PORT $SIDECAR_A_PORT $SIDECAR_A_GRPC_PORT $SIDECAR_B_PORT $SIDECAR_B_GRPC_PORT" \
    "$STORE_PORT $STORE_GRPC_PORT $QUERY_PORT $QUERY_GRPC_PORT $TENANCY_PORT $TENANCY_GRPC_PORT $VM_PORT"
}

# start_thanos <name> <http port> <grpc port> <thanos subcommand and flags...>
start_thanos() {
  local name=$1 http=$2 grpc=$3; shift 3
  # shellcheck disable=SC2086
  start "$name" "$http" "$BIN/thanos" "$@" \
    --http-address="127.0.0.1:$http" --grpc-address="127.0.0.1:$grpc" \
    --http-grace-period=0s --grpc-grace-period=0s --log.level=warn \
    ${E2E_THANOS_ARGS:-}
  set_port "$name-grpc" "$grpc"
}

# The backends need no Kubernetes, and each retries what it reads until it is there: they start
# while the control plane does and are waited for last (wait_backends). prometheus-b starts
# with Prometheus (start_prometheus_b: both scrape first ~5 s after their start), the marker
# block is written in the background (start_marker_block, ~0.4 s), the others start once
# kube-apiserver is starting (start_backends), the store last, on the finished bucket.
start_prometheus_b() {
  # shellcheck disable=SC2086
  start prometheus-b "$PROMETHEUS_B_PORT" "$BIN/prometheus" \
    --config.file="$RUN/prometheus-b/prometheus.yml" \
    --storage.tsdb.path="$RUN/prometheus-b/data" \
    --storage.tsdb.retention.time=1d \
    --storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration=2h \
    --web.listen-address="127.0.0.1:$PROMETHEUS_B_PORT" \
    ${E2E_PROMETHEUS_B_ARGS:-}
}

start_marker_block() {
  (write_marker_block) &
  marker_pid=$!
}

start_backends() {
  # shellcheck disable=SC2086
  start victoria-metrics "$VM_PORT" "$BIN/victoria-metrics" \
    -httpListenAddr="127.0.0.1:$VM_PORT" \
    -storageDataPath="$RUN/victoria-metrics/data" -retentionPeriod=1d \
    -promscrape.config="$RUN/victoria-metrics/scrape.yml" \
    -search.latencyOffset=0s \
    -loggerLevel=WARN \
    ${E2E_VM_ARGS:-}
  # The sidecars ask Prometheus for its external labels every second until it answers (the
  # default is every 30 s); the queriers check their endpoints every 2 s.
  start_thanos thanos-sidecar-a "$SIDECAR_A_PORT" "$SIDECAR_A_GRPC_PORT" sidecar \
    --prometheus.url="$PROMETHEUS_URL" --tsdb.path="$RUN/prometheus/data" \
    --prometheus.get_config_interval=1s
  start_thanos thanos-sidecar-b "$SIDECAR_B_PORT" "$SIDECAR_B_GRPC_PORT" sidecar \
    --prometheus.url="$PROMETHEUS_B_URL" --tsdb.path="$RUN/prometheus-b/data" \
    --prometheus.get_config_interval=1s
  start_thanos thanos-query "$QUERY_PORT" "$QUERY_GRPC_PORT" query \
    --endpoint.sd-config-file="$RUN/thanos/query.yml" --endpoint.info-timeout=2s
  start_thanos thanos-query-tenancy "$TENANCY_PORT" "$TENANCY_GRPC_PORT" query \
    --endpoint.sd-config-file="$RUN/thanos/query-tenancy.yml" --endpoint.info-timeout=2s \
    --query.enforce-tenancy --query.tenant-header="$THANOS_TENANT_HEADER" --query.tenant-label-name=tenant_id
  wait "$marker_pid" || die "could not write the Thanos marker block (log above)"
  start_thanos thanos-store "$STORE_PORT" "$STORE_GRPC_PORT" store \
    --objstore.config-file="$RUN/thanos/bucket.yml" --data-dir="$RUN/thanos/store"
}

# wait_backends waits until every backend answers and, with the exporter, until its data is
# queryable through each Thanos querier (as team-a through the tenancy one: prometheus-b's first
# scrape may come up to a second after Prometheus', and only the tenancy test, which waits for
# its own series, reads team-b). VictoriaMetrics shows scraped samples only after its
# next flush of recent rows (every 2 s, fixed), 2-3.5 s after the exporter starts where
# Prometheus takes ~1.5 s: its data is waited for only when promgate is to read it
# (E2E_BACKEND=victoriametrics; wait_vm_data), so that the other worlds come up as fast as
# without the backends. Tests reading VictoriaMetrics wait for their own series anyway.
wait_backends() { # wait_backends <exporter: 0|1>
  wait_for prometheus-b 60 "prometheus-b /-/ready on :$PROMETHEUS_B_PORT" http_ok "$PROMETHEUS_B_URL/-/ready"
  wait_for victoria-metrics 60 "VictoriaMetrics /health on :$VM_PORT" http_ok "$VM_URL/health"
  local c port
  for c in thanos-sidecar-a thanos-sidecar-b thanos-store thanos-query thanos-query-tenancy; do
    port=$(sed -n "s/^$c=//p" "$RUN/ports")
    wait_for "$c" 60 "$c /-/ready on :$port" http_ok "http://127.0.0.1:$port/-/ready"
  done
  [ "$1" = 1 ] || return 0
  [ "${E2E_BACKEND:-prometheus}" != victoriametrics ] || wait_vm_data
  wait_for thanos-query 60 "the exporter's data through thanos-query, no warnings" backend_has_exporter "$THANOS_URL"
  wait_for thanos-query-tenancy 60 "tenant team-a's data through thanos-query-tenancy" backend_has_exporter "$THANOS_TENANCY_URL" team-a
}

wait_vm_data() {
  wait_for victoria-metrics 60 "the exporter's data in VictoriaMetrics (under /prometheus)" backend_has_exporter "$VM_URL/prometheus"
}

any_running() {
  local n
  for n in "${CLIENTS[@]}" kube-apiserver etcd; do running "$n" && return 0; done
  return 1
}

cmd_up() {
  need_tools
  if any_running; then
    "$0" status >&2 || true
    die "the world in $RUN is already (partly) up: run '$0 down' first (or use it: E2E_REUSE=1)"
  fi
  local skip_exporter=${E2E_SKIP_EXPORTER:-0}
  if [ "$skip_exporter" != 1 ] && [ ! -d "$ROOT/test/exporter" ]; then
    log "WARNING: $ROOT/test/exporter does not exist yet: starting without the synthetic exporter"
    skip_exporter=1
  fi
  local with_backends=0
  backends_wanted && with_backends=1
  local ports=("$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT" "$PROMETHEUS_PORT")
  [ "$skip_exporter" = 1 ] || ports+=("$EXPORTER_PORT")
  # shellcheck disable=SC2207
  [ "$with_backends" = 0 ] || ports+=($(backend_ports))
  check_ports "${ports[@]}"

  log "run dir $RUN"
  # Fresh state, same PKI: data and pids are wiped, the previous logs kept in logs.prev/.
  rm -rf "$RUN/etcd" "$RUN/prometheus" "$RUN/kwok" "$RUN/promgate" "$RUN/kube-controller-manager" "$PIDS" "$RUN/ports" "$RUN/env" "$LOGS.prev" \
    "$RUN/prometheus-b" "$RUN/victoria-metrics" "$RUN/thanos" "$RUN/backends" "$RUN/cmdline"
  [ -d "$LOGS" ] && mv "$LOGS" "$LOGS.prev"
  mkdir -p "$PIDS" "$LOGS"

  "$HACK/pki.sh" "$PKI"
  write_kubeconfig "$ADMIN_KUBECONFIG" admin
  write_kubeconfig "$KCFG/kube-controller-manager.kubeconfig" kube-controller-manager
  write_kubeconfig "$KCFG/kube-scheduler.kubeconfig" kube-scheduler
  write_kubeconfig "$KCFG/kwok.kubeconfig" kwok
  write_kwok_config
  write_prometheus_config "$with_backends"
  [ "$with_backends" = 0 ] || write_backend_configs
  echo "$with_backends" > "$RUN/backends"
  write_audit_policy

  # The exporter is built in the background while the control plane starts.
  local exporter_build_pid=
  if [ "$skip_exporter" != 1 ]; then
    log "building test/exporter -> ${EXPORTER_BIN#"$ROOT"/} (in the background)"
    mkdir -p "$(dirname "$EXPORTER_BIN")"
    (cd "$ROOT" && go build -o "$EXPORTER_BIN" ./test/exporter) > "$LOGS/exporter-build.log" 2>&1 &
    exporter_build_pid=$!
  fi

  # Prometheus does not depend on Kubernetes: start it first, check it last. With a Thanos
  # sidecar reading its TSDB, its blocks are 2h, as the sidecar requires (no local compaction).
  local block_flags=()
  [ "$with_backends" = 0 ] || block_flags=(--storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration=2h)
  # shellcheck disable=SC2086
  start prometheus "$PROMETHEUS_PORT" "$BIN/prometheus" \
    --config.file="$RUN/prometheus/prometheus.yml" \
    --storage.tsdb.path="$RUN/prometheus/data" \
    --storage.tsdb.retention.time=1d \
    "${block_flags[@]+"${block_flags[@]}"}" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-admin-api --web.enable-lifecycle \
    ${E2E_PROMETHEUS_ARGS:-}
  local marker_pid=
  if [ "$with_backends" = 1 ]; then
    start_prometheus_b
    start_marker_block
  fi

  start etcd "$ETCD_PORT" "$BIN/etcd" \
    --name=e2e --data-dir="$RUN/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="e2e=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new \
    --heartbeat-interval=20 --election-timeout=200 \
    --unsafe-no-fsync --quota-backend-bytes=8589934592 --log-level=warn
  wait_for etcd 30 "etcd healthy on :$ETCD_PORT" etcd_healthy

  # shellcheck disable=SC2086
  start kube-apiserver "$APISERVER_PORT" "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range=10.0.0.0/24 --endpoint-reconciler-type=none \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-uid-headers=X-Remote-Uid --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --enable-aggregator-routing=false \
    --allow-privileged=true \
    --audit-policy-file="$RUN/audit-policy.yaml" --audit-log-path="$LOGS/kube-apiserver-audit.log" \
    ${E2E_APISERVER_ARGS:-}
  [ "$with_backends" = 0 ] || start_backends
  wait_for kube-apiserver 60 "kube-apiserver /readyz on :$APISERVER_PORT" apiserver_ready

  # shellcheck disable=SC2086
  start kube-controller-manager "$KCM_PORT" "$BIN/kube-controller-manager" \
    --kubeconfig="$KCFG/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$KCFG/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$KCFG/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --leader-elect=false --use-service-account-credentials \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --horizontal-pod-autoscaler-sync-period=5s --horizontal-pod-autoscaler-downscale-stabilization=0s \
    --kube-api-qps=200 --kube-api-burst=400 \
    --flex-volume-plugin-dir="$RUN/kube-controller-manager/flexvolume" \
    ${E2E_KCM_ARGS:-}
  # shellcheck disable=SC2086
  start kube-scheduler "$SCHEDULER_PORT" "$BIN/kube-scheduler" \
    --kubeconfig="$KCFG/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$KCFG/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$KCFG/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --leader-elect=false \
    ${E2E_SCHEDULER_ARGS:-}
  # shellcheck disable=SC2086
  start kwok "$KWOK_PORT" "$BIN/kwok" \
    --kubeconfig="$KCFG/kwok.kubeconfig" --config="$RUN/kwok/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 \
    --cidr="$POD_CIDR" --node-ip=127.0.0.1 --server-address="127.0.0.1:$KWOK_PORT" \
    ${E2E_KWOK_ARGS:-}

  # The exporter needs kube-apiserver (it watches pods and nodes); start it early so that
  # Prometheus' first scrapes overlap the waits below.
  if [ -n "$exporter_build_pid" ]; then
    if ! wait "$exporter_build_pid"; then
      cat "$LOGS/exporter-build.log" >&2
      die "go build ./test/exporter failed (log above; E2E_SKIP_EXPORTER=1 starts the world without it)"
    fi
    # shellcheck disable=SC2086
    start exporter "$EXPORTER_PORT" "$EXPORTER_BIN" \
      --listen="127.0.0.1:$EXPORTER_PORT" --kubeconfig="$ADMIN_KUBECONFIG" \
      ${E2E_EXPORTER_ARGS:-}
  fi

  log "creating $NODES kwok nodes (kwok-node-0..$((NODES - 1)))"
  nodes_yaml > "$RUN/kwok/nodes.yaml"
  kubectl apply -f "$RUN/kwok/nodes.yaml" > /dev/null
  wait_for kwok 60 "kwok /healthz on :$KWOK_PORT" kwok_healthy
  wait_for kwok 120 "$NODES kwok nodes Ready" nodes_ready
  wait_for kube-controller-manager 60 "kube-controller-manager /healthz on :$KCM_PORT" healthz_ok "$KCM_PORT"
  wait_for kube-scheduler 60 "kube-scheduler /healthz on :$SCHEDULER_PORT" healthz_ok "$SCHEDULER_PORT"
  wait_for kube-controller-manager 60 "ServiceAccount default/default (pods can be created)" default_sa_exists
  wait_for prometheus 60 "Prometheus /-/ready on :$PROMETHEUS_PORT" prometheus_ready
  if [ -n "$exporter_build_pid" ]; then
    wait_for exporter 60 "Prometheus scraped the exporter (up{job=\"promgate-test-exporter\"} == 1)" exporter_scraped
  fi
  if [ "$with_backends" = 1 ]; then
    wait_backends "$([ -n "$exporter_build_pid" ] && echo 1 || echo 0)"
  fi

  write_env
  log "world is up — source $RUN/env (KUBECONFIG, PROMETHEUS_URL, ...)"
}

cmd_down() {
  local n
  stop "${CLIENTS[@]}"
  stop kube-apiserver
  stop etcd
  # Anything recorded under a name we do not know (should not happen) is stopped last.
  if [ -d "$PIDS" ]; then
    for n in "$PIDS"/*.pid; do
      [ -e "$n" ] || continue
      n=$(basename "$n" .pid)
      stop "$n"
    done
  fi
  rm -f "$RUN/env"
  log "world is down (logs kept in $LOGS)"
}

cmd_status() {
  local n up=0 down=0 port names=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok prometheus exporter promgate)
  # The backends are part of the world when its "up" started them.
  backends_running && names+=("${BACKENDS[@]}")
  for n in "${names[@]}"; do
    port=$(sed -n "s/^$n=//p" "$RUN/ports" 2>/dev/null || true)
    if running "$n"; then
      printf '%-24s running  pid %-8s port %s\n' "$n" "$(pid_of "$n")" "${port:-?}"
      up=$((up + 1))
    else
      printf '%-24s stopped\n' "$n"
      case $n in exporter | promgate) ;; *) down=$((down + 1)) ;; esac
    fi
  done
  [ "$down" = 0 ] && [ -s "$RUN/env" ]
}

cmd_env() {
  [ -s "$RUN/env" ] || die "no env file in $RUN: the world is not up ('$0 up')"
  cat "$RUN/env"
}

# --- promgate ----------------------------------------------------------------------------------

render_overlay() {
  local base=$PROMGATE_DEPLOY_BASE
  if [ ! -f "$base/kustomization.yaml" ]; then
    local fallback=$ROOT/test/e2e/testdata/deploy-base
    log "WARNING: $base/kustomization.yaml not found: using the stand-in base ${fallback#"$ROOT"/}"
    base=$fallback
  fi
  local dir=$RUN/promgate/overlay
  mkdir -p "$dir"
  local rel comp
  rel=$(realpath --relative-to="$dir" "$base")
  comp=$(realpath --relative-to="$dir" "$ROOT/deploy/components/ca-bundle")
  # The supported way to verify promgate with a CA of one's own (docs/security.md): Secret
  # promgate-tls with the serving cert and its CA, and the ca-bundle component, which copies
  # ca.crt into every APIService's caBundle. (Its key pair is the one promgate serves below.)
  kubectl create secret generic promgate-tls -n promgate --type=kubernetes.io/tls \
    --from-file=tls.crt="$PKI/promgate.crt" --from-file=tls.key="$PKI/promgate.key" \
    --from-file=ca.crt="$PKI/promgate-ca.crt" --dry-run=client -o yaml > "$dir/promgate-tls.yaml"
  cat > "$dir/kustomization.yaml" <<EOF
# Generated by test/e2e/hack/world.sh register-promgate: the real deploy base, re-pointed at
# promgate running as a local process on 127.0.0.1:$PROMGATE_PORT.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $rel
- promgate-tls.yaml
components:
- $comp
patches:
# No in-cluster workload: promgate runs on this machine.
- target: {kind: Deployment}
  patch: |
    \$patch: delete
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: any}
- target: {kind: PodDisruptionBudget}
  patch: |
    \$patch: delete
    apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: {name: any}
# kube-apiserver (--enable-aggregator-routing=false) resolves an ExternalName Service to
# externalName:<APIService port>, i.e. localhost:$PROMGATE_PORT, and verifies the serving cert
# for <service>.<namespace>.svc.
- target: {kind: Service, name: promgate}
  patch: |
    - op: replace
      path: /spec
      value:
        type: ExternalName
        externalName: localhost
        ports:
        - name: https
          port: 443
          targetPort: $PROMGATE_PORT
- target: {kind: APIService}
  patch: |
    - op: add
      path: /spec/service/port
      value: $PROMGATE_PORT
EOF
  kubectl kustomize "$dir" > "$RUN/promgate/applied.yaml"
  if grep -qE '^kind: (Deployment|PodDisruptionBudget)$' "$RUN/promgate/applied.yaml"; then
    die "the rendered overlay still holds a Deployment/PodDisruptionBudget ($RUN/promgate/applied.yaml)"
  fi
  grep -q '^kind: APIService$' "$RUN/promgate/applied.yaml" || die "no APIService in $base"
}

cmd_stop_promgate() { stop promgate; }

cmd_register_promgate() {
  running kube-apiserver || die "the world is not up ('$0 up')"
  [ -x "$PROMGATE_BIN" ] || die "PROMGATE_BIN=$PROMGATE_BIN is not an executable (go build -o bin/promgate ./cmd/promgate)"
  stop promgate
  check_ports "$PROMGATE_PORT"

  log "rendering and applying the deploy overlay (${RUN#"$ROOT"/}/promgate/overlay)"
  render_overlay
  kubectl apply -k "$RUN/promgate/overlay" >&2

  log "creating a token for ServiceAccount promgate/promgate (TokenRequest, 24h)"
  local token
  token=$(kubectl create token promgate -n promgate --duration=24h)
  write_kubeconfig "$KCFG/promgate.kubeconfig" promgate "$token"

  # The backend promgate reads (E2E_BACKEND).
  local backend_url backend_args=()
  case ${E2E_BACKEND:-prometheus} in
    prometheus) backend_url=$PROMETHEUS_URL ;;
    thanos) backend_url=$THANOS_URL ;;
    thanos-tenancy)
      backend_url=$THANOS_TENANCY_URL
      backend_args=(--prometheus-header="$THANOS_TENANT_HEADER=team-a") ;;
    # VictoriaMetrics' Prometheus API under a path prefix, as VM cluster serves it
    # (/select/<accountID>/prometheus); single node serves it under /prometheus too.
    victoriametrics) backend_url=$VM_URL/prometheus ;;
    *) die "E2E_BACKEND=$E2E_BACKEND: want prometheus, thanos, thanos-tenancy or victoriametrics" ;;
  esac
  if [ "${E2E_BACKEND:-prometheus}" != prometheus ] && ! backends_running; then
    die "E2E_BACKEND=$E2E_BACKEND, but this world runs no Thanos or VictoriaMetrics (E2E_BACKENDS=0, or thanos/victoria-metrics missing from $BIN)"
  fi
  if [ "${E2E_BACKEND:-}" = victoriametrics ] && running exporter; then wait_vm_data; fi
  log "promgate's backend: ${E2E_BACKEND:-prometheus} ($backend_url)"

  local cfg=()
  if [ -f "$PROMGATE_CONFIG" ]; then
    cfg=(--config="$PROMGATE_CONFIG")
  else
    log "WARNING: PROMGATE_CONFIG=$PROMGATE_CONFIG does not exist: starting promgate without --config"
  fi
  # shellcheck disable=SC2086
  start promgate "$PROMGATE_PORT" "$PROMGATE_BIN" \
    --secure-port="$PROMGATE_PORT" --bind-address=127.0.0.1 \
    --tls-cert-file="$PKI/promgate.crt" --tls-private-key-file="$PKI/promgate.key" \
    --lister-kubeconfig="$KCFG/promgate.kubeconfig" \
    --authentication-kubeconfig="$KCFG/promgate.kubeconfig" \
    --authorization-kubeconfig="$KCFG/promgate.kubeconfig" \
    --prometheus-url="$backend_url" "${backend_args[@]+"${backend_args[@]}"}" \
    "${cfg[@]}" \
    --metrics-relist-interval=5s \
    --discovery-interval=5s \
    -v=2 \
    ${PROMGATE_ARGS:-}
  wait_for promgate 120 "promgate /readyz on :$PROMGATE_PORT" promgate_ready

  local apiservices
  if [ -n "${PROMGATE_WAIT_APISERVICES:-}" ]; then
    apiservices=$(printf 'apiservice/%s ' $PROMGATE_WAIT_APISERVICES)
  else
    apiservices=$(kubectl get -f "$RUN/promgate/applied.yaml" -o name | grep '^apiservice' | tr '\n' ' ')
  fi
  # shellcheck disable=SC2086
  if ! (wait_for promgate 60 "APIServices Available: ${apiservices//apiservice.apiregistration.k8s.io\//}" \
          kubectl wait --for=condition=Available --timeout=1s $apiservices); then
    log "APIService conditions:"
    # shellcheck disable=SC2086
    kubectl get $apiservices -o \
      jsonpath='{range .items[*]}{.metadata.name}{": "}{.status.conditions[?(@.type=="Available")].status}{" "}{.status.conditions[?(@.type=="Available")].message}{"\n"}{end}' >&2 || true
    die "promgate is running (log $LOGS/promgate.log) but not every APIService is Available"
  fi
  write_env
  log "promgate is registered"
}

# --- fault injection ---------------------------------------------------------------------------
# "kill" saves the component's command line (NUL-separated, from /proc/<pid>/cmdline) so that
# "revive" starts exactly the same process again: same flags, same data directory (Prometheus'
# TSDB then has a gap), same port and log file.

cmd_signal() { # signal <component> <SIG>
  local name=${1:?component} sig=${2:?signal, e.g. STOP}
  running "$name" || die "$name is not running"
  log "sending SIG$sig to $name (pid $(pid_of "$name"))"
  kill "-$sig" "$(pid_of "$name")"
}

cmd_kill() { # kill <component> [SIG]
  local name=${1:?component} sig=${2:-KILL} pid deadline
  running "$name" || die "$name is not running"
  pid=$(pid_of "$name")
  mkdir -p "$RUN/cmdline"
  cp "/proc/$pid/cmdline" "$RUN/cmdline/$name"
  log "sending SIG$sig to $name (pid $pid)"
  kill "-$sig" "$pid"
  [ "$sig" = KILL ] || kill -CONT "$pid" 2>/dev/null || true # a stopped process cannot exit
  deadline=$(( $(date +%s) + 20 ))
  while running "$name"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      [ "$sig" != KILL ] || die "$name (pid $pid) still alive 20 s after SIGKILL"
      log "WARNING: $name did not exit within 20 s of SIG$sig, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sig=KILL deadline=$(( $(date +%s) + 20 ))
    fi
    sleep 0.05
  done
  rm -f "$PIDS/$name.pid"
  log "$name is gone"
}

cmd_revive() { # revive <component>
  local name=${1:?component} port deadline args=()
  local f=$RUN/cmdline/$name
  running "$name" && die "$name is already running"
  [ -s "$f" ] || die "no saved command line for $name ('$0 kill $name' saves it)"
  mapfile -d '' args < "$f"
  port=$(sed -n "s/^$name=//p" "$RUN/ports" 2>/dev/null || true)
  deadline=$(( $(date +%s) + 10 ))
  local p
  for p in $(ports_of "$name"); do
    until port_free "$p" || [ "$(date +%s)" -ge "$deadline" ]; do sleep 0.05; done
  done
  start "$name" "${port:-0}" "${args[@]}"
  case $name in
    kube-apiserver) wait_for "$name" 60 "kube-apiserver /readyz on :$port" apiserver_ready ;;
    prometheus) wait_for "$name" 60 "Prometheus /-/ready on :$port" prometheus_ready ;;
    etcd) wait_for "$name" 30 "etcd healthy on :$port" etcd_healthy ;;
    promgate) wait_for "$name" 120 "promgate /readyz on :$port" promgate_ready ;;
    kube-controller-manager | kube-scheduler) wait_for "$name" 60 "$name /healthz on :$port" healthz_ok "$port" ;;
    kwok) wait_for "$name" 60 "kwok /healthz on :$port" kwok_healthy ;;
    prometheus-b | thanos-*) wait_for "$name" 60 "$name /-/ready on :$port" http_ok "http://127.0.0.1:$port/-/ready" ;;
    victoria-metrics) wait_for "$name" 60 "VictoriaMetrics /health on :$port" http_ok "http://127.0.0.1:$port/health" ;;
    *) sleep 0.5; running "$name" || die "$name exited at once (log $LOGS/$name.log)" ;;
  esac
}

cmd_restart() { cmd_kill "${1:?component}" TERM; cmd_revive "$1"; }

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  register-promgate) cmd_register_promgate ;;
  stop-promgate) cmd_stop_promgate ;;
  signal) shift; cmd_signal "$@" ;;
  kill) shift; cmd_kill "$@" ;;
  revive) shift; cmd_revive "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
