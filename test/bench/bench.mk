# Benchmark targets; the top-level Makefile does `include test/bench/bench.mk`.
#
#   make bench   whole-system load benchmark: loopback world on its own ports, fake Prometheus,
#                kwok pods, scenarios A-D and the discovery table (~4.5 min on 2 cores);
#                prints the tables and leaves them in .cache/bench-results/report.md.
#                See docs/performance.md. Knobs: BENCH_* and E2E_*_PORT (test/bench/bench.sh).
#
#   make bench-disco-real   discovery against a real Prometheus: backfills 210,000 and 1,050,000
#                series with promtool, times /api/v1/series (curl) and both discovery methods
#                (discobench); ~15 min on 2 cores, ~3 GiB while backfilling 1.05M. Not run by CI.
#                Knobs: BENCH_DISCO_REAL, BENCH_PORT, BENCH_DIR (test/bench/disco-real.sh).
#
#   make bench-guard   what the partial-window guard costs a real Prometheus: the rule's query
#                plain and guarded, interleaved, at BENCH_GUARD_PODS (3000) pods scraped every
#                BENCH_SCRAPE_INTERVAL (15s); Prometheus' evaluation time, samples and CPU per
#                query (test/bench/guard-cost.sh; docs/partial-windows.md, "Cost"). Not run by CI.
#   make bench-compare BASE=<ref>   the Go benchmarks at BASE (a git worktree in .cache/, removed
#                on exit) and in the working tree, run in interleaved rounds, then benchstat's comparison; results
#                in .cache/bench-compare/{base,head}.txt. Knobs: BENCH_COMPARE_COUNT (6 runs per
#                benchmark and side), BENCH_GO_PKGS (./pkg/...), BENCH_FILTER (the -bench regexp, .).
#                benchstat is installed into .cache/bin at BENCHSTAT_VERSION (not in go.mod).
#                E.g. make bench-compare BASE=HEAD~1 BENCH_GO_PKGS=./pkg/prom/... BENCH_FILTER=Query
#                (test/bench/bench-compare.sh; docs/performance.md, "Comparing two commits").
#
# `make bench-smoke` (in the Makefile) runs every Go benchmark once.

.PHONY: bench bench-scale bench-go bench-disco-real bench-guard bench-compare

bench-disco-real:
	test/bench/disco-real.sh

bench-guard:
	test/bench/guard-cost.sh

bench: build tools
	test/bench/bench.sh

# The Go benchmarks of the hot paths, 6 runs each, for benchstat.
BENCH_GO_PKGS ?= ./pkg/...
BENCH_GO_COUNT ?= 6
bench-go:
	go test -run '^$$' -bench . -benchmem -count $(BENCH_GO_COUNT) $(BENCH_GO_PKGS)

# Two commits' Go benchmarks, compared (test/bench/bench-compare.sh). golang.org/x/perf has no
# tagged versions: the pin is the module proxy's latest pseudo-version when it was chosen.
BENCHSTAT ?= $(CACHE_DIR)/bin/benchstat
BENCHSTAT_VERSION ?= v0.0.0-20260908200009-22c9c6c9d4da
BENCH_COMPARE_COUNT ?= 6
BENCH_FILTER ?= .

$(BENCHSTAT):
	GOBIN=$(abspath $(CACHE_DIR)/bin) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

bench-compare: $(BENCHSTAT)
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=<git ref> [BENCH_COMPARE_COUNT=6] [BENCH_GO_PKGS=./pkg/...] [BENCH_FILTER=.]"; exit 2; }
	BASE='$(BASE)' GO='$(GO)' BENCHSTAT='$(abspath $(BENCHSTAT))' BENCH_COMPARE_COUNT='$(BENCH_COMPARE_COUNT)' \
	  BENCH_GO_PKGS='$(BENCH_GO_PKGS)' BENCH_FILTER='$(BENCH_FILTER)' test/bench/bench-compare.sh

# The scale run (BENCH_PLAN=scale in test/bench/bench.sh): 30,000 pods in kwok, 150,000 pods'
# series in a real Prometheus, 5,000 simulated HPAs; ~30 min and ~8 GiB on 2 cores. Not run by CI.
bench-scale: build tools
	BENCH_PLAN=scale test/bench/bench.sh
