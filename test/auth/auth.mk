# Auth target; the top-level Makefile does `include test/auth/auth.mk` (paths are relative to
# the repository root, where make runs).
#
#   make e2e-auth   prove every auth mode of promgate's Prometheus client against real servers
#                   (Prometheus' --web.config.file, vmauth), credential rotation included; needs
#                   prometheus and vmauth in .cache/bin (make tools). Ports 127.0.0.1:29500-29699.
#                   The in-cluster mode re-runs the test binary in a private mount namespace
#                   (root). About a minute: client-go re-reads a token file once a minute.

.PHONY: e2e-auth

e2e-auth:
	go test -tags e2e -count=1 -v ./test/auth/...
