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
FUZZTIME    ?= 20000x

.PHONY: all build test test-checks test-tools test-world test-unit lint fuzz bench-smoke demo demo-down clean

all: build

build:
	$(GO) build -o $(BIN_DIR)/promgate ./cmd/promgate

# On a fresh machine most of the first run is building the world's tools: they build beside the
# checks that need none of them (their output goes to $(CACHE_DIR)/tools.log), and what needs
# them runs after both.
test:
	$(MAKE) -j2 test-checks test-tools
	$(MAKE) test-world

# Each step prints how long it took, so that a CI log shows where a run's time goes.
TIMED = s=$$(date +%s); $(MAKE) --no-print-directory -j1 $$t || exit 1; echo "== $$t: $$(( $$(date +%s) - s )) s"

test-checks:
	@for t in lint test-unit fuzz bench-smoke; do $(TIMED); done

test-tools:
	@mkdir -p $(CACHE_DIR)
	@echo "tools: building beside the checks; log in $(CACHE_DIR)/tools.log"
	@start=$$(date +%s); \
	if $(MAKE) -j1 tools > $(CACHE_DIR)/tools.log 2>&1; then \
	  grep '^\[install-tools\]' $(CACHE_DIR)/tools.log; echo "tools: ready in $$(( $$(date +%s) - start )) s"; \
	else tail -60 $(CACHE_DIR)/tools.log; exit 1; fi

test-world:
	@for t in helm-check monitoring-check e2e-auth e2e e2e-helm; do $(TIMED); done

test-unit:
	$(GO) test -race -count=1 ./...

$(STATICCHECK):
	GOBIN=$(abspath $(CACHE_DIR)/bin) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/... ./test/auth/...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff

# Short runs of every fuzz target, so they can't rot.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# One iteration of every Go benchmark, so they can't rot.
bench-smoke:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

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
