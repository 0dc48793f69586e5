#!/usr/bin/env bash
# Foundation figures: sequential qsub rate (beside the machine's own rate of starting
# a trivial program in the same loop), the protocol's submit rate through the client
# library, and submit-to-start latency of a trivial job on an idle cluster.
# Prints one "name value unit" line per figure and writes bench/results/foundation.json.
# Usage: bench/foundation.sh [N_QSUB (default 300)] [N_LIB (default 20000)]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/bin
N_QSUB=${1:-300}
N_LIB=${2:-20000}
[ -x "$BIN/qsub" ] || scripts/setup.sh >/dev/null
DIR=$(mktemp -d /tmp/corral-bench-XXXXXX)
trap '"$BIN/corral" local down --dir "$DIR/c" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
"$BIN/corral" local up --dir "$DIR/c" --nodes 2 --cpus 2 >/dev/null
eval "$("$BIN/corral" local env --dir "$DIR/c")"
export PATH="$BIN:/usr/bin:/bin"
cd "$DIR"
now() { date +%s.%N; }
rate() { /usr/bin/python3 -c "import sys; print(f'{float(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.1f}')" "$@"; }

# 1. The machine: /bin/true started N times from this shell loop.
t0=$(now); for ((i = 0; i < N_QSUB; i++)); do /bin/true; done; t1=$(now)
true_rate=$(rate "$N_QSUB" "$t0" "$t1")

# 2. Sequential qsub processes (held jobs: the figure is submission, not execution).
t0=$(now); for ((i = 0; i < N_QSUB; i++)); do qsub -h -b y -cwd -terse /bin/true >/dev/null; done; t1=$(now)
qsub_rate=$(rate "$N_QSUB" "$t0" "$t1")
qdel -u "$(id -un)" >/dev/null

# 3. The protocol's own rate: one client process, one request at a time, full durability.
lib_line=$("$BIN/corral-submit-load" --count "$N_LIB" --hold --cwd "$DIR")
lib_rate=$(echo "$lib_line" | sed -E 's/.*\(([0-9]+) jobs\/s\).*/\1/')
qdel -u "$(id -un)" >/dev/null

# 3b. Four such clients at once: group commit shares each transaction (and its fsync).
t0=$(now)
for ((c = 0; c < 4; c++)); do
  "$BIN/corral-submit-load" --count $((N_LIB / 4)) --hold --cwd "$DIR" >/dev/null &
done
wait
t1=$(now)
lib4_rate=$(rate "$N_LIB" "$t0" "$t1")
qdel -u "$(id -un)" >/dev/null

# 4. Submit -> start on an idle cluster, 30 times: the scheduler's dispatch time and the
#    job's own first instruction, both against the scheduler's submit timestamp.
cat > lat.sh <<'JOB'
#!/bin/sh
date +%s.%N > "lat.$JOB_ID"
JOB
lat_rows=""
for ((i = 0; i < 30; i++)); do
  id=$(qsub -sync y -cwd -terse lat.sh 2>/dev/null | head -1)
  js=$(qstat -j "$id" --json)
  lat_rows+="$js $(cat "lat.$id")"$'\n'
done
read -r dispatch_ms exec_ms < <(printf '%s' "$lat_rows" | /usr/bin/python3 -c '
import json, sys, statistics
d, e = [], []
for line in sys.stdin:
    js, started = line.rsplit(" ", 1)
    job = json.loads(js)["jobs"][0]
    d.append((job["start_time"] - job["submit_time"]) * 1000)
    e.append((float(started) - job["submit_time"]) * 1000)
print(f"{statistics.median(d):.1f} {statistics.median(e):.1f}")')

echo "machine_true_spawn_rate $true_rate per_s"
echo "qsub_sequential_rate $qsub_rate jobs_per_s"
echo "qsub_vs_true_ratio $(/usr/bin/python3 -c "print(f'{$qsub_rate / $true_rate:.2f}')") ratio"
echo "client_library_submit_rate $lib_rate jobs_per_s"
echo "client_library_submit_rate_4_clients $lib4_rate jobs_per_s"
echo "submit_to_dispatch_median $dispatch_ms ms"
echo "submit_to_job_start_median $exec_ms ms"
mkdir -p "$OLDPWD/bench/results" 2>/dev/null || true
cat > "$OLDPWD/bench/results/foundation.json" <<JSON
{"machine_true_spawn_rate": $true_rate, "qsub_sequential_rate": $qsub_rate,
 "client_library_submit_rate": $lib_rate,
 "client_library_submit_rate_4_clients": $lib4_rate, "submit_to_dispatch_median_ms": $dispatch_ms,
 "submit_to_job_start_median_ms": $exec_ms, "n_qsub": $N_QSUB, "n_lib": $N_LIB}
JSON
