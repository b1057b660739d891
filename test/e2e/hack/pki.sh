#!/usr/bin/env bash
# Generates, with openssl, every certificate and key the loopback e2e world needs, into
# <dir> (default: $E2E_RUN_DIR/pki, E2E_RUN_DIR defaulting to <repo>/.cache/e2e-run/).
#
#   ca.{crt,key}                  cluster CA: signs the apiserver serving cert and every client cert
#   apiserver.{crt,key}           kube-apiserver serving cert; SANs 127.0.0.1, localhost,
#                                 kubernetes, kubernetes.default, kubernetes.default.svc(.cluster.local), 10.0.0.1
#   admin.{crt,key}               CN=kubernetes-admin, O=system:masters
#   kube-controller-manager.*     CN=system:kube-controller-manager
#   kube-scheduler.*              CN=system:kube-scheduler
#   kwok.{crt,key}                CN=kwok-controller, O=system:masters (kwok updates any node/pod status)
#   front-proxy-ca.{crt,key}      request-header CA for the aggregation layer
#   front-proxy-client.{crt,key}  CN=front-proxy-client, signed by front-proxy-ca (kube-apiserver's
#                                 --proxy-client-cert-file: how it authenticates to promgate)
#   sa.{key,pub}                  service-account token signing key pair
#   promgate-ca.{crt,key}         promgate's own CA (the APIServices' caBundle)
#   promgate.{crt,key}            promgate's serving cert; SANs promgate.promgate.svc (the name kube-apiserver
#                                 verifies), promgate.promgate.svc.cluster.local, localhost, 127.0.0.1
#
# Keys are ECDSA P-256 (fast to generate). Existing files are kept, so re-running is cheap;
# pass --force to regenerate everything.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
DIR=${1:-${E2E_RUN_DIR:-$ROOT/.cache/e2e-run}/pki}
DAYS=${PKI_DAYS:-365}

log() { printf '[pki] %s\n' "$*" >&2; }

command -v openssl >/dev/null || { log "openssl not found (apt-get install openssl)"; exit 1; }
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"

if [ "$force" = 1 ]; then
  log "removing the existing PKI in $DIR"
  rm -f ./*.crt ./*.key ./*.pub ./*.csr ./*.srl ./*.ext
fi

newkey() { # newkey <name>
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
  chmod 600 "$1.key"
}

ca() { # ca <name> <CN>
  local name=$1 cn=$2
  [ -s "$name.crt" ] && [ -s "$name.key" ] && return
  log "CA $name ($cn)"
  newkey "$name"
  openssl req -x509 -new -key "$name.key" -sha256 -days "$DAYS" -subj "/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$name.crt" 2>/dev/null
}

# cert <name> <signing CA> <subject> <serverAuth|clientAuth> [SANs]
cert() {
  local name=$1 signer=$2 subj=$3 usage=$4 sans=${5:-}
  if [ -s "$name.crt" ] && [ -s "$name.key" ] && \
     openssl verify -CAfile "$signer.crt" "$name.crt" >/dev/null 2>&1; then
    return
  fi
  log "cert $name ($subj, $usage${sans:+, $sans}) signed by $signer"
  newkey "$name"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    echo "authorityKeyIdentifier=keyid"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$signer.crt" -CAkey "$signer.key" -CAcreateserial \
    -sha256 -days "$DAYS" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

ca ca "promgate-e2e-cluster-ca"
ca front-proxy-ca "promgate-e2e-front-proxy-ca"
ca promgate-ca "promgate-e2e-promgate-ca"

cert apiserver ca "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin ca "/O=system:masters/CN=kubernetes-admin" clientAuth
cert kube-controller-manager ca "/CN=system:kube-controller-manager" clientAuth
cert kube-scheduler ca "/CN=system:kube-scheduler" clientAuth
cert kwok ca "/O=system:masters/CN=kwok-controller" clientAuth
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth
cert promgate promgate-ca "/CN=promgate.promgate.svc" serverAuth \
  "DNS:promgate.promgate.svc,DNS:promgate.promgate.svc.cluster.local,DNS:localhost,IP:127.0.0.1"

if [ ! -s sa.key ] || [ ! -s sa.pub ]; then
  log "service-account key pair sa.{key,pub}"
  newkey sa
  openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
fi
rm -f ./*.srl

log "PKI ready in $DIR"
