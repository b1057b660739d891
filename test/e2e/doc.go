// Package e2e is promgate's end-to-end suite. It runs against a real, local "world" on
// 127.0.0.1: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes
// and pods), Prometheus scraping the synthetic exporter (test/exporter), and promgate itself,
// registered behind the real APIServices of deploy/ (see hack/world.sh).
//
// The tests are behind the build tag "e2e", so "go test ./..." skips them:
//
//	make tools   # once: test/e2e/hack/install-tools.sh (etcd, kube binaries, kwok, Prometheus)
//	make e2e     # go test -tags e2e -v -count=1 -timeout 40m ./test/e2e/...
//
// TestMain (framework_test.go) starts the world (hack/world.sh up), builds promgate
// (go build -o bin/promgate ./cmd/promgate), registers it (hack/world.sh register-promgate),
// runs the tests and stops the world (hack/world.sh down). Environment knobs:
//
//	E2E_REUSE=1     use an already running world instead of starting one
//	E2E_KEEP=1      leave the world running afterwards (source .cache/e2e-run/env to poke at it)
//	E2E_PROMGATE=0  neither build nor register promgate (tests calling RequirePromgate skip)
//	PROMGATE_BIN    use this promgate binary instead of building bin/promgate
//
// plus every knob of hack/world.sh (ports, E2E_RUN_DIR, E2E_NODES, ...).
package e2e
