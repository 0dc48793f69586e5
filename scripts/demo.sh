#!/usr/bin/env bash
# Corral's main job, in one command: an image-analysis parameter sweep on a local
# cluster. It installs what is missing and builds (scripts/setup.sh), starts a cluster of
# 2 execds on this machine, makes deterministic 3D foam volumes, and submits
#   - a sweep: 6 volumes x 6 filter settings (median 3/5/7, gaussian 1/1.5/2) x 3
#     thresholds = 108 tasks of examples/imaging/analyze.py, each writing its numbers to
#     $CORRAL_RESULT;
#   - a chunked job: one larger volume labelled as a map array over 4 slabs and a reduce
#     job held on it (-hold_jid), checked against labelling the whole volume at once.
# It shows progress while they run, prints the results table (qresults), spot-checks
# three tasks against a direct run of the analysis, writes a plot, and stops the cluster
# (unless --keep). Re-running it starts afresh.
#
# usage: scripts/demo.sh [--keep] [--dir DIR]
#   --keep     leave the cluster running (stop it with: build/bin/corral local down --dir DIR)
#   --dir DIR  put the cluster and the results in DIR (default: a new /tmp/corral-demo.XXXXXX)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bin="$repo/build/bin"
py=/usr/bin/python3
imaging="$repo/examples/imaging"

keep=0
dir=""
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --dir) dir=${2:?--dir needs a directory}; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option '$1' (see scripts/demo.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "installing what is missing and building (scripts/setup.sh; log in build/setup.log)"
mkdir -p build
if ! scripts/setup.sh >build/setup.log 2>&1; then
  tail -n 40 build/setup.log
  echo "demo: the build failed (the end of build/setup.log is above)" >&2
  exit 1
fi

# Short on purpose: the scheduler's socket path must fit in 107 bytes.
[[ -n $dir ]] || dir=$(mktemp -d /tmp/corral-demo.XXXXXX)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
"$bin/corral" local down --dir "$dir" >/dev/null 2>&1 || true  # a cluster left by a kept run
cluster_up=0
cleanup() {
  local status=$?
  if ((cluster_up && !keep)); then
    step "stopping the cluster"
    "$bin/corral" local down --dir "$dir" || true
  elif ((cluster_up)); then
    echo "demo: the cluster keeps running: eval \"\$($bin/corral local env --dir $dir)\"; stop it with $bin/corral local down --dir $dir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting a local cluster: a scheduler and 2 execds with 2 cores each, in $dir"
cluster_up=1
show "$bin/corral" local up --dir "$dir" --nodes 2 --cpus 2
eval "$("$bin/corral" local env --dir "$dir")"
export PATH="$bin:$PATH"
show qhost

work="$dir/work"
rm -rf "$work"
mkdir -p "$work/data" "$work/logs"
cd "$work"

step "making the input: 6 foam volumes of 64^3 voxels and one of 128^3 (deterministic)"
"$py" "$imaging/make_data.py" data --volumes 6 --size 64 --seed 1 | sed 's/^/  /'
"$py" "$imaging/make_data.py" data --volumes 1 --size 128 --seed 100 | sed 's/^/  /'
big="$work/data/foam128_seed100.npy"

cat >sweep.yaml <<YAML
# One task per point: every volume x every filter setting x every threshold.
files:
  image: data/foam64_seed*.npy
zip:
  filter: [median, median, median, gaussian, gaussian, gaussian]
  size:   [3,      5,      7,      3,        3,        3]
  sigma:  [1,      1,      1,      1,        1.5,      2]
grid:
  threshold: [0.3, 0.5, 0.7]
YAML
step "the sweep file (docs/sweeps.md)"
sed 's/^/  /' sweep.yaml

step "submitting the sweep: one array job, one task per point"
sweep=$(qsub -terse -cwd -N foam_sweep -o logs/ -j y --sweep sweep.yaml \
  -b y "$py" "$imaging/analyze.py" --out results)
sweep=${sweep%%.*}
echo "job-array $sweep"

step "submitting the chunked job: a map array over 4 slabs, a reduce held on it"
map=$(qsub -terse -cwd -N slabs -o logs/ -j y -t 1-4 \
  -b y "$py" "$imaging/slab_label.py" --image "$big" --slabs 4 --filter median --size 3 \
  --threshold 0.5 --out slabs)
map=${map%%.*}
reduce=$(qsub -terse -cwd -N merge -o logs/ -j y -hold_jid "$map" \
  -b y "$py" "$imaging/merge_slabs.py" --dir slabs --slabs 4)
whole=$(qsub -terse -cwd -N whole -o logs/ -j y \
  -b y "$py" "$imaging/analyze.py" --image "$big" --filter median --size 3 --threshold 0.5 \
  --out whole)
echo "map $map (4 tasks), reduce $reduce (waits for $map), whole-volume check $whole"
show qstat

# Progress from the array's task counts (qstat -j: corral_tasks), until every job ended.
# Empty once the array has ended (qstat -j shows only jobs that have not).
counts() { qstat -j "$1" 2>/dev/null | sed -n 's/^corral_tasks: *//p' || true; }
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$2"; }
step "running (progress of the sweep; the chunked job runs beside it)"
start=$SECONDS
deadline=$((SECONDS + 900))
while :; do
  c=$(counts "$sweep")
  if [[ -z $c ]]; then  # the sweep has ended: its final counts from the results table
    c="completed=$(qresults "$sweep" --csv --where state=completed | tail -n +2 | wc -l)"
    c+=" failed=$(qresults "$sweep" --csv --where state!=completed | tail -n +2 | wc -l)"
  fi
  done_n=$(field completed "$c"); run_n=$(field running "$c"); wait_n=$(field pending "$c")
  fail_n=$(field failed "$c")
  done_n=${done_n:-0} run_n=${run_n:-0} wait_n=${wait_n:-0} fail_n=${fail_n:-0}
  total=$((done_n + run_n + wait_n + fail_n))
  ((total > 0)) || total=108
  width=40 filled=$(((done_n + fail_n) * 40 / total))
  bar=$(printf '%*s' "$filled" '' | tr ' ' '#')$(printf '%*s' $((width - filled)) '' | tr ' ' '.')
  line=$(printf '[%s] %3d done  %d running  %3d queued  %d failed  %3ds' "$bar" "$done_n" \
    "$run_n" "$wait_n" "$fail_n" $((SECONDS - start)))
  if [[ -t 1 ]]; then printf '\r%s' "$line"; else echo "$line"; fi
  if [[ -z $(qstat -u '*' 2>/dev/null) ]]; then break; fi
  if ((SECONDS >= deadline)); then
    echo
    echo "demo: jobs still running after 15 minutes; deleting them" >&2
    qdel -u "$(id -un)" >/dev/null || true
    exit 1
  fi
  if [[ -t 1 ]]; then sleep 0.5; else sleep 5; fi
done
echo
echo "all jobs ended after $((SECONDS - start)) s"

step "the sweep's results: one table (qresults $sweep; also --csv, --json, --where, --sort)"
qresults "$sweep" --csv >results.csv
echo "qresults $sweep has $(($(wc -l <results.csv) - 1)) rows and these columns:"
head -n 1 results.csv | tr ',' ' ' | fold -s -w 88 | sed 's/^/  /'
echo "the first ten rows, some columns:"
show qresults "$sweep" --sql "SELECT task, replace(image, '$work/data/', '') AS image, filter,
  size, sigma, threshold, state, runtime_s, node, components, ROUND(mean_size, 1) AS mean_size
  FROM results ORDER BY task LIMIT 10"
step "summarised with SQL over that table"
show qresults "$sweep" --sql "SELECT filter, size, sigma, threshold, COUNT(*) AS images,
  ROUND(AVG(components), 1) AS mean_components, ROUND(AVG(foreground_fraction), 4) AS fg
  FROM results GROUP BY filter, size, sigma, threshold ORDER BY filter, size, sigma, threshold"

failed=$(qresults "$sweep" --csv --where state!=completed | tail -n +2 | wc -l)
step "checks"
echo "tasks that did not complete: $failed"
# Three tasks recomputed directly, outside Corral: same parameters, same numbers?
ok=1
for t in 1 54 108; do
  row=$(qresults "$sweep" --json --where "task=$t")
  read -r image filter size sigma threshold comps < <("$py" -c '
import json, sys
r = json.loads(sys.argv[1])["rows"][0]
print(r["image"], r["filter"], r["size"], r["sigma"], r["threshold"], r["components"])' "$row")
  direct=$(env -u CORRAL_PARAMS -u CORRAL_RESULT "$py" "$imaging/analyze.py" --image "$image" \
    --filter "$filter" --size "$size" --sigma "$sigma" --threshold "$threshold" --out spot |
    "$py" -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["components"])')
  verdict=$([[ $direct == "$comps" ]] && echo same || echo DIFFERENT)
  [[ $verdict == same ]] || ok=0
  echo "task $t ($(basename "$image") $filter size=$size sigma=$sigma t=$threshold):" \
    "Corral $comps, direct $direct: $verdict"
done
chunked=$(qacct -j "$reduce" | sed -n 's/^exit_status *//p')
merged=$(sed -n 's/.*"components": *\([0-9]*\).*/\1/p' logs/merge.o"$reduce" | tail -n 1)
whole_n=$(sed -n 's/.*"components": *\([0-9]*\).*/\1/p' logs/whole.o"$whole" | tail -n 1)
verdict=$([[ -n $merged && $merged == "$whole_n" ]] && echo same || echo DIFFERENT)
[[ $verdict == same && $chunked == 0* ]] || ok=0
echo "chunked (4 slabs + merge): $merged components; whole volume: $whole_n: $verdict"

step "plotting components vs threshold per filter"
plot=$("$py" "$imaging/plot_results.py" results.csv "$work/components.png")
echo "plot: $plot"
echo "results table: $work/results.csv; per-task label images and sizes: $work/results/"

if ((failed > 0 || !ok)); then
  echo "demo: some checks failed (see above)" >&2
  exit 1
fi
step "done: every task completed and the checks agree"
