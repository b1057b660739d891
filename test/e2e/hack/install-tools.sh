#!/usr/bin/env bash
# Installs, once, every binary the end-to-end world needs and links it into
# $PROMGATE_CACHE/bin (default: <repo>/.cache/bin, git-ignored):
#   etcd 3.6, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
#   (v1.37, built from the Go module proxy), kwok, helm (deploy/helm/helm.mk: lint and
#   template the chart), Thanos and VictoriaMetrics with vmauth (the scale-out backends the
#   e2e suite also runs against) and Prometheus (Debian).
# Built binaries are kept by version in a per-user tool cache that every clone on
# the machine shares ($PROMGATE_TOOLS_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/promgate-tools;
# <repo>/.cache/tools when that is not writable), so a fresh clone links them in seconds.
# Re-running it is cheap: anything already present is skipped.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
CACHE=${PROMGATE_CACHE:-$ROOT/.cache}
BIN=$CACHE/bin
TOOLS=${PROMGATE_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/promgate-tools}
if ! mkdir -p "$TOOLS" 2>/dev/null || [ ! -w "$TOOLS" ]; then
  TOOLS=$CACHE/tools
fi
BUILD=$TOOLS/build
mkdir -p "$BIN" "$BUILD"

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# v0.42.4 is the newest v0.42 whose go.mod asks for no newer Go than the machine's 1.26.8.
THANOS_VERSION=${THANOS_VERSION:-v0.42.4}
# v1.151.0 is the newest VictoriaMetrics that resolves with Go 1.26.
VM_VERSION=${VM_VERSION:-v1.151.0}

export GOFLAGS=-mod=mod
log() { printf '[install-tools] %s\n' "$*" >&2; }

# link NAME VERSION: points $BIN/NAME at the cached build of VERSION; fails when absent.
link() {
  local f=$TOOLS/$1-$2/$1
  [ -x "$f" ] || return 1
  ln -sfn "$f" "$BIN/$1"
}

build_etcd() {
  link etcd "$ETCD_VERSION" && return
  log "building etcd $ETCD_VERSION"
  local d=$BUILD/etcd
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  cat > go.mod <<MOD
module promgate.local/etcdbuild

go 1.24

require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/etcdctl/v3 $ETCD_VERSION
)
MOD
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
GO
  go mod tidy >/dev/null
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$TOOLS/etcd-$ETCD_VERSION/etcd" go.etcd.io/etcd/server/v3
  link etcd "$ETCD_VERSION"
}

build_kube() {
  local c missing=0
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    link "$c" "$KUBE_VERSION" || missing=1
  done
  [ "$missing" = 0 ] && return
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBE_VERSION"
  local d=$BUILD/kubernetes
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local goline
  goline=$(grep -m1 '^go ' "$gomod")
  {
    echo "module promgate.local/kubebuild"
    echo
    echo "$goline"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '^\s*k8s.io/[^ ]+ => ./staging/' "$gomod" | awk -v v="${KUBE_VERSION/v1/v0}" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy >/dev/null
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  # One go build for the four: their packages compile once and the links (single-threaded,
  # ~120 MB each) run side by side.
  local out=$d/out pkgs=()
  mkdir -p "$out"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    pkgs+=("k8s.io/kubernetes/cmd/$c")
  done
  log "  go build ${pkgs[*]}"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$out/" "${pkgs[@]}"
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    mkdir -p "$TOOLS/$c-$KUBE_VERSION"
    mv "$out/$c" "$TOOLS/$c-$KUBE_VERSION/$c"
    link "$c" "$KUBE_VERSION"
  done
}

build_kwok() {
  if ! link kwok "$KWOK_VERSION"; then
    log "installing kwok $KWOK_VERSION"
    GOBIN=$TOOLS/kwok-$KWOK_VERSION CGO_ENABLED=0 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    link kwok "$KWOK_VERSION"
  fi
  # The stage definitions keep the module's layout (kwok-stages/node/fast/node-initialize.yaml,
  # kwok-stages/pod/fast/pod-ready.yaml, ...): several directories ship files with the same
  # name (pod/fast/pod-ready.yaml vs pod/general/pod-ready.yaml), so a flat copy would let one
  # silently overwrite the other. testdata/ is left out.
  [ -f "$CACHE/kwok-stages/pod/fast/pod-ready.yaml" ] && return
  log "copying kwok $KWOK_VERSION stage definitions"
  local src
  src=$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage
  [ -d "$src" ] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  rm -rf "$CACHE/kwok-stages" && mkdir -p "$CACHE/kwok-stages"
  cp -r "$src/." "$CACHE/kwok-stages/"
  chmod -R u+w "$CACHE/kwok-stages"
  find "$CACHE/kwok-stages" -depth -type d -name testdata -exec rm -rf {} +
  find "$CACHE/kwok-stages" -type f ! -name '*.yaml' -delete
}

# helm, built from the module proxy with the version stamps of helm's own Makefile (its
# `helm version`, and the Kubernetes version `helm lint` and `helm template` assume: that of
# the k8s.io modules it was built with).
build_helm() {
  link helm "$HELM_VERSION" && return
  log "installing helm $HELM_VERSION"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  local kv
  kv=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  kv=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$kv")
  if [ -n "$kv" ]; then
    for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
      ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kv"
    done
  fi
  GOBIN=$TOOLS/helm-$HELM_VERSION CGO_ENABLED=0 go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  link helm "$HELM_VERSION"
}

# thanos (sidecar, query, receive), built in a throwaway module that copies Thanos' own
# replace block. -tags slicelabels: without it the sidecar panics on its first gRPC call.
build_thanos() {
  link thanos "$THANOS_VERSION" && return
  log "building thanos $THANOS_VERSION"
  local d=$BUILD/thanos
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  local gomod
  gomod=$(go mod download -json "github.com/thanos-io/thanos@$THANOS_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module promgate.local/thanosbuild"
    echo
    grep -m1 '^go ' "$gomod"
    echo
    echo "require github.com/thanos-io/thanos $THANOS_VERSION"
    echo
    sed -n '/^replace (/,/^)/p' "$gomod"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/thanos-io/thanos/cmd/thanos"
GO
  go mod tidy >/dev/null
  local b=github.com/prometheus/common/version
  CGO_ENABLED=0 go build -trimpath -tags netgo,slicelabels \
    -ldflags "-s -w -X $b.Version=${THANOS_VERSION#v} -X $b.Branch=release -X $b.Revision=module-proxy" \
    -o "$TOOLS/thanos-$THANOS_VERSION/thanos" github.com/thanos-io/thanos/cmd/thanos
  link thanos "$THANOS_VERSION"
}

# victoria-metrics (single node) and vmauth (its authenticating proxy, which checks bearer
# tokens and basic auth against a file it re-reads) from one throwaway module.
build_vm() {
  local c missing=0
  for c in victoria-metrics vmauth; do
    link "$c" "$VM_VERSION" || missing=1
  done
  [ "$missing" = 0 ] && return
  log "building victoria-metrics and vmauth $VM_VERSION"
  local d=$BUILD/victoriametrics
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  local gomod
  gomod=$(go mod download -json "github.com/VictoriaMetrics/VictoriaMetrics@$VM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module promgate.local/vmbuild"
    echo
    grep -m1 '^go ' "$gomod"
    echo
    echo "require github.com/VictoriaMetrics/VictoriaMetrics $VM_VERSION"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/vmauth"
)
GO
  go mod tidy >/dev/null
  for c in victoria-metrics vmauth; do
    link "$c" "$VM_VERSION" && continue
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=$c-$VM_VERSION" \
      -o "$TOOLS/$c-$VM_VERSION/$c" "github.com/VictoriaMetrics/VictoriaMetrics/app/$c"
    link "$c" "$VM_VERSION"
  done
}

install_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    ln -sf "$(command -v prometheus)" "$BIN/prometheus"
    ln -sf "$(command -v promtool)" "$BIN/promtool"
    return
  fi
  log "installing prometheus from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus openssl >/dev/null
  ln -sf "$(command -v prometheus)" "$BIN/prometheus"
  ln -sf "$(command -v promtool)" "$BIN/promtool"
}

need_openssl() {
  command -v openssl >/dev/null && return
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends openssl >/dev/null
}

# build_all runs every build at once, each logging to its own file: on a fresh machine most of
# a build is downloading modules and linking (one core), so side by side they overlap what one
# at a time would wait for. The first failure's log is printed.
build_all() {
  local logs=$BUILD/logs pids=() names=() t i failed=0
  mkdir -p "$logs"
  for t in etcd kwok vm thanos helm kube; do
    ( start=$(date +%s); "build_$t"; log "$t ready ($(( $(date +%s) - start )) s)" ) > "$logs/$t.log" 2>&1 &
    pids+=($!) names+=("$t")
  done
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      grep -h '^\[install-tools\]' "$logs/${names[$i]}.log" >&2 || true
    else
      log "building ${names[$i]} failed; its log ($logs/${names[$i]}.log) ends:"
      tail -40 "$logs/${names[$i]}.log" >&2
      failed=1
    fi
  done
  return "$failed"
}

what=${1:-all}
case $what in
  all) need_openssl; install_prometheus; build_all ;;
  etcd) build_etcd ;;
  kube) build_kube ;;
  kwok) build_kwok ;;
  helm) build_helm ;;
  thanos) build_thanos ;;
  vm) build_vm ;;
  prometheus) install_prometheus ;;
  *) echo "usage: $0 [all|etcd|kube|kwok|helm|thanos|vm|prometheus]" >&2; exit 2 ;;
esac
log "tools ready in $BIN"
