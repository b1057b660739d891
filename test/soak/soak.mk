# Soak target; the top-level Makefile does `include test/soak/soak.mk`. Not part of CI.
#
#   make soak   promgate for 1 hour at 200 req/s across the three APIs against a fake
#               Prometheus failing 1% of queries, in a loopback world on its own ports;
#               prints RSS, goroutines, outcomes and latencies every 30 s and whether RSS
#               and goroutines ended flat (exit 1 if not). SOAK_DURATION=3m for a smoke run.
#               See docs/soak.md. Knobs: SOAK_* and E2E_*_PORT (test/soak/soak.sh).

.PHONY: soak

soak: build tools
	test/soak/soak.sh
