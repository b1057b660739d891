// Package deploy holds promgate's installation manifests: the kustomize base
// in deploy/base, the overlays in deploy/overlays (cert-manager, and the
// opt-in insecure-skip-tls-verify), the ca-bundle component in
// deploy/components, the Helm chart in deploy/helm/promgate (tested to render
// the same objects as the base) and the dashboard and alerting rules in
// deploy/monitoring. Its tests render every variant with kustomize and check
// that each stays consistent with itself and with config/promgate.yaml, that
// kube-apiserver verifies promgate's certificate by a CA unless an overlay
// opts out, and that promgate's service account can read no Secrets and no
// wildcard of resources (see docs/security.md).
package deploy
