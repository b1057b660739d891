#!/usr/bin/env bash
# failures.sh — prints what failed in go test output (a log file per argument): each failed test's
# block ("--- FAIL" and its indented lines) followed by the last lines that test printed while it
# ran (go test -v streams a test's t.Errorf lines under "=== RUN/CONT/NAME <test>" headers, long
# before its "--- FAIL" line), the first 40 lines of each panic and data race report, and the
# packages that failed.
# make test prints it last, so that the end of a CI log says what broke; the logs hold the rest.
set -uo pipefail

for log in "$@"; do
  [ -f "$log" ] || continue
  awk -v file="$log" -v keep=60 '
    function flush() { inblock = 0 }
    function header() { if (!shown++) print "---- failures in " file }
    # A test'"'"'s streamed lines, kept per test (the last `keep` of them).
    /^=== (RUN|CONT|NAME|PAUSE)[[:space:]]/ { current = $3; flush(); next }
    /^[[:space:]]*--- FAIL/ {
      header(); inblock = 1; n = 0; print
      name = $3
      if (name in count) {
        from = count[name] > keep ? count[name] - keep + 1 : 1
        if (from > 1) print "    [" from - 1 " earlier lines of " name " in the log]"
        for (i = from; i <= count[name]; i++) print streamed[name, i % keep]
        delete count[name]
      }
      next
    }
    /^(panic:|WARNING: DATA RACE)/ { header(); inblock = 2; n = 0; print; next }
    /^FAIL[[:space:]]/ { header(); print; flush(); next }
    inblock == 2 && !/^(ok|FAIL|PASS|=== )/ { if (n++ < 40) print; next }
    inblock == 1 && /^[[:space:]]/ { if (n++ < 40) print; next }
    /^[[:space:]]/ && current != "" { c = ++count[current]; streamed[current, c % keep] = $0 }
    { flush() }
  ' "$log"
done
