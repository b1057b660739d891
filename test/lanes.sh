#!/usr/bin/env bash
# lanes.sh — runs lanes of make targets side by side: the targets of one lane run in order, the
# lanes at the same time. make test uses it to run the e2e worlds next to each other (each world
# in its own run directory and ports) and the CPU-bound checks beside them at the lowest CPU
# priority, so that the checks use the CPU the worlds leave idle and never starve them.
#
#   lanes.sh 'NAME[@NICE]: [VAR=value ...] target ...' ...
#
#   NAME     the lane's name; its output goes to $LANES_DIR/NAME.log (default .cache/lanes)
#   NICE     niceness of the lane's processes (0 when absent)
#   VAR=...  make variables and environment of every target of the lane
#
# Each target's start, end and duration are printed as they happen ("== NAME/target: N s"); a
# lane's whole log is printed when the lane ends. A failed target ends its lane; the other lanes
# go on, and lanes.sh exits 1 if any lane failed, after printing again what failed in the failed
# lanes' go test output (failures.sh), so that the end of the output says what broke.
set -uo pipefail

dir=${LANES_DIR:-.cache/lanes}
mkdir -p "$dir"
make=${MAKE:-make}

# lane SPEC: runs one lane (in a subshell of its own).
lane() {
  local spec=$1 head name nice=0 log words vars=() targets=() w t s
  head=${spec%%:*}
  name=${head%@*}
  [ "$head" != "$name" ] && nice=${head#*@}
  read -r -a words <<< "${spec#*:}"
  for w in "${words[@]}"; do
    case $w in
      *=*) vars+=("$w") ;;
      *) targets+=("$w") ;;
    esac
  done
  log=$dir/$name.log
  : > "$log"
  for t in "${targets[@]}"; do
    s=$(date +%s)
    echo "== $name/$t: started"
    if ! env "${vars[@]}" nice -n "$nice" "$make" --no-print-directory "${vars[@]}" "$t" >> "$log" 2>&1; then
      echo "== $name/$t: FAILED after $(( $(date +%s) - s )) s"
      return 1
    fi
    echo "== $name/$t: $(( $(date +%s) - s )) s"
  done
}

declare -A lane_of
for spec in "$@"; do
  head=${spec%%:*}
  lane "$spec" &
  lane_of[$!]=${head%@*}
done

failed=()
while [ ${#lane_of[@]} -gt 0 ]; do
  wait -n -p pid "${!lane_of[@]}"
  rc=$?
  name=${lane_of[$pid]}
  unset "lane_of[$pid]"
  echo "==================== lane $name (exit $rc): $dir/$name.log"
  cat "$dir/$name.log"
  echo "==================== end of lane $name"
  [ "$rc" = 0 ] || failed+=("$name")
done

if [ ${#failed[@]} -gt 0 ]; then
  for name in "${failed[@]}"; do
    "$(dirname "$0")/failures.sh" "$dir/$name.log"
  done
  echo "lanes: FAILED: ${failed[*]}"
  exit 1
fi
echo "lanes: all passed"
