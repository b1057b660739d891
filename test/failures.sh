#!/usr/bin/env bash
# failures.sh — prints what failed in go test output (a log file per argument): each failed test's
# block ("--- FAIL" and its indented lines), the first 40 lines of each panic and data race report,
# and the packages that failed.
# make test prints it last, so that the end of a CI log says what broke; the logs hold the rest.
set -uo pipefail

for log in "$@"; do
  [ -f "$log" ] || continue
  awk -v file="$log" '
    function flush() { inblock = 0 }
    /^[[:space:]]*--- FAIL/ { if (!shown++) print "---- failures in " file; inblock = 1; n = 0; print; next }
    /^(panic:|WARNING: DATA RACE)/ { if (!shown++) print "---- failures in " file; inblock = 2; n = 0; print; next }
    /^FAIL[[:space:]]/ { if (!shown++) print "---- failures in " file; print; flush(); next }
    inblock == 2 && !/^(ok|FAIL|PASS|=== )/ { if (n++ < 40) print; next }
    inblock == 1 && /^[[:space:]]/ { if (n++ < 40) print; next }
    { flush() }
  ' "$log"
done
