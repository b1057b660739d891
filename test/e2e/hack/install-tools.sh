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
# Re-running it is cheap: anything already present is skipped. On a fresh machine the builds run
# side by side (build_all), and the Kubernetes tools share one module and one compile with
# promgate's own builds (build_kube).
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
# helm: the version promgate's go.mod requires (deploy/helm_test.go renders the chart with its
# library), so that the binary and the tests agree.
HELM_VERSION=${HELM_VERSION:-$(awk '$1 == "helm.sh/helm/v3" {print $2; exit}' "$ROOT/go.mod")}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# v0.42.4 is the newest v0.42 whose go.mod asks for no newer Go than the machine's 1.26.8.
THANOS_VERSION=${THANOS_VERSION:-v0.42.4}
# v1.151.0 is the newest VictoriaMetrics that resolves with Go 1.26.
VM_VERSION=${VM_VERSION:-v1.151.0}

# The caller's GOFLAGS stay (make adds -gcflags=all=-dwarf=false, so that the tools' packages
# are compiled as promgate's builds compile them and share the build cache).
export GOFLAGS="-mod=mod${GOFLAGS:+ $GOFLAGS}"
# The compiler and linker spend about a fifth of their CPU collecting garbage at the default GOGC
# (see BUILD_GOGC in the Makefile).
export GOGC=${GOGC:-400}
log() { printf '[install-tools] %s\n' "$*" >&2; }

# gomod_of MODULE@VERSION: the path of that module's go.mod in the module cache (downloaded).
gomod_of() {
  go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p'
}

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
  CGO_ENABLED=0 go build -ldflags "-s -w" -o "$TOOLS/etcd-$ETCD_VERSION/etcd" go.etcd.io/etcd/server/v3
  link etcd "$ETCD_VERSION"
}

# The Kubernetes tools — kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, helm
# and kwok — are built by one go build in one throwaway module, so the Kubernetes libraries they
# share compile once. That module requires, beside them, everything promgate's go.mod requires:
# where promgate's versions are the newer, the tools build with them, and then promgate's own
# (plain, CGO_ENABLED=0, no -trimpath) builds find those packages compiled in the Go build cache:
# on a fresh machine, promgate's binary and the e2e and auth suites do not compile the Kubernetes
# libraries a second time. Version skew only loses that sharing; the tools are correct either way.
KUBE_TOOLS="kube-apiserver kube-controller-manager kube-scheduler kubectl helm kwok"

# kube_tool_version NAME: the version NAME is cached under.
kube_tool_version() {
  case $1 in
    helm) echo "$HELM_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    *) echo "$KUBE_VERSION" ;;
  esac
}

build_kube() {
  local c missing=()
  for c in $KUBE_TOOLS; do
    link "$c" "$(kube_tool_version "$c")" || missing+=("$c")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "building ${missing[*]} (Kubernetes $KUBE_VERSION, helm $HELM_VERSION, kwok $KWOK_VERSION)"
    kube_module
    kube_go_build "${missing[@]}"
  fi
  kwok_stages
}

# kube_module writes the throwaway module: k8s.io/kubernetes with its staging replacements (the
# modules its own go.mod replaces with ./staging/...), helm, kwok, and promgate's requirements.
kube_module() {
  local d=$BUILD/kubernetes gomod goline
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  gomod=$(gomod_of "k8s.io/kubernetes@$KUBE_VERSION")
  # The newer go line of the two.
  goline=$(printf '%s\n' "$(sed -n 's/^go //p' "$gomod" | head -1)" "$(sed -n 's/^go //p' "$ROOT/go.mod" | head -1)" | sort -V | tail -1)
  {
    echo "module promgate.local/kubebuild"
    echo
    echo "go $goline"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $KUBE_VERSION"
    echo "	helm.sh/helm/v3 $HELM_VERSION"
    echo "	sigs.k8s.io/kwok $KWOK_VERSION"
    awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r&&$1!~/^\/\//{print "\t" $1 " " $2} /^require [^(]/{print "\t" $2 " " $3}' "$ROOT/go.mod" |
      grep -v -e '^	helm.sh/helm/v3 ' -e '^	sigs.k8s.io/kwok '
    echo ")"
    echo
    echo "replace ("
    grep -E '^\s*k8s.io/[^ ]+ => ./staging/' "$gomod" | awk -v v="${KUBE_VERSION/v1/v0}" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
GO
  go mod tidy >/dev/null
  # helm's version may have been raised by promgate's go.mod: cache it under the one built.
  HELM_VERSION=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
}

# kube_go_build NAME...: one go build for the tools named (run in the module kube_module wrote):
# their packages compile once and the links (single-threaded, ~120 MB each) run side by side.
# The version stamps are those of the projects' own release builds: Kubernetes' (component-base
# and client-go), and helm's (its version, and the Kubernetes version that helm lint and helm
# template assume: that of the k8s.io modules it is built with).
kube_go_build() {
  local d=$BUILD/kubernetes out c p v pkgs=() minor kv ld="-s -w"
  cd "$d"
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  ld="$ld -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  kv=$(go list -m -f '{{.Version}}' k8s.io/client-go | sed -n 's/^v0\.\([0-9]*\)\..*/\1/p')
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld="$ld -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kv"
  done
  for c in "$@"; do
    case $c in
      helm) pkgs+=(helm.sh/helm/v3/cmd/helm) ;;
      kwok) pkgs+=(sigs.k8s.io/kwok/cmd/kwok) ;;
      *) pkgs+=("k8s.io/kubernetes/cmd/$c") ;;
    esac
  done
  out=$d/out
  rm -rf "$out" && mkdir -p "$out"
  log "  go build ${pkgs[*]}"
  CGO_ENABLED=0 go build -ldflags "$ld" -o "$out/" "${pkgs[@]}"
  for c in "$@"; do
    v=$(kube_tool_version "$c")
    mkdir -p "$TOOLS/$c-$v"
    mv "$out/$c" "$TOOLS/$c-$v/$c"
    link "$c" "$v"
  done
}

# kwok_stages copies kwok's stage definitions. They keep the module's layout
# (kwok-stages/node/fast/node-initialize.yaml, kwok-stages/pod/fast/pod-ready.yaml, ...): several
# directories ship files with the same name (pod/fast/pod-ready.yaml vs pod/general/pod-ready.yaml),
# so a flat copy would let one silently overwrite the other. testdata/ is left out.
kwok_stages() {
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

# thanos (sidecar, query, receive), built in a throwaway module that copies Thanos' own
# replace block. -tags slicelabels: without it the sidecar panics on its first gRPC call.
build_thanos() {
  link thanos "$THANOS_VERSION" && return
  log "building thanos $THANOS_VERSION"
  local d=$BUILD/thanos
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  local gomod
  gomod=$(gomod_of "github.com/thanos-io/thanos@$THANOS_VERSION")
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
  CGO_ENABLED=0 go build -tags slicelabels \
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
  gomod=$(gomod_of "github.com/VictoriaMetrics/VictoriaMetrics@$VM_VERSION")
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
    CGO_ENABLED=0 go build \
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
  for t in etcd vm thanos kube; do
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
  kube|kwok|helm) build_kube ;;
  thanos) build_thanos ;;
  vm) build_vm ;;
  prometheus) install_prometheus ;;
  *) echo "usage: $0 [all|etcd|kube|kwok|helm|thanos|vm|prometheus] (kube, kwok and helm build together)" >&2; exit 2 ;;
esac
log "tools ready in $BIN"
