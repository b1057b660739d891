// Package deploy holds promgate's installation manifests: the kustomize base
// in deploy/base. Its tests check that the base stays consistent with itself
// and with config/promgate.yaml.
package deploy
