#!/usr/bin/env bash
# bench-compare.sh compares the Go benchmarks of a base commit with the working tree
# (`make bench-compare BASE=<ref>`): it checks BASE out into a git worktree under .cache/, builds
# the test binary of each package that has benchmarks on both sides (uncommitted changes included
# on the head side), runs them in N interleaved rounds (base, head, base, head, ...; each round
# runs every benchmark once, `-bench $BENCH_FILTER -benchmem`, in the package's directory), and
# prints benchstat's comparison. Interleaving spreads a machine's drifting load over both sides
# instead of charging it to one. The raw results stay in .cache/bench-compare/{base,head}.txt;
# the worktree is removed on exit, whatever the outcome.
#
# Environment:
#   BASE=<ref>                 commit, branch or tag to compare against (required)
#   BENCH_COMPARE_COUNT=6      rounds: runs of each benchmark on each side
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

# build DIR SIDE builds, in the tree at DIR, the test binary of each package of PKGS that has
# benchmarks, into $OUT/SIDE/N.test, and records "N package-directory" lines in $OUT/SIDE/list.
# The same package patterns name the same packages on both sides, by import path.
build() {
  local dir=$1 side=$2 n=0 pkg pdir
  rm -rf "${OUT:?}/$side"
  mkdir -p "$OUT/$side"
  # shellcheck disable=SC2086 # PKGS is a list of patterns
  (cd "$dir" && "$GO" list -f '{{.ImportPath}} {{.Dir}}' $PKGS) | while read -r pkg pdir; do
    grep -qs '^func Benchmark' "$pdir"/*_test.go || continue
    n=$((n + 1))
    (cd "$dir" && "$GO" test -c -o "$OUT/$side/$n.test" "$pkg")
    echo "$n $pdir" >> "$OUT/$side/list"
  done
}

# round SIDE runs every benchmark of SIDE once, appending to $OUT/SIDE.txt.
round() {
  local side=$1 n pdir
  while read -r n pdir; do
    (cd "$pdir" && "$OUT/$side/$n.test" -test.run '^$' -test.bench "$FILTER" -test.benchmem) >> "$OUT/$side.txt"
  done < "$OUT/$side/list"
}

head_desc="$(git rev-parse --short HEAD)"
[ -z "$(git status --porcelain --untracked-files=no)" ] || head_desc+="+changes"
log "building: base $(git rev-parse --short "$base_rev") ($BASE) and head $head_desc (working tree): $PKGS"
build "$wt" base
build "$root" head
: > "$OUT/base.txt"
: > "$OUT/head.txt"
for i in $(seq "$COUNT"); do
  log "round $i of $COUNT: -bench '$FILTER'"
  round base
  round head
done

log "benchstat base=$BASE ($(git rev-parse --short "$base_rev")) head=$head_desc"
"$BENCHSTAT" "base=$OUT/base.txt" "head=$OUT/head.txt"
