#!/usr/bin/env bash
# CPU per job of the end-to-end path (issue #11, item 3): N /bin/true jobs on a local
# cluster of 4 execds x 4 slots, and the CPU the cluster's processes spent on them: the
# scheduler, the execds and their live children (the spawners, which have reaped the
# shepherds and, through them, the jobs), utime + stime + cutime + cstime from /proc, after
# minus before. On a shared, loaded machine this is the figure to compare (alternate the
# builds); jobs/s is printed too, and the part of the CPU that was the spawners' own
# (spawner_self_ms) and their shepherds' and jobs' (shepherds_jobs_ms). Measurement only,
# never a test.
#
# Usage: bench/e2e_cpu.sh DIR [N]     DIR holds the built binaries (build/bin); N = 300
# The cluster lives in $TMPDIR (default /tmp): TMPDIR=/dev/shm takes the spool's file system
# out of the figure (on this machine's ext4 without a journal, creating an inode costs more the
# more were deleted in the last minutes, so successive runs slow each other down).
set -euo pipefail
BIN=$(readlink -f "$1")
N=${2:-300}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/corral-e2e-cpu.XXXXXX")
C=$WORK/cluster
export PATH="$BIN:/usr/bin:/bin"
trap 'cd /; "$BIN/corral" local down --dir "$C" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
"$BIN/corral" local up --dir "$C" --nodes 4 --cpus 4 >/dev/null
eval "$("$BIN/corral" local env --dir "$C")"
sleep 1  # registration: not part of the figure

pids() {  # the daemons and their children
  local roots all r
  roots=$(cat "$C"/run/*.pid 2>/dev/null)
  all="$roots"
  for r in $roots; do
    # cat, not awk on the files: (m)awk stops at the first process that exits meanwhile
    # (the machine's others do), which dropped a spawner's ticks from some totals.
    all="$all $(cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$r" '$4 == p { print $1 }' | tr '\n' ' ')"
  done
  echo $all
}
ticks() {
  local t=0 p v
  for p in $(pids); do
    v=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + v))
  done
  echo $t
}
# The spawners' own CPU (the forks and their copy-on-write faults), then what they reaped
# (the shepherds and, through them, the jobs): "self children" in ticks.
spawner_ticks() {
  local s=0 c=0 p v
  for p in $(pids); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = corral-spawner ] || continue
    read -r a b < <(awk '{ print $14 + $15, $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0 0)
    s=$((s + a))
    c=$((c + b))
  done
  echo "$s $c"
}

t0=$(ticks)
read -r s0 c0 < <(spawner_ticks)
cd "$WORK"
"$BIN/corral-flood" submit --count "$N" --binary /bin/true --cwd "$WORK" >/dev/null
DB=$C/state/corral.db
deadline=$(($(date +%s) + 600))
while :; do
  done_n=$(sqlite3 -readonly "$DB" \
    "SELECT count(*) FROM jobs WHERE state IN ('completed','failed','cancelled')" 2>/dev/null || echo 0)
  ((done_n >= N)) && break
  (($(date +%s) < deadline)) || { echo "e2e_cpu.sh: only $done_n of $N jobs ended" >&2; break; }
  sleep 0.2
done
sleep 0.5  # the last exits reaped and acknowledged
t1=$(ticks)
read -r s1 c1 < <(spawner_ticks)
read -r span failed < <(sqlite3 -readonly -separator ' ' "$DB" \
  "SELECT (max(end_time) - min(submit_time)) / 1000.0, sum(state != 'completed') FROM jobs")
hz=$(getconf CLK_TCK)
echo "cpu_per_job_ms $(awk -v a="$t0" -v b="$t1" -v n="$N" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / n }')" \
     "spawner_self_ms $(awk -v a="$s0" -v b="$s1" -v n="$N" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / n }')" \
     "shepherds_jobs_ms $(awk -v a="$c0" -v b="$c1" -v n="$N" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / n }')" \
     "jobs_per_s $(awk -v s="$span" -v n="$N" 'BEGIN { printf "%.1f", n / s }')" \
     "failed $failed load $(cut -d' ' -f1 /proc/loadavg) processes $(pids | wc -w)"
