#!/usr/bin/env bash
# Corral's performance suite (issue #11): every figure of docs/performance.md, printed as
# one "name value unit" line each and written to bench/results/perf.json. Measurement
# only: not part of the test suite, never a timed test. Process-start-bound figures are
# printed beside the machine's own rate, measured in the same run.
#
# Usage: bench/perf.sh [--quick] [--bin DIR] [--only SECTION,...] [--skip SECTION,...]
#                      [--out FILE]
#   --quick   smaller sizes (about 5 minutes instead of about 20)
#   --bin     directory holding the built binaries (default build/bin); it needs
#             corral, corral-scheduler, corral-execd (and corral-spawner beside it),
#             qsub, qstat, qdel, qmod,
#             corral-submit-load and the bench tools (corral-flood, corral-spawn-rate,
#             corral-decide-bench, corral-node-emulator): see docs/performance.md
#   sections  machine submit arrays e2e cancel queries memory decide scale storm (in
#             that order; queries includes the restart with many jobs)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=$REPO/build/bin
QUICK=0
ONLY=""
SKIP=""
OUT=$REPO/bench/results/perf.json
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --bin) BIN=$(cd "$2" && pwd); shift ;;
    --only) ONLY=$2; shift ;;
    --skip) SKIP=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "perf.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for b in corral corral-scheduler corral-execd qsub qstat qdel qmod corral-submit-load \
         corral-flood corral-spawn-rate corral-decide-bench corral-node-emulator \
         corral-query-storm; do
  [ -x "$BIN/$b" ] || { echo "perf.sh: $BIN/$b is missing (see docs/performance.md)" >&2; exit 1; }
done
export PATH="$BIN:/usr/bin:/bin"
PY=/usr/bin/python3
CLK_TCK=$(getconf CLK_TCK)
ME=$(id -un)

# Sizes: default, then --quick.
if ((QUICK)); then
  N_TRUE=100; N_QSUB=60; N_LIB=1000; N_PIPE=10000; N_FLOOD=5000; N_SPAWN=500
  ARRAYS="100000 1000000"; N_E2E=500; N_CANCEL=10000; N_MEM=20000
  QUERY_SIZES="10000 100000"; RESTART_REPS=2; QSTAT_ALL_MAX=10000
  DECIDE_ARGS="--nodes 1000 --cores 32 --pending 10000 --array 100000 --reps 3"
  SCALE_NODES="200"; SCALE_IDLE_S=10; SCALE_MEASURE_S=15
  STORM_NODES=50; STORM_WINDOW_S=15; STORM_CLIENTS=50
else
  N_TRUE=300; N_QSUB=200; N_LIB=5000; N_PIPE=50000; N_FLOOD=20000; N_SPAWN=1000
  ARRAYS="100000 1000000"; N_E2E=2000; N_CANCEL=10000; N_MEM=100000
  QUERY_SIZES="10000 100000 1000000"; RESTART_REPS=2; QSTAT_ALL_MAX=100000
  DECIDE_ARGS="--nodes 1000 --cores 32 --pending 100000 --array 1000000 --reps 5"
  SCALE_NODES="1000 5000"; SCALE_IDLE_S=20; SCALE_MEASURE_S=60
  STORM_NODES=100; STORM_WINDOW_S=30; STORM_CLIENTS=50
fi
SCALE_JOBS_PER_S=${SCALE_JOBS_PER_S:-267}  # job ends per second at full load, any size

WORK=$(mktemp -d /tmp/corral-perf-XXXXXX)
chmod 755 "$WORK"  # the population of the query section is submitted as user nobody
CLUSTERS=()
OWN_PIDS=()  # daemons started directly (not by corral local up): stopped by their pid
cleanup() {
  local pid c
  for pid in "${OWN_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for c in "${CLUSTERS[@]}"; do "$BIN/corral" local down --dir "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

FIGS=$WORK/figures.tsv
: > "$FIGS"
report() {  # NAME VALUE UNIT [NOTE...]
  local name=$1 value=$2 unit=$3
  shift 3
  echo "$name $value $unit${*:+  # $*}"
  printf '%s\t%s\t%s\t%s\n' "$name" "$value" "$unit" "$*" >> "$FIGS"
}
want() {
  [[ -z $ONLY || ",$ONLY," == *",$1,"* ]] && [[ ",$SKIP," != *",$1,"* ]]
}
us() { echo "${EPOCHREALTIME/./}"; }                            # wall clock, microseconds
ms_since() { awk -v a="$1" -v b="$(us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
section() { echo "# ---- $* ($(date +%H:%M:%S))"; }

# up DIR NODES CPUS [ARGS...]: a local cluster; exports CORRAL_SCHEDULER for it.
up() {
  local dir=$1 nodes=$2 cpus=$3
  shift 3
  CLUSTERS+=("$dir")
  "$BIN/corral" local up --dir "$dir" --nodes "$nodes" --cpus "$cpus" "$@" >/dev/null
  eval "$("$BIN/corral" local env --dir "$dir")"
  export PATH="$BIN:/usr/bin:/bin"
}
down() { "$BIN/corral" local down --dir "$1" >/dev/null 2>&1 || true; }
sched_pid() { cat "$1/run/scheduler.pid"; }

# Rate of N runs of /bin/true from this shell's loop, per second.
true_rate() {
  local t0 i
  t0=$(us)
  for ((i = 0; i < $1; i++)); do /bin/true; done
  calc "$1 / (($(us) - $t0) / 1e6)"
}
spawn_rate() {  # the machine: N /bin/true with 16 running at once
  "$BIN/corral-spawn-rate" --count "$1" --parallel 16 -- /bin/true | sed -E 's/.*\(([0-9.]+) per s\).*/\1/'
}

report machine_loadavg_at_start "$(cut -d' ' -f1 /proc/loadavg)" load "1-minute load average (the machine is shared)"
echo "# Corral performance suite: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
     "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
     "quick=$QUICK, binaries $BIN"

# ---- machine ----------------------------------------------------------------------------
if want machine; then
  section "machine: process start"
  r=(); for _ in 1 2 3; do r+=("$(true_rate "$N_TRUE")"); done
  report machine_true_loop_rate "$(median "${r[@]}")" per_s "/bin/true from a shell loop, median of 3 x $N_TRUE"
  r=(); for _ in 1 2 3; do r+=("$(spawn_rate "$N_SPAWN")"); done
  report machine_spawn16_rate "$(median "${r[@]}")" per_s "fork+exec+wait of /bin/true, 16 at once, median of 3 x $N_SPAWN"
  # Synchronous 4 KiB writes where the clusters keep their SQLite files: the ceiling of
  # durable commits one after the other (one request at a time cannot commit faster).
  r=()
  for _ in 1 2 3; do
    t0=$(us); dd if=/dev/zero of="$WORK/dsync" bs=4k count=200 oflag=dsync 2>/dev/null
    r+=("$(calc "200 / (($(us) - $t0) / 1e6)")")
  done
  rm -f "$WORK/dsync"
  report machine_dsync_write_rate "$(median "${r[@]}")" per_s "dd bs=4k oflag=dsync in $WORK, median of 3 x 200"
fi

# ---- 1. submit --------------------------------------------------------------------------
if want submit; then
  section "1. submit"
  C=$WORK/submit
  up "$C" 1 2
  qmod -d node1 >/dev/null
  tr=(); qr=(); ratio=()
  for _ in 1 2 3; do
    t=$(true_rate "$N_QSUB")
    t0=$(us)
    for ((i = 0; i < N_QSUB; i++)); do qsub -h -b y -cwd -terse /bin/true >/dev/null; done
    q=$(calc "$N_QSUB / (($(us) - $t0) / 1e6)")
    tr+=("$t"); qr+=("$q"); ratio+=("$(calc "$q / $t" 3)")
    qdel -u "$ME" >/dev/null
  done
  report submit_true_loop_rate "$(median "${tr[@]}")" per_s "same loop, same run"
  report submit_qsub_sequential_rate "$(median "${qr[@]}")" jobs_per_s "qsub -h -b y, median of 3 x $N_QSUB"
  report submit_qsub_vs_true_ratio "$(median "${ratio[@]}")" ratio "target >= 0.5"
  cd "$WORK"
  # Median of 3 corral-submit-load runs (held jobs, queue emptied after each).
  submit_load_rate() {
    local r=() _
    for _ in 1 2 3; do
      r+=("$("$BIN/corral-submit-load" "$@" --hold --cwd "$WORK" | sed -E 's/.*\(([0-9]+) jobs\/s\).*/\1/')")
      qdel -u "$ME" >/dev/null
    done
    median "${r[@]}"
  }
  report submit_client_library_one_at_a_time "$(submit_load_rate --count "$N_LIB")" jobs_per_s "one process, Client::Call one request at a time (an fsync each: bound by machine_dsync_write_rate), median of 3 x $N_LIB"
  # The target's figure: the client library's pipelined path (Client::CallMany, what
  # corral submit-many uses), every job acknowledged only once committed.
  report submit_client_library_rate "$(submit_load_rate --count "$N_PIPE" --window 1000)" jobs_per_s "one process, Client::CallMany with 1000 in flight, durable (group commit), median of 3 x $N_PIPE; target >= 20000"
  seq "$N_PIPE" | sed 's|^|/bin/true |' > "$WORK/commands"
  r=()
  for _ in 1 2 3; do
    t0=$(us); "$BIN/corral" submit-many -h -cwd --file "$WORK/commands" >/dev/null
    r+=("$(calc "$N_PIPE / (($(us) - $t0) / 1e6)")")
    qdel -u "$ME" >/dev/null
  done
  report submit_many_rate "$(median "${r[@]}")" jobs_per_s "corral submit-many of $N_PIPE command lines (one process start included), median of 3"
  r=()
  for _ in 1 2 3; do
    t0=$(us)
    for ((c = 0; c < 4; c++)); do
      "$BIN/corral-submit-load" --count $((N_LIB / 4)) --hold --cwd "$WORK" >/dev/null &
    done
    wait
    r+=("$(calc "$N_LIB / (($(us) - $t0) / 1e6)")")
    qdel -u "$ME" >/dev/null
  done
  report submit_client_library_rate_4_clients "$(median "${r[@]}")" jobs_per_s "4 processes at once, one request at a time each, median of 3"
  r=()
  for _ in 1 2 3; do
    r+=("$("$BIN/corral-flood" submit --count "$N_FLOOD" --hold --cwd "$WORK" | sed -E 's/.*\(([0-9]+) jobs\/s\).*/\1/')")
    qdel -u "$ME" >/dev/null
  done
  report submit_pipelined_rate "$(median "${r[@]}")" jobs_per_s "corral-flood: raw libzmq socket, 2000 requests in flight (server capacity), median of 3 x $N_FLOOD"
  cd "$REPO"
  down "$C"
fi

# ---- 2. arrays --------------------------------------------------------------------------
if want arrays; then
  section "2. arrays"
  C=$WORK/arrays
  up "$C" 1 2
  qmod -d node1 >/dev/null
  cd "$WORK"
  pid=$(sched_pid "$C")
  r=()
  for _ in 1 2 3; do t0=$(us); qsub -h -b y -cwd -terse /bin/true >/dev/null; r+=("$(ms_since "$t0")"); done
  report array_qsub_one_job_ms "$(median "${r[@]}")" ms "one plain qsub (process start included), for comparison"
  report array_scheduler_rss_idle "$(rss_kb "$pid")" kB
  for n in $ARRAYS; do
    t=(); g=()
    for _ in 1 2 3; do
      before=$(rss_kb "$pid")
      t0=$(us); qsub -cwd -terse -t "1-$n" -b y /bin/true >/dev/null; t+=("$(ms_since "$t0")")
      g+=("$(($(rss_kb "$pid") - before))")
    done
    report "array_accept_${n}_tasks" "$(median "${t[@]}")" ms "one qsub -t 1-$n, median of 3; target < 2000 for 1M"
    report "array_rss_growth_${n}_tasks" "$(median "${g[@]}")" kB "median of 3"
    report "array_bytes_per_pending_task_${n}" "$(calc "$(median "${g[@]}") * 1024 / $n" 4)" B "target < 200"
  done
  cd "$REPO"
  down "$C"
fi

# ---- 3. end to end ----------------------------------------------------------------------
if want e2e; then
  section "3. end to end: $N_E2E x /bin/true on 4 execds x 4 slots"
  C=$WORK/e2e
  up "$C" 4 4
  s1=$(spawn_rate "$N_SPAWN")
  cd "$WORK"
  "$BIN/corral-flood" submit --count "$N_E2E" --binary /bin/true --cwd "$WORK" >/dev/null
  DB=$C/state/corral.db
  deadline=$(($(date +%s) + 900))
  while :; do
    done_n=$(sqlite3 -readonly "$DB" "SELECT count(*) FROM jobs WHERE state IN ('completed','failed','cancelled')" 2>/dev/null || echo 0)
    ((done_n >= N_E2E)) && break
    (($(date +%s) < deadline)) || { echo "perf.sh: e2e: only $done_n of $N_E2E jobs ended in 15 min" >&2; break; }
    sleep 0.5
  done
  read -r span failed < <(sqlite3 -readonly -separator ' ' "$DB" \
    "SELECT (max(end_time) - min(submit_time)) / 1000.0, sum(state != 'completed') FROM jobs")
  s2=$(spawn_rate "$N_SPAWN")
  spawn=$(calc "($s1 + $s2) / 2")
  rate=$(calc "$N_E2E / $span")
  report e2e_span "$span" s "first submit to last end, from the scheduler's records"
  report e2e_jobs_per_s "$rate" jobs_per_s "$N_E2E jobs, $failed not completed"
  report e2e_machine_spawn16_rate "$spawn" per_s "16 /bin/true at once, mean of before ($s1) and after ($s2)"
  report e2e_vs_spawn_ratio "$(calc "$rate / $spawn" 3)" ratio "target >= 0.5"
  cd "$REPO"
  down "$C"
fi

# ---- 6. cancel --------------------------------------------------------------------------
if want cancel; then
  section "6. cancel $N_CANCEL jobs"
  C=$WORK/cancel
  up "$C" 1 1
  qmod -d node1 >/dev/null
  cd "$WORK"
  u=(); ids=(); left=0
  for _ in 1 2 3; do
    "$BIN/corral-flood" submit --count "$N_CANCEL" --cwd "$WORK" >/dev/null
    t0=$(us); qdel -u "$ME" >/dev/null; u+=("$(ms_since "$t0")")
    left=$((left + $(qstat | wc -l)))
    line=$("$BIN/corral-flood" submit --count "$N_CANCEL" --cwd "$WORK")
    first=$(echo "$line" | sed -E 's/.* ids ([0-9]+)-([0-9]+)/\1/')
    last=$(echo "$line" | sed -E 's/.* ids ([0-9]+)-([0-9]+)/\2/')
    t0=$(us); qdel $(seq "$first" "$last") >/dev/null; ids+=("$(ms_since "$t0")")
    left=$((left + $(qstat | wc -l)))
  done
  report cancel_qdel_u "$(median "${u[@]}")" ms "qdel -u of $N_CANCEL pending jobs, median of 3; target < 1000 (Slurm: 10-15 s)"
  report cancel_qdel_ids "$(median "${ids[@]}")" ms "qdel with $N_CANCEL ids on the command line, median of 3"
  report cancel_jobs_left "$left" jobs "qstat lines after the qdels (0 = queue empty)"
  cd "$REPO"
  down "$C"
fi

# ---- 4, 7. queries, restart -----------------------------------------------------------------
# qstat as the user running this script, whose 10 jobs are the "one user"; the population
# belongs to user nobody, half of it finished (cancelled), half pending on a drained node.
query_suite() {  # TAG TOTAL_JOBS
  local tag=$1 total=$2 r k
  local -a forms=("qstat" "qstat -u $ME" "qstat -j $ROOTJOB" "qstat --json")
  local -a names=(qstat qstat_u_user qstat_j qstat_json)
  for k in 0 1 2 3; do
    r=()
    for _ in 1 2 3 4 5; do t0=$(us); ${forms[$k]} >/dev/null; r+=("$(ms_since "$t0")"); done
    report "query_${names[$k]}_$tag" "$(median "${r[@]}")" ms "${forms[$k]}, median of 5"
  done
  r=$("$BIN/corral-flood" query --user "$ME" --reps 5)
  report "query_raw_user_$tag" "$(echo "$r" | awk '{ print $3 }')" ms "the scheduler's round trip for one user's jobs (no process start)"
  # Every user's jobs: only while the pending half is small enough to list at all.
  if ((total <= QSTAT_ALL_MAX)); then
    t0=$(us); rc=0; timeout 60 qstat -u '*' >/dev/null 2>"$WORK/qstat_all.err" || rc=$?
    report "query_qstat_all_$tag" "$(ms_since "$t0")" ms "qstat -u '*', one run, exit status $rc$( ((rc)) && echo ": $(head -c 160 "$WORK/qstat_all.err")")"
  fi
  if ((total <= 100000)); then
    r=$("$BIN/corral-flood" query --reps 1)
    report "query_raw_all_$tag" "$(echo "$r" | awk '{ print $3 }')" ms "every active job, page by page without decoding: $(echo "$r" | awk '{ print $9 }') pages, $(echo "$r" | awk '{ print $7 }') bytes"
    report "query_raw_all_first_page_$tag" "$(echo "$r" | awk '{ print $11 }')" ms "the scheduler's round trip for the first page of that listing"
  fi
}
if want queries; then
  section "4/7. queries, restart"
  C=$WORK/q
  up "$C" 1 1
  chmod -R go+rx "$C/run"
  qmod -d node1 >/dev/null
  cd "$WORK"
  pid=$(sched_pid "$C")
  line=$("$BIN/corral-flood" submit --count 10 --hold --cwd "$WORK" --name mine)
  ROOTJOB=$(echo "$line" | sed -E 's/.* ids ([0-9]+)-.*/\1/')
  query_suite empty 0
  rss_empty=$(rss_kb "$pid")
  total=0
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  for n in $QUERY_SIZES; do
    add=$(((n - total) / 2))
    t0=$(us)
    as_nobody "$BIN/corral-flood" submit --count "$add" --cwd /tmp --name pop >/dev/null
    line=$(as_nobody "$BIN/corral-flood" submit --count "$add" --cwd /tmp --name pop)
    first=$(echo "$line" | sed -E 's/.* ids ([0-9]+)-([0-9]+)/\1/')
    last=$(echo "$line" | sed -E 's/.* ids ([0-9]+)-([0-9]+)/\2/')
    as_nobody "$BIN/corral-flood" cancel --from "$first" --to "$last" >/dev/null
    total=$n
    report "populate_to_$n" "$(ms_since "$t0")" ms "$add submitted, then $add submitted and cancelled (pipelined)"
    report "query_scheduler_rss_$n" "$(rss_kb "$pid")" kB "with $n jobs (includes memory freed by earlier replies and kept by malloc)"
    query_suite "$n" "$n"
  done
  report restart_db_size "$(du -k "$C/state" | awk '{ print $1 }')" kB "state dir with $total jobs"
  for ((k = 1; k <= RESTART_REPS; k++)); do
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true  # ours after the first restart: reap it
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    t0=$(us)
    "$BIN/corral-scheduler" --config "$C/scheduler.yaml" >>"$C/log/scheduler.log" 2>&1 &
    pid=$!
    OWN_PIDS+=("$pid")
    until qstat -j "$ROOTJOB" >/dev/null 2>&1; do sleep 0.02; done
    report "restart_until_qstat_answers_${total}_run$k" "$(ms_since "$t0")" ms "kill -9, start, until qstat -j answers; target < 5000 for 1M"
  done
  rss=$(rss_kb "$pid")
  report restart_scheduler_rss "$rss" kB "after loading $total jobs"
  report restart_bytes_per_job_loaded "$(calc "($rss - $rss_empty) * 1024 / $total" 0)" B "VmRSS after the restart minus that of the empty scheduler, per job (half pending, half finished)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  cd "$REPO"
  down "$C"
fi

# ---- 8. memory per job -----------------------------------------------------------------------
# On a fresh scheduler, so that no earlier reply's freed memory is reused: VmRSS growth over
# N pending jobs as they are submitted, and the RSS of schedulers restarted with N pending,
# then N finished (cancelled) jobs, against the RSS of the empty scheduler.
if want memory; then
  section "8. memory: $N_MEM pending, then finished, jobs"
  C=$WORK/mem
  up "$C" 1 1
  qmod -d node1 >/dev/null
  cd "$WORK"
  pid=$(sched_pid "$C")
  rss0=$(rss_kb "$pid")
  line=$("$BIN/corral-flood" submit --count "$N_MEM" --cwd "$WORK" --name mem)
  rss1=$(rss_kb "$pid")
  report memory_bytes_per_pending_job_live "$(calc "($rss1 - $rss0) * 1024 / $N_MEM" 0)" B "VmRSS growth over $N_MEM submitted, fresh scheduler"
  restart_rss() {  # kill -9 the scheduler, start it again, wait until it answers; sets pid
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    "$BIN/corral-scheduler" --config "$C/scheduler.yaml" >>"$C/log/scheduler.log" 2>&1 &
    pid=$!
    OWN_PIDS+=("$pid")
    # Every job is ours (qstat would list them all): a raw query of job 1 waits for it.
    "$BIN/corral-flood" query --ids 1 --reps 1 >/dev/null
  }
  restart_rss
  report memory_bytes_per_pending_job_loaded "$(calc "($(rss_kb "$pid") - $rss0) * 1024 / $N_MEM" 0)" B "restarted with $N_MEM pending"
  last=$(echo "$line" | sed -E 's/.* ids ([0-9]+)-([0-9]+)/\2/')
  "$BIN/corral-flood" cancel --from 1 --to "$last" >/dev/null
  restart_rss
  report memory_bytes_per_finished_job_loaded "$(calc "($(rss_kb "$pid") - $rss0) * 1024 / $N_MEM" 0)" B "restarted with $N_MEM finished (cancelled); target: kept queryable"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  cd "$REPO"
  down "$C"
fi

# ---- 5. scheduling pass ---------------------------------------------------------------------
if want decide; then
  section "5. scheduling pass (in-process): corral-decide-bench $DECIDE_ARGS"
  # shellcheck disable=SC2086
  "$BIN/corral-decide-bench" $DECIDE_ARGS | while read -r name value unit; do
    [[ $name == \#* ]] && { echo "$name $value $unit"; continue; }
    report "$name" "$value" "$unit"
  done
fi

# emu_scheduler DIR: a scheduler for emulated nodes (corral-node-emulator) in DIR; sets
# spid, node_ep (where the emulator connects) and CORRAL_SCHEDULER (its ipc endpoint).
emu_scheduler() {
  local S=$1
  mkdir -p "$S/state"
  {
    echo "endpoints: [\"tcp://127.0.0.1:*\", \"ipc://$S/sched.sock\"]"
    echo "state_dir: \"$S/state\""
    echo "heartbeat_interval: 5"
    echo "node_timeout: 60"
    # Newer schedulers take execds on endpoints of their own.
    grep -q node_endpoints "$BIN/corral-scheduler" && echo "node_endpoints: [\"tcp://127.0.0.1:*\"]"
  } > "$S/scheduler.yaml"
  ulimit -n "$(ulimit -Hn)"
  "$BIN/corral-scheduler" --config "$S/scheduler.yaml" > "$S/scheduler.log" 2>&1 &
  spid=$!
  OWN_PIDS+=("$spid")
  until [ -s "$S/state/endpoints" ]; do sleep 0.05; done
  node_ep=$(grep tcp "$S/state/node_endpoints" 2>/dev/null || grep tcp "$S/state/endpoints")
  export CORRAL_SCHEDULER=ipc://$S/sched.sock
}

# ---- 9. cluster scale -------------------------------------------------------------------------
if want scale; then
  for nodes in $SCALE_NODES; do
    job_ms=$((nodes * 32 * 1000 / SCALE_JOBS_PER_S))
    section "9. $nodes emulated nodes x 32 cores, mean job ${job_ms} ms"
    S=$WORK/scale$nodes
    emu_scheduler "$S"
    "$BIN/corral-node-emulator" --scheduler "$node_ep" --nodes "$nodes" --cores 32 \
      --job-ms "$job_ms" --ramp-ms 5000 --measure-s "$SCALE_MEASURE_S" --max-s 1800 \
      > "$S/emulator.out" 2>&1 &
    epid=$!
    OWN_PIDS+=("$epid")
    until grep -q '^registered' "$S/emulator.out"; do
      kill -0 "$epid" 2>/dev/null || { cat "$S/emulator.out" >&2; exit 1; }
      sleep 0.2
    done
    grep '^# RLIMIT' "$S/emulator.out" || true
    sleep 5
    c0=$(cpu_ticks "$spid"); t0=$(us)
    sleep "$SCALE_IDLE_S"
    c1=$(cpu_ticks "$spid"); secs=$(calc "($(us) - $t0) / 1e6" 3)
    share=$(calc "($c1 - $c0) / $CLK_TCK / $secs * 100" 2)
    report "scale_idle_cpu_share_${nodes}_nodes" "$share" "%" "scheduler CPU, idle nodes: heartbeats every 5 s + its 1 s tick, over ${SCALE_IDLE_S} s"
    report "scale_idle_cpu_per_heartbeat_${nodes}_nodes" "$(calc "($c1 - $c0) / $CLK_TCK / ($nodes * $secs / 5) * 1e6" 0)" us "scheduler CPU per heartbeat (tick included)"
    report "scale_rss_idle_${nodes}_nodes" "$(rss_kb "$spid")" kB
    backlog=$((nodes * 32 + SCALE_JOBS_PER_S * (SCALE_MEASURE_S + 240)))
    cd "$WORK"
    t0=$(us)
    "$BIN/corral-flood" submit --count "$backlog" --binary /bin/true --cwd "$WORK" >/dev/null
    report "scale_submit_backlog_${nodes}_nodes" "$(ms_since "$t0")" ms "$backlog jobs, pipelined, while the cluster fills"
    cd "$REPO"
    until grep -q '^full' "$S/emulator.out"; do
      kill -0 "$epid" 2>/dev/null || { cat "$S/emulator.out" >&2; exit 1; }
      sleep 0.2
    done
    c2=$(cpu_ticks "$spid"); t2=$(us)
    report "scale_time_to_fill_${nodes}_nodes" "$(grep '^full' "$S/emulator.out" | awk '{ print $3 }')" s "emulator start to the cluster full (every slot filled once, 99% busy)"
    wait "$epid" || true
    c3=$(cpu_ticks "$spid"); secs=$(calc "($(us) - $t2) / 1e6" 3)
    report "scale_full_load_cpu_share_${nodes}_nodes" "$(calc "($c3 - $c2) / $CLK_TCK / $secs * 100" 2)" "%" "scheduler CPU at full load over ${secs} s"
    report "scale_rss_full_${nodes}_nodes" "$(rss_kb "$spid")" kB
    grep '^emu_' "$S/emulator.out" | while read -r name value unit; do report "$name" "$value" "$unit"; done
    kill "$spid"; wait "$spid" 2>/dev/null || true
  done
fi

# ---- 9b. query storm (#9) --------------------------------------------------------------------
# "Queries never block scheduling": a loaded cluster of emulated nodes (jobs that "run"
# without processes, so that process starts do not dominate), measured in windows of
# STORM_WINDOW_S one after the other: one to settle (not used), then quiet and storm
# windows in turn (q s q s q). In a storm window STORM_CLIENTS listing loops run
# (corral-query-storm: one socket each, doing what qstat does, every reply decoded). Each
# window's job start rate and slot-refill latency (a slot freeing to the next job starting
# there), the ratio of the storm windows' mean to the quiet ones', and the time of a real
# qstat run one after the other in each kind of window.
if want storm; then
  nodes=$STORM_NODES
  job_ms=$((nodes * 32 * 1000 / SCALE_JOBS_PER_S))
  section "9b. query storm: $nodes emulated nodes x 32 cores, mean job ${job_ms} ms, $STORM_CLIENTS listing loops"
  S=$WORK/storm
  emu_scheduler "$S"
  pattern=(settle q s q s q)
  # The load belongs to user nobody, submitted before the nodes come; the listing loops ask
  # for this user's own jobs (a workflow tool polling its jobs: 200 held ones), as qstat
  # without options does.
  chmod go+rx "$S"
  backlog=$((nodes * 32 + SCALE_JOBS_PER_S * (${#pattern[@]} * STORM_WINDOW_S + 120)))
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$BIN/corral-flood" submit --count "$backlog" --binary /bin/true --cwd /tmp >/dev/null
  cd "$WORK"
  "$BIN/corral-flood" submit --count 200 --hold --cwd "$WORK" --name mine >/dev/null
  cd "$REPO"
  report storm_backlog "$backlog" jobs "submitted by user nobody before the nodes register; this user has 200 held"
  "$BIN/corral-node-emulator" --scheduler "$node_ep" --nodes "$nodes" --cores 32 \
    --job-ms "$job_ms" --ramp-ms 2000 --measure-s "$STORM_WINDOW_S" --windows "${#pattern[@]}" \
    --max-s 1800 > "$S/emulator.out" 2>&1 &
  epid=$!
  OWN_PIDS+=("$epid")
  wait_for() {  # a line of the emulator's output
    until grep -q "$1" "$S/emulator.out"; do
      kill -0 "$epid" 2>/dev/null || { cat "$S/emulator.out" >&2; exit 1; }
      sleep 0.1
    done
  }
  qstat_loop() {  # OUT SECONDS: real qstat runs one after the other for SECONDS, times to OUT
    local end=$(($(date +%s) + $2))
    while (($(date +%s) < end)); do
      t0=$(us); qstat >/dev/null; echo "$(ms_since "$t0")" >> "$1"
    done
  }
  loops=()
  for ((w = 2; w <= ${#pattern[@]}; w++)); do
    wait_for "^window $w started"
    kind=${pattern[w - 1]}
    if [[ $kind == s ]]; then
      "$BIN/corral-query-storm" --endpoint "$CORRAL_SCHEDULER" --clients "$STORM_CLIENTS" \
        --seconds "$STORM_WINDOW_S" > "$S/storm_w$w.out" 2>&1 &
      loops+=($!)
      OWN_PIDS+=($!)
    fi
    qstat_loop "$S/qstat_$kind" $((STORM_WINDOW_S - 1)) &
    loops+=($!)
  done
  wait "$epid" || true
  wait "${loops[@]}" || true
  for kind in q s; do
    mapfile -t r < "$S/qstat_$kind"
    report "storm_qstat_$kind" "$(median "${r[@]}")" ms "real qstat (process start included, 202 lines) one after the other in the $kind windows, median of ${#r[@]}"
  done
  for f in "$S"/storm_w*.out; do
    w=$(basename "$f" .out); w=${w#storm_}
    grep '^storm_' "$f" | while read -r name value unit; do report "${name}_$w" "$value" "$unit"; done
  done
  grep '^emu_' "$S/emulator.out" | grep -v '_w1 ' | while read -r name value unit; do report "storm_$name" "$value" "$unit"; done
  val() { grep "^$1 " "$S/emulator.out" | awk '{ print $2 }'; }
  for fig in starts_per_s slot_refill_median slot_refill_p90; do
    q=(); st=()
    for ((w = 2; w <= ${#pattern[@]}; w++)); do
      v=$(val "emu_${fig}_${nodes}_nodes_w$w")
      if [[ ${pattern[w - 1]} == s ]]; then st+=("$v"); else q+=("$v"); fi
    done
    mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.3f", s / NR }'; }
    report "storm_ratio_${fig}" "$(calc "$(mean "${st[@]}") / $(mean "${q[@]}")" 3)" ratio "mean of the storm windows (${st[*]}) / mean of the quiet ones (${q[*]})"
  done
  report storm_scheduler_rss "$(rss_kb "$spid")" kB
  kill "$spid"; wait "$spid" 2>/dev/null || true
fi

report machine_loadavg_at_end "$(cut -d' ' -f1 /proc/loadavg)" load "1-minute load average"

# ---- results --------------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
"$PY" - "$FIGS" "$OUT" "$QUICK" "$BIN" <<'PY'
import json, sys, datetime, os
figs, out, quick, binary = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
figures = {}
for line in open(figs):
    name, value, unit, note = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
    try:
        v = float(value)
        v = int(v) if v.is_integer() and "." not in value else v
    except ValueError:
        v = value
    figures[name] = {"value": v, "unit": unit, **({"note": note} if note else {})}
json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "quick": quick, "cores": os.cpu_count(), "binaries": binary, "figures": figures},
          open(out, "w"), indent=1)
PY
echo "# written $OUT"
