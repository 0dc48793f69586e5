#!/usr/bin/env bash
# Profiles behind docs/performance.md: where the scheduler spends its instructions (callgrind,
# inclusive, top functions) for each figure that misses its target, and a flat perf profile
# of a live scheduler under load. Slow (valgrind runs ~50x slower); not part of perf.sh.
# Usage: bench/profile.sh [--bin DIR] [--out DIR] TARGET...
#   decide-fcfs   one steady Decide, 1000 nodes x 32 cores full, 10k pending, FCFS
#   decide-easy   the same under the EASY backfill policy of corral-decide-bench
#   query         the core's answer to a query for one user, 100k other jobs pending
#   restart       scheduler start-up (Store::Load) with 20k jobs in SQLite
#   cancel        the scheduler handling qdel -u of 10k pending jobs
#   submit        the scheduler handling 5,000 pipelined submits
#   perf-submit   perf record (flat) of the scheduler under corral-flood submits
# Each writes OUT/TARGET.callgrind (or .perf) and prints the top of the annotation.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/bin
OUT=$(mktemp -d /tmp/corral-profile-XXXXXX)
TARGETS=()
while (($#)); do
  case $1 in
    --bin) BIN=$(cd "$2" && pwd); shift ;;
    --out) OUT=$2; mkdir -p "$OUT"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) TARGETS+=("$1") ;;
  esac
  shift
done
export PATH="$BIN:/usr/bin:/bin"
WORK=$(mktemp -d /tmp/corral-prof-work-XXXXXX)
PIDS=()
CLUSTERS=()
cleanup() {
  local p c
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for c in "${CLUSTERS[@]}"; do "$BIN/corral" local down --dir "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
CG=(valgrind --tool=callgrind --collect-atstart=no)
top() {  # FILE: the 40 costliest functions, inclusive
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -40 | cut -c1-220 || true
}
# A local cluster whose scheduler runs under callgrind, instrumentation off until
# callgrind_control -i on; sets CG_PID.
cg_cluster() {  # DIR TARGET
  local dir=$1
  CLUSTERS+=("$dir")
  "$BIN/corral" local up --dir "$dir" --nodes 1 --cpus 1 >/dev/null
  eval "$("$BIN/corral" local env --dir "$dir")"
  export PATH="$BIN:/usr/bin:/bin"
  qmod -d node1 >/dev/null
  kill "$(cat "$dir/run/scheduler.pid")"
  sleep 1
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/$2.callgrind" "$BIN/corral-scheduler" \
    --config "$dir/scheduler.yaml" >>"$dir/log/scheduler.log" 2>&1 &
  CG_PID=$!
  PIDS+=("$CG_PID")
  until qstat >/dev/null 2>&1; do sleep 0.5; done
}

for t in "${TARGETS[@]}"; do
  echo "# ---- $t"
  case $t in
    decide-fcfs)
      "${CG[@]}" --callgrind-out-file="$OUT/$t.callgrind" "$BIN/corral-decide-bench" --nodes 1000 \
        --cores 32 --pending 10000 --no-policy --no-array --reps 1 --profile steady >/dev/null 2>&1
      top "$OUT/$t.callgrind" ;;
    decide-easy)
      "${CG[@]}" --callgrind-out-file="$OUT/$t.callgrind" "$BIN/corral-decide-bench" --nodes 1000 \
        --cores 32 --pending 10000 --no-fcfs --no-array --reps 1 --profile steady >/dev/null 2>&1
      top "$OUT/$t.callgrind" ;;
    query)
      "${CG[@]}" --callgrind-out-file="$OUT/$t.callgrind" "$BIN/corral-decide-bench" --nodes 10 \
        --cores 1 --pending 100000 --no-policy --no-array --reps 1 --profile query >/dev/null 2>&1
      top "$OUT/$t.callgrind" ;;
    restart)
      C=$WORK/restart
      CLUSTERS+=("$C")
      "$BIN/corral" local up --dir "$C" --nodes 1 --cpus 1 >/dev/null
      eval "$("$BIN/corral" local env --dir "$C")"
      export PATH="$BIN:/usr/bin:/bin"
      qmod -d node1 >/dev/null
      (cd "$WORK" && corral-flood submit --count 10000 --cwd "$WORK" >/dev/null &&
        corral-flood submit --count 10000 --cwd "$WORK" >/dev/null &&
        corral-flood cancel --from 10001 --to 20000 >/dev/null)
      kill "$(cat "$C/run/scheduler.pid")"
      sleep 1
      valgrind --tool=callgrind --callgrind-out-file="$OUT/$t.callgrind" "$BIN/corral-scheduler" \
        --config "$C/scheduler.yaml" >>"$C/log/scheduler.log" 2>&1 &
      pid=$!
      PIDS+=("$pid")
      until qstat -j 1 >/dev/null 2>&1; do sleep 0.5; done
      kill "$pid"; wait "$pid" || true
      top "$OUT/$t.callgrind" ;;
    cancel)
      cg_cluster "$WORK/cancel" "$t"; pid=$CG_PID
      (cd "$WORK" && corral-flood submit --count 10000 --cwd "$WORK" >/dev/null)
      callgrind_control -i on "$pid" >/dev/null
      qdel -u "$(id -un)" >/dev/null 2>&1 || true  # may time out under valgrind; the work is done
      until out=$(qstat 2>/dev/null) && [ -z "$out" ]; do sleep 1; done
      callgrind_control -i off "$pid" >/dev/null
      kill "$pid"; wait "$pid" || true
      top "$OUT/$t.callgrind" ;;
    submit)
      cg_cluster "$WORK/submit" "$t"; pid=$CG_PID
      callgrind_control -i on "$pid" >/dev/null
      (cd "$WORK" && corral-flood submit --count 5000 --hold --cwd "$WORK" >/dev/null)
      callgrind_control -i off "$pid" >/dev/null
      kill "$pid"; wait "$pid" || true
      top "$OUT/$t.callgrind" ;;
    perf-submit)
      C=$WORK/perf-submit
      CLUSTERS+=("$C")
      "$BIN/corral" local up --dir "$C" --nodes 1 --cpus 1 >/dev/null
      eval "$("$BIN/corral" local env --dir "$C")"
      export PATH="$BIN:/usr/bin:/bin"
      perf record -q -e cpu-clock -F 2000 -o "$OUT/$t.perf" -p "$(cat "$C/run/scheduler.pid")" -- sleep 8 &
      ppid=$!
      sleep 0.5
      (cd "$WORK" && corral-flood submit --count 20000 --hold --cwd "$WORK")
      wait "$ppid" || true
      perf report -i "$OUT/$t.perf" --no-children --sort sym --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -30 | cut -c1-160 || true ;;
    *) echo "profile.sh: unknown target $t" >&2; exit 2 ;;
  esac
done
echo "# profiles in $OUT (callgrind_annotate --inclusive=yes FILE; kcachegrind FILE)"
