# Monitoring checks; the top-level Makefile does `include test/monitoring/monitoring.mk`.
#
#   make monitoring-check   promtool check/test of deploy/monitoring's alerting rules, and the
#                           Go test that lints the self-metrics (promtool check metrics) and
#                           parses every dashboard and alert expression against them
#
# promtool comes from `make tools` (Debian's prometheus, linked into .cache/bin).

PROMTOOL ?= $(CACHE_DIR)/bin/promtool

.PHONY: monitoring-check

monitoring-check: tools
	@test -x $(PROMTOOL) || { echo "monitoring-check: $(PROMTOOL) not found; run make tools or set PROMTOOL=/path/to/promtool"; exit 1; }
	$(PROMTOOL) check rules deploy/monitoring/promgate-alerts.yaml
	$(PROMTOOL) test rules deploy/monitoring/tests.yaml
	PROMTOOL=$(abspath $(PROMTOOL)) $(RACE_ENV) $(GO) test -count=1 ./test/monitoring/
