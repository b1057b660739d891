#!/usr/bin/env bash
# bench-compare.sh compares the Go benchmarks of a base commit with the working tree
# (`make bench-compare BASE=<ref>`): it checks BASE out into a git worktree under .cache/,
# runs `go test -run '^$' -bench $BENCH_FILTER -benchmem -count N` on the same packages there
# and here (base first, then the working tree, uncommitted changes included), and prints
# benchstat's comparison. The raw results stay in .cache/bench-compare/{base,head}.txt; the
# worktree is removed on exit, whatever the outcome.
#
# Environment:
#   BASE=<ref>                 commit, branch or tag to compare against (required)
#   BENCH_COMPARE_COUNT=6      runs of each benchmark (-count), on each side
#   BENCH_GO_PKGS=./pkg/...    packages (the same patterns at both commits)
#   BENCH_FILTER=.             the -bench regexp
#   BENCHSTAT=.cache/bin/benchstat   (make installs it there, pinned)
#   GO=go
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

: "${BASE:?set BASE to the commit to compare with, e.g. make bench-compare BASE=HEAD~1}"
GO=${GO:-go}
COUNT=${BENCH_COMPARE_COUNT:-6}
PKGS=${BENCH_GO_PKGS:-./pkg/...}
FILTER=${BENCH_FILTER:-.}
BENCHSTAT=${BENCHSTAT:-$root/.cache/bin/benchstat}
OUT=$root/.cache/bench-compare
log() { echo "== $*" >&2; }

base_rev=$(git rev-parse --verify --quiet "$BASE^{commit}") || { echo "bench-compare: BASE=$BASE is not a commit" >&2; exit 2; }
[ -x "$BENCHSTAT" ] || { echo "bench-compare: no benchstat at $BENCHSTAT (make bench-compare installs it)" >&2; exit 2; }
mkdir -p "$OUT"
wt=$OUT/base-$$
cleanup() {
  git -C "$root" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
  git -C "$root" worktree prune
}
trap cleanup EXIT
trap 'exit 130' INT TERM
git worktree prune # worktrees of runs that were killed before their trap
git worktree add --detach --quiet "$wt" "$base_rev"

# bench DIR FILE runs the benchmarks of the tree at DIR into FILE (and the terminal).
bench() {
  # shellcheck disable=SC2086 # PKGS is a list of patterns
  (cd "$1" && "$GO" test -run '^$' -bench "$FILTER" -benchmem -count "$COUNT" $PKGS) | tee "$2"
}

head_desc="$(git rev-parse --short HEAD)"
[ -z "$(git status --porcelain --untracked-files=no)" ] || head_desc+="+changes"
log "base $(git rev-parse --short "$base_rev") ($BASE): $PKGS, -bench '$FILTER', -count $COUNT"
bench "$wt" "$OUT/base.txt"
log "head $head_desc (working tree)"
bench "$root" "$OUT/head.txt"

log "benchstat base=$BASE ($(git rev-parse --short "$base_rev")) head=$head_desc"
"$BENCHSTAT" "base=$OUT/base.txt" "head=$OUT/head.txt"
