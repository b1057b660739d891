#!/usr/bin/env bash
# demo.sh — promgate's main job on a self-contained loopback world: starts the
# control plane, Prometheus and a workload, registers promgate through the
# aggregation layer, then shows kubectl top, custom and external metrics and
# an HPA scaling on a custom metric. `make demo-down` stops everything.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HACK=$ROOT/test/e2e/hack
cd "$ROOT"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
pretty() { if command -v python3 >/dev/null; then python3 -m json.tool; else cat; echo; fi; }

if "$HACK/world.sh" status >/dev/null 2>&1; then
  say "the world is already up; restarting promgate"
else
  say "starting etcd, kube-apiserver, controller-manager, scheduler, kwok, Prometheus and the workload exporter"
  "$HACK/world.sh" up
fi
"$HACK/world.sh" register-promgate
eval "$("$HACK/world.sh" env)"
export KUBECONFIG
K() { "$E2E_KUBECTL" "$@"; }

say "a workload: Deployment web (3 pods, 10 req/s each, 20% errors; app 250m/200Mi/32Mi swapped + sidecar 100m/64Mi), Service web, queue 'orders' with 42 messages"
K create namespace demo --dry-run=client -o yaml | K apply -f - >/dev/null
K apply -f - >/dev/null <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        e2e.promgate.io/rps: "10"
        e2e.promgate.io/error-ratio: "0.2"
        e2e.promgate.io/cpu.app: 250m
        e2e.promgate.io/memory.app: 200Mi
        e2e.promgate.io/swap.app: 32Mi
    spec:
      nodeSelector: {type: kwok}
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
      containers:
      - {name: app, image: demo/app:1, resources: {requests: {cpu: 300m, memory: 256Mi}}}
      - {name: sidecar, image: demo/sidecar:1, resources: {requests: {cpu: 100m, memory: 64Mi}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  selector: {app: web}
  ports: [{port: 80}]
EOF
curl -fsS -X POST "$E2E_EXPORTER_URL/control/queue?namespace=demo&queue=orders&value=42" >/dev/null
K -n demo rollout status deploy/web --timeout=90s

say "waiting 65 s for Prometheus to hold a full 1m rate window"
sleep 65

say "APIServices served by promgate"
K get apiservices | grep -E 'NAME|metrics'

say "kubectl top node   (root cgroup of each node, not the sum of its pods)"
K top node
say "kubectl top pod -n demo --containers   (working set; pause container not counted)"
K top pod -n demo --containers
say "kubectl top pod -n demo"
K top pod -n demo
say "kubectl top pod -n demo --show-swap   (kubectl 1.37; metrics-server has no swap)"
K top pod -n demo --show-swap
say "kubectl top node --show-swap   (kwok-node-0 swaps 1Gi of its 4Gi)"
K top node --show-swap

say "custom metric: GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second"
K get --raw "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests_per_second" | pretty
say "custom metric about a Service: .../namespaces/demo/services/web/http_requests_5xx_per_second"
K get --raw "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/services/web/http_requests_5xx_per_second" | pretty
say "external metric: GET /apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_messages_ready?labelSelector=queue=orders"
K get --raw "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_messages_ready?labelSelector=queue%3Dorders" | pretty

say "an HPA on http_requests_per_second (target 5 per pod, currently 10): watch it scale up"
K apply -f - >/dev/null <<'EOF'
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: demo}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 6
  metrics:
  - type: Pods
    pods:
      metric: {name: http_requests_per_second}
      target: {type: AverageValue, averageValue: "5"}
EOF
last=""
for _ in $(seq 1 60); do
  cur=$(K -n demo get hpa web -o jsonpath='{.status.currentMetrics[0].pods.current.averageValue} per pod, {.status.currentReplicas} -> {.status.desiredReplicas} replicas' 2>/dev/null || true)
  if [ -n "$cur" ] && [ "$cur" != "$last" ]; then echo "  $(date +%T)  $cur"; last=$cur; fi
  [ "$(K -n demo get deploy web -o jsonpath='{.status.readyReplicas}')" = 6 ] && break
  sleep 2
done
K -n demo get hpa web
K -n demo get pods -o wide

cat <<EOF

promgate is running against a loopback cluster. Try:
  eval "\$(test/e2e/hack/world.sh env)"
  kubectl top pod -A
  kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2 | python3 -m json.tool
  bin/promgate explain --config config/promgate.yaml --prometheus-url \$PROMETHEUS_URL --kubeconfig \$KUBECONFIG
Logs: $E2E_RUN_DIR/logs/   Stop everything: make demo-down
EOF
