#!/usr/bin/env bash
# Array figures: how long the scheduler takes to accept a 100,000- and a 1,000,000-task
# array (one qsub each, the time including qsub's process start), how much its resident
# memory grows per pending task, how long qstat takes with them pending, and how long a
# restart takes to load them. Nodes are drained (qmod -d), so nothing starts: the
# figures are those of pending tasks. Prints "name value unit" lines and writes
# bench/results/arrays.json.  Usage: bench/arrays.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/bin
[ -x "$BIN/qsub" ] || scripts/setup.sh >/dev/null
DIR=$(mktemp -d /tmp/corral-bench-XXXXXX)
trap '"$BIN/corral" local down --dir "$DIR/c" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
"$BIN/corral" local up --dir "$DIR/c" --nodes 1 --cpus 2 >/dev/null
eval "$("$BIN/corral" local env --dir "$DIR/c")"
export PATH="$BIN:/usr/bin:/bin"
cd "$DIR"
qmod -d node1 >/dev/null
sched_pid=$(cat "$DIR/c/run/scheduler.pid")
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$sched_pid/status"; }
now() { date +%s.%N; }
elapsed_ms() { /usr/bin/python3 -c "import sys; print(f'{(float(sys.argv[2]) - float(sys.argv[1])) * 1000:.1f}')" "$@"; }

out=()
report() { echo "$1 $2 $3"; out+=("\"$1\": $2"); }
rss0=$(rss_kb)
report scheduler_rss_idle "$rss0" kB
for n in 100000 1000000; do
  before=$(rss_kb)
  t0=$(now); qsub -terse -cwd -t "1-$n" -b y /bin/true >/dev/null; t1=$(now)
  report "accept_${n}_tasks" "$(elapsed_ms "$t0" "$t1")" ms
  after=$(rss_kb)
  report "rss_growth_${n}_tasks" $((after - before)) kB
  report "bytes_per_pending_task_${n}" "$(/usr/bin/python3 -c "print(f'{($after - $before) * 1024 / $n:.4f}')")" B
done
t0=$(now); qstat >/dev/null; t1=$(now)
report qstat_with_1100000_pending_tasks "$(elapsed_ms "$t0" "$t1")" ms
t0=$(now); qstat -j 2 >/dev/null; t1=$(now)
report qstat_j_1000000_task_array "$(elapsed_ms "$t0" "$t1")" ms
# Restart: the scheduler loads the arrays (two records) from SQLite.
"$BIN/corral" local down --dir "$DIR/c" >/dev/null
t0=$(now)
"$BIN/corral" local up --dir "$DIR/c" >/dev/null
until qstat >/dev/null 2>&1; do sleep 0.05; done
t1=$(now)
sched_pid=$(cat "$DIR/c/run/scheduler.pid")
report scheduler_rss_after_restart_with_arrays "$(rss_kb)" kB
report restart_with_arrays_until_qstat_answers "$(elapsed_ms "$t0" "$t1")" ms
mkdir -p "$OLDPWD/bench/results"
(IFS=,; echo "{${out[*]}}") >"$OLDPWD/bench/results/arrays.json"
