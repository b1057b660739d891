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
# `make bench-smoke` (in the Makefile) runs every Go benchmark once.

.PHONY: bench bench-go bench-disco-real

bench-disco-real:
	test/bench/disco-real.sh

bench: build tools
	test/bench/bench.sh

# The Go benchmarks of the hot paths, 6 runs each, for benchstat.
BENCH_GO_PKGS ?= ./pkg/...
BENCH_GO_COUNT ?= 6
bench-go:
	go test -run '^$$' -bench . -benchmem -count $(BENCH_GO_COUNT) $(BENCH_GO_PKGS)
