# Soak targets; the top-level Makefile does `include test/soak/soak.mk`. Not part of CI.
#
#   make soak          promgate for 1 hour at 200 req/s across the three APIs against a fake
#                      Prometheus failing 1% of queries, in a loopback world on its own ports;
#                      prints RSS, goroutines, outcomes and latencies every 30 s and whether RSS
#                      and goroutines ended flat (exit 1 if not). SOAK_DURATION=3m for a smoke run.
#   make soak-hostile  the same with hostile callers and a hostile backend: a third of the
#                      requests carry a distinct metricLabelSelector at promgate's request limits
#                      (1 in 20 over them: a 400 expected), and the failing queries include
#                      answers larger than promgate accepts (a 503 "too large" expected); also
#                      reports the peak of promgate's memory budget. SOAK_DURATION=3m for a smoke run.
#
# See docs/soak.md. Knobs: SOAK_* and E2E_*_PORT (test/soak/soak.sh); soak-hostile sets
# SOAK_MIX and SOAK_FAIL_KINDS (SOAK_HOSTILE_MIX and SOAK_HOSTILE_FAIL_KINDS change them).

SOAK_HOSTILE_MIX        ?= pods=2,external=1,resource=1,hostile=2
SOAK_HOSTILE_FAIL_KINDS ?= all,oversize

.PHONY: soak soak-hostile

soak: build tools
	test/soak/soak.sh

soak-hostile: build tools
	SOAK_MIX='$(SOAK_HOSTILE_MIX)' SOAK_FAIL_KINDS='$(SOAK_HOSTILE_FAIL_KINDS)' test/soak/soak.sh
