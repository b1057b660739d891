# promgate — see README.md.
#
#   make demo       a loopback cluster + Prometheus + workload, promgate registered,
#                   kubectl top / custom / external metrics and an HPA shown
#   make demo-down  stop it
#   make test       everything CI runs: lint, unit tests (-race), fuzz and benchmark
#                   smoke runs, the auth tests against real servers, and the end-to-end suite
#   make bench      whole-system load benchmark (see docs/performance.md)

GO          ?= go
BIN_DIR     ?= bin
CACHE_DIR   ?= .cache
STATICCHECK ?= $(CACHE_DIR)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can report its own
# deadline as a failure on a loaded machine (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME    ?= 5000x
# The Go compiler, linker and analysers spend about a fifth of their CPU collecting garbage at the
# default GOGC; the builds run with this one (a cold compile of k8s.io/api and client-go: 220 CPU-s
# at 100, 178 at 400; a link's peak memory barely moves). Tests run at the default.
BUILD_GOGC  ?= 400

.PHONY: all build test test-checks test-tools test-world test-unit lint fuzz bench-smoke demo demo-down clean

# Two build flavours, each compiled once on a fresh machine: plain builds are static
# (CGO_ENABLED=0), as the e2e world's tools are built (test/e2e/hack/install-tools.sh), so that the
# Kubernetes libraries compile once for both; the unit tests, vet and staticcheck use the race
# detector's flavour (which needs cgo: those targets set RACE_ENV).
export CGO_ENABLED ?= 0
# No DWARF: the compiler's debug information is for debuggers, which these builds, tests and tools
# never meet (stack traces and race reports come from the symbol table, which stays); without it a
# cold compile takes 12 % less CPU (client-go and k8s.io/apiserver/pkg/server: 644 CPU-s, 566
# without). It goes into GOFLAGS, so every go command of make, the e2e suite and install-tools.sh
# builds the same flavour and shares the build cache. `make NO_DWARF= ...` keeps DWARF.
NO_DWARF ?= -gcflags=all=-dwarf=false
export GOFLAGS := $(strip $(filter-out $(NO_DWARF),$(GOFLAGS)) $(NO_DWARF))
RACE_ENV = CGO_ENABLED=1 GOFLAGS="$(GOFLAGS) -race"
# Builds and analyses (not tests) in the race flavour, at BUILD_GOGC.
RACE_BUILD_ENV = $(RACE_ENV) GOGC=$(BUILD_GOGC)

all: build

build:
	GOGC=$(BUILD_GOGC) $(GO) build -o $(BIN_DIR)/promgate ./cmd/promgate

# make test runs in two phases, each as wide as a 2-core machine allows:
#  1. the world's tools build (output in $(CACHE_DIR)/tools.log) beside the race-enabled unit
#     tests (with one run of each benchmark) and the fuzz smoke runs, which need none of them (the
#     builds at a lower CPU priority, so that tests that measure time are not starved);
#  2. the e2e suites run in two worlds side by side (the fault suite, which stops and restarts the
#     world's components, in a world of its own, without the scale-out backends it does not use),
#     and lint and the monitoring checks run beside them at the lowest CPU priority, in the CPU
#     the worlds leave idle. The lanes' logs: $(CACHE_DIR)/lanes/.
# A fresh 2-core machine's run and where its time goes: README.md.
test:
	$(MAKE) -j2 test-checks test-tools
	$(MAKE) --no-print-directory test-world

# Each step prints how long it took, so that a CI log shows where a run's time goes.
TIMED = s=$$(date +%s); $(MAKE) --no-print-directory -j1 $$t || exit 1; echo "== $$t: $$(( $$(date +%s) - s )) s"

test-checks:
	@for t in test-unit fuzz; do $(TIMED); done

test-tools:
	@mkdir -p $(CACHE_DIR)
	@echo "tools: building beside the checks; log in $(CACHE_DIR)/tools.log"
	@start=$$(date +%s); \
	if nice -n 10 $(MAKE) -j1 tools > $(CACHE_DIR)/tools.log 2>&1; then \
	  grep '^\[install-tools\]' $(CACHE_DIR)/tools.log; echo "tools: ready in $$(( $$(date +%s) - start )) s"; \
	else tail -60 $(CACHE_DIR)/tools.log; exit 1; fi

test-world: build
	@LANES_DIR=$(CACHE_DIR)/lanes test/lanes.sh \
	  'world: helm-check e2e-auth e2e-main e2e-helm' \
	  'fault: E2E_PORT_OFFSET=1000 E2E_RUN_DIR=$(abspath $(CACHE_DIR))/e2e-run-fault e2e-fault' \
	  'checks@19: lint monitoring-check'

# The packages compile first, at BUILD_GOGC; the tests then run at the default GOGC, and each
# benchmark once (as bench-smoke: the test binaries are linked once for both). The output is also
# kept in $(CACHE_DIR)/test-unit.log; when a test fails, what failed is printed again at the end.
test-unit:
	$(RACE_BUILD_ENV) $(GO) build ./...
	@mkdir -p $(CACHE_DIR)
	@{ $(RACE_ENV) $(GO) test -count=1 -bench . -benchtime 1x ./... 2>&1; echo $$? > $(CACHE_DIR)/test-unit.rc; } \
	  | tee $(CACHE_DIR)/test-unit.log; \
	rc=$$(cat $(CACHE_DIR)/test-unit.rc); [ "$$rc" = 0 ] || test/failures.sh $(CACHE_DIR)/test-unit.log; exit $$rc

$(STATICCHECK):
	GOGC=$(BUILD_GOGC) GOBIN=$(abspath $(CACHE_DIR)/bin) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(RACE_BUILD_ENV) $(GO) vet ./...
	$(RACE_BUILD_ENV) $(GO) vet -tags e2e ./test/e2e/... ./test/auth/...
	$(RACE_BUILD_ENV) GOMEMLIMIT=6GiB $(STATICCHECK) ./...
	$(GO) mod tidy -diff

# Short runs of every fuzz target, so they can't rot. The targets are found in the sources (go test
# -list would build every package's test binary just to name them).
fuzz:
	@$(GO) list -f '{{.ImportPath}} {{.Dir}}' ./... | while read -r pkg dir; do \
	  for f in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go 2>/dev/null); do \
	    echo "fuzz $$pkg $$f"; \
	    GOGC=$(BUILD_GOGC) $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# One iteration of every Go benchmark, so they can't rot (test-unit runs them too); with the race
# detector, like the unit tests, whose compile it reuses.
bench-smoke:
	$(RACE_ENV) $(GO) test -run '^$$' -bench . -benchtime 1x ./...

demo: build tools
	test/e2e/hack/demo.sh

demo-down:
	test/e2e/hack/world.sh down

clean:
	rm -rf $(BIN_DIR)

include test/e2e/e2e.mk
include test/bench/bench.mk
include test/soak/soak.mk
include deploy/helm/helm.mk
include test/monitoring/monitoring.mk
include test/auth/auth.mk
