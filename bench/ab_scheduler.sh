#!/usr/bin/env bash
# A/B of two corral-scheduler binaries: the same client-side figures against each, on two
# local clusters up at once, alternated REPS times, with the medians and their ratio.
# On a small shared machine figures drift by 20-50% from minute to minute; alternating
# A and B in the same minutes is what makes their ratio mean something.
#
#   bench/ab_scheduler.sh OLD/corral-scheduler NEW/corral-scheduler [--reps N] [--bin DIR]
#                         [--raw FILE]   (every round's figures, "side name value" lines)
#
# Everything but the scheduler (corral, corral-execd, corral-spawner, qsub, qdel, qmod,
# corral-submit-load, corral-flood) comes from --bin (default build/bin). Per round and
# side: 60 qsub -h in a shell loop and 60 /bin/true in the same loop, 1,000 Client::Call
# one at a time, 10,000 Client::CallMany with 1,000 in flight, 5,000 corral-flood
# submits (raw libzmq DEALER, 2,000 in flight). Prints "figure A B B/A".
set -euo pipefail
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
(($# >= 2)) || { usage >&2; exit 2; }
SCHED_A=$(realpath "$1") SCHED_B=$(realpath "$2")
shift 2
REPS=7
BIN=build/bin
RAW=
while (($#)); do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --raw) RAW=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    *) echo "ab_scheduler.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
BIN=$(realpath "$BIN")
for f in "$SCHED_A" "$SCHED_B" "$BIN/corral" "$BIN/corral-execd" "$BIN/corral-spawner" \
         "$BIN/qsub" "$BIN/qdel" "$BIN/qmod" "$BIN/corral-submit-load" "$BIN/corral-flood"; do
  [[ -x $f ]] || { echo "ab_scheduler.sh: $f is missing" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/corral-ab-XXXXXX)
cleanup() {
  for s in A B; do "$WORK/bin$s/corral" local down --dir "$WORK/c$s" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# `corral local up` starts the daemons found beside its own binary: one directory each.
for s in A B; do
  mkdir "$WORK/bin$s"
  cp "$BIN/corral" "$BIN/corral-execd" "$BIN/corral-spawner" "$WORK/bin$s/"
  var=SCHED_$s
  cp "${!var}" "$WORK/bin$s/corral-scheduler"
  "$WORK/bin$s/corral" local up --dir "$WORK/c$s" --nodes 1 --cpus 2 >/dev/null
  (eval "$("$BIN/corral" local env --dir "$WORK/c$s")"; "$BIN/qmod" -d node1 >/dev/null)
done

rate() { python3 -c "import sys; print(round($1 / (($2 - $3) / 1e9), 1))"; }
jobs_per_s() { sed -E 's/.*\(([0-9]+) jobs\/s\).*/\1/'; }
: >"$WORK/figures"
for ((r = 1; r <= REPS; r++)); do
  echo "# round $r of $REPS" >&2
  for s in A B; do
    eval "$("$BIN/corral" local env --dir "$WORK/c$s")"
    t0=$(date +%s%N)
    for ((i = 0; i < 60; i++)); do "$BIN/qsub" -h -b y -cwd -terse /bin/true >/dev/null; done
    t1=$(date +%s%N)
    for ((i = 0; i < 60; i++)); do /bin/true; done
    t2=$(date +%s%N)
    q=$(rate 60 "$t1" "$t0") t=$(rate 60 "$t2" "$t1")
    {
      echo "$s qsub_loop_per_s $q"
      echo "$s true_loop_per_s $t"
      echo "$s qsub_vs_true $(python3 -c "print(round($q / $t, 3))")"
      echo "$s call_one_at_a_time_per_s $("$BIN/corral-submit-load" --count 1000 --hold --cwd /tmp | jobs_per_s)"
      echo "$s callmany_1000_per_s $("$BIN/corral-submit-load" --count 10000 --window 1000 --hold --cwd /tmp | jobs_per_s)"
      echo "$s flood_2000_per_s $("$BIN/corral-flood" submit --count 5000 --hold --cwd /tmp | jobs_per_s)"
    } >>"$WORK/figures"
    "$BIN/qdel" -u "$(id -un)" >/dev/null
  done
done
[[ -z $RAW ]] || cp "$WORK/figures" "$RAW"
python3 - "$WORK/figures" <<'EOF'
import collections, statistics, sys
d = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    side, name, value = line.split()
    d[name][side].append(float(value))
print(f"{'figure':28s} {'A':>10s} {'B':>10s} {'B/A':>6s}   (medians of {len(d['qsub_loop_per_s']['A'])})")
for name, sides in d.items():
    a, b = statistics.median(sides["A"]), statistics.median(sides["B"])
    digits = 3 if a < 10 else 1
    print(f"{name:28s} {a:10.{digits}f} {b:10.{digits}f} {b / a:6.2f}")
EOF
