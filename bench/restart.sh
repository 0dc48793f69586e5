#!/usr/bin/env bash
# The scheduler's restart with many jobs in SQLite (issue #11, figure 7), alone and
# repeatable: builds a state dir of N jobs once with corral-restart-bench (half pending,
# half cancelled, as bench/perf.sh's query section has them), then R times: copy it, start
# corral-scheduler on the copy, time until `qstat -j 1` answers, read its RSS, kill -9.
# Measurement only, never a test.
#
# Usage: bench/restart.sh [--bin DIR] [--jobs N] [--reps R] [--keep DIR]
#   --keep DIR   build the state in DIR/corral.db, or reuse it if it is there
# Besides the wall time it prints the scheduler's CPU time until it answered: on a shared
# (loaded) machine that is the figure to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/bin
JOBS=1000000
REPS=3
KEEP=""
while (($#)); do
  case $1 in
    --bin) BIN=$(cd "$2" && pwd); shift ;;
    --jobs) JOBS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "restart.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for b in corral-scheduler corral-restart-bench qstat; do
  [ -x "$BIN/$b" ] || { echo "restart.sh: $BIN/$b is missing" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/corral-restart-XXXXXX)
PID=""
cleanup() {
  if [[ -n $PID ]]; then kill -9 "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { awk -v a="$1" -v b="$(us)" 'BEGIN { printf "%.0f", (b - a) / 1000 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

SRC=${KEEP:-$WORK/src}
mkdir -p "$SRC"
if [[ ! -f $SRC/corral.db ]]; then
  "$BIN/corral-restart-bench" build --db "$SRC/corral.db" --jobs "$JOBS" | sed 's/^/# /'
fi
echo "restart_db_size $(du -k "$SRC/corral.db" | awk '{ print $1 }') kB"

S=$WORK/state
cat > "$WORK/scheduler.yaml" <<EOF
endpoints: ["ipc://$WORK/scheduler.sock"]
node_endpoints: ["tcp://127.0.0.1:*"]
state_dir: "$S"
EOF
export CORRAL_SCHEDULER=ipc://$WORK/scheduler.sock
times=()
cpus=()
for ((k = 1; k <= REPS; k++)); do
  rm -rf "$S"
  cp -r "$SRC" "$S"
  t0=$(us)
  "$BIN/corral-scheduler" --config "$WORK/scheduler.yaml" 2>>"$WORK/scheduler.log" &
  PID=$!
  deadline=$((SECONDS + 600))
  until "$BIN/qstat" -j 1 >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "restart.sh: no answer in 600 s" >&2; exit 1; }
    kill -0 "$PID" 2>/dev/null || { echo "restart.sh: the scheduler died" >&2; tail "$WORK/scheduler.log" >&2; exit 1; }
    sleep 0.02
  done
  t=$(ms_since "$t0")
  times+=("$t")
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status")
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/$PID/stat")
  cpus+=("$cpu")
  echo "restart_until_qstat_answers_run$k $t ms"
  echo "restart_scheduler_cpu_run$k $cpu ms  # user + system CPU of the scheduler until then"
  echo "restart_scheduler_rss_run$k $rss kB"
  kill -9 "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
done
echo "restart_until_qstat_answers $(median "${times[@]}") ms  # median of $REPS, $JOBS jobs"
echo "restart_scheduler_cpu $(median "${cpus[@]}") ms  # median of $REPS: what the restart costs on a shared machine"
