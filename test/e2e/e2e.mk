# End-to-end targets; the top-level Makefile does `include test/e2e/e2e.mk` (paths are relative
# to the repository root, where make runs).
#
#   make tools        build/cache etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
#                     kubectl v1.37, kwok, helm, Thanos, VictoriaMetrics and link Prometheus into
#                     .cache/bin (once; ~20 min on a fresh 2-core machine with nothing beside it)
#   make e2e          run the e2e suite (starts and stops the world itself)
#   make e2e-main, e2e-fault   the suite's two halves, as make test runs them (below)
#   make world-up     start the loopback world and leave it running (. .cache/e2e-run/env)
#   make world-down   stop it
#   make e2e-backends the suite's core with promgate reading Thanos, Thanos with tenancy, and
#                     VictoriaMetrics in turn (E2E_BACKEND=... of world.sh)
#
# Knobs: E2E_REUSE=1 / E2E_KEEP=1 (make e2e), E2E_RUN=<regexp> (go test -run), E2E_SKIP=<regexp>
# (go test -skip), plus every
# E2E_* variable of test/e2e/hack/world.sh (ports, E2E_NODES, E2E_RUN_DIR, E2E_BACKEND, ...).

E2E_HACK    ?= test/e2e/hack
E2E_TIMEOUT ?= 40m
E2E_RUN     ?=
E2E_SKIP    ?=
# The binary the halves and e2e-helm run, built once by `make build` (their prerequisite).
E2E_PROMGATE_BIN = $(abspath $(BIN_DIR)/promgate)

.PHONY: tools e2e world-up world-down

tools:
	$(E2E_HACK)/install-tools.sh

e2e:
	go test -tags e2e -v -count=1 -parallel 16 -timeout $(E2E_TIMEOUT) $(if $(E2E_RUN),-run '$(E2E_RUN)') $(if $(E2E_SKIP),-skip '$(E2E_SKIP)') ./test/e2e/...

# make test runs the suite as two halves in two worlds side by side (see test-world in the
# Makefile): the fault suite, which stops and restarts the world's components and takes longest
# (~8 min; it does not use the scale-out backends, so its world starts without them), and
# everything else. Each needs its own E2E_RUN_DIR and E2E_PORT_OFFSET when both run.
.PHONY: e2e-main e2e-fault
e2e-main: build
	$(MAKE) e2e E2E_SKIP='^TestFault$$' PROMGATE_BIN=$(E2E_PROMGATE_BIN)

e2e-fault: build
	E2E_BACKENDS=0 $(MAKE) e2e E2E_RUN='^TestFault$$' PROMGATE_BIN=$(E2E_PROMGATE_BIN)

world-up:
	$(E2E_HACK)/world.sh up

world-down:
	$(E2E_HACK)/world.sh down

# The core of the suite against promgate installed from the Helm chart's rendered output
# (make helm-check writes it) instead of deploy/base: the chart must give a working install.
E2E_HELM_RUN ?= TestSmoke|TestCustomAndExternalMetrics
.PHONY: e2e-helm
e2e-helm: helm-check build
	E2E_BACKENDS=0 PROMGATE_DEPLOY_BASE=$(abspath $(HELM_RENDERED)) $(MAKE) e2e E2E_RUN='$(E2E_HELM_RUN)' PROMGATE_BIN=$(E2E_PROMGATE_BIN)

# The core of the suite (custom, external and resource metrics, HPAs) with promgate reading each
# scale-out backend of the world (test/e2e/hack/world.sh: E2E_BACKEND) instead of Prometheus: a
# Thanos querier, a Thanos querier enforcing tenancy (promgate sends THANOS-TENANT=team-a), and
# VictoriaMetrics under its /prometheus path prefix. One world per backend; every run goes on
# after a failure, and the target fails if any did. Left out: what needs Prometheus itself (the
# CRD test's recording rule, which VictoriaMetrics does not evaluate; the fault suite, which
# kills Prometheus; reload and drop-in, which read Prometheus directly; helm).
E2E_BACKENDS_LIST ?= thanos thanos-tenancy victoriametrics
E2E_BACKENDS_RUN  ?= TestSmoke|TestCustomAndExternalMetrics|TestResourceMetrics|TestHPA
.PHONY: e2e-backends
e2e-backends:
	@failed=; summary=; \
	for b in $(E2E_BACKENDS_LIST); do \
	  start=$$(date +%s); \
	  if E2E_BACKENDS=1 E2E_BACKEND=$$b $(MAKE) --no-print-directory e2e E2E_BACKEND=$$b E2E_RUN='$(E2E_BACKENDS_RUN)'; then r=ok; else r=FAILED; failed="$$failed $$b"; fi; \
	  summary="$$summary$$b: $$r in $$(( $$(date +%s) - start )) s\n"; \
	done; \
	printf "e2e-backends:\n$$summary"; \
	if [ -n "$$failed" ]; then echo "e2e-backends: FAILED:$$failed"; exit 1; fi
