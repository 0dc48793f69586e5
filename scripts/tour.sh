#!/usr/bin/env bash
# A tour of the q-tools in about a minute: builds (scripts/setup.sh), starts a two-node cluster on this
# machine, runs the example jobs through qsub/qstat/qacct/qdel and stops the cluster again
# (always: on success, error or Ctrl-C). The cluster lives in a fresh temporary directory,
# removed at the end, or in $CORRAL_DEMO_DIR, which is kept for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bin="$repo/build/bin"

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "building Corral (scripts/setup.sh; output in build/setup.log)"
mkdir -p build
if ! scripts/setup.sh >build/setup.log 2>&1; then
  tail -n 40 build/setup.log
  echo "demo: the build failed (the end of build/setup.log is above)" >&2
  exit 1
fi
echo "built: $(ls "$bin" | tr '\n' ' ')"

if [[ -n ${CORRAL_DEMO_DIR:-} ]]; then
  dir=$CORRAL_DEMO_DIR
  keep=1
else
  # Short on purpose: the scheduler's socket path must fit in 107 bytes.
  dir=$(mktemp -d /tmp/corral-demo.XXXXXX)
  keep=0
fi
cluster_up=0
cleanup() {
  local status=$?
  if ((cluster_up)); then
    step "stopping the cluster"
    "$bin/corral" local down --dir "$dir" || true
  fi
  if ((keep)); then
    echo "demo: the cluster directory $dir is kept (logs in $dir/log)"
  else
    rm -rf "$dir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting a local cluster: a scheduler and 2 execds in $dir"
cluster_up=1
show "$bin/corral" local up --dir "$dir" --nodes 2

step "pointing the q-tools at it"
show "$bin/corral" local env --dir "$dir"
eval "$("$bin/corral" local env --dir "$dir")"
export PATH="$bin:$PATH"
show corral local status --dir "$dir"
show qhost

work="$dir/work"
mkdir -p "$work"
cd "$work"

# The state of job $1 ("queued", "running", "completed", ...), from qstat's JSON.
job_state() {
  qstat -j "$1" --json | grep -oE '"state": *"[a-z]+"' | head -n 1 | grep -oE '[a-z]+"$' |
    tr -d '"'
}
# Waits (at most $2 seconds) until job $1 has ended; prints its final state.
wait_job() {
  local id=$1 deadline=$((SECONDS + $2)) state
  while :; do
    state=$(job_state "$id")
    case $state in
      completed | failed | cancelled) echo "$state"; return 0 ;;
    esac
    if ((SECONDS >= deadline)); then
      echo "still ${state:-unknown} after $2 s"
      return 1
    fi
    sleep 0.2
  done
}

step "submitting examples/hello.sh three times (from $work)"
ids=()
for _ in 1 2 3; do
  printf '$ qsub -terse %s\n' "$repo/examples/hello.sh"
  id=$(qsub -terse "$repo/examples/hello.sh")
  echo "$id"
  ids+=("$id")
done
# Any other example scripts, once each.
for script in "$repo"/examples/*.sh; do
  [[ $(basename "$script") == hello.sh ]] && continue
  printf '$ qsub -terse -cwd -j y %s\n' "$script"
  id=$(qsub -terse -cwd -j y "$script")
  echo "$id"
  ids+=("$id")
done
show qstat

step "qsub -sync y: submit and wait for the job in one command"
show qsub -sync y -N hello_sync "$repo/examples/hello.sh"

step "waiting for the submitted jobs (at most 30 s each)"
failed=0
for id in "${ids[@]}"; do
  if state=$(wait_job "$id" 30); then
    echo "job $id: $state"
  else
    echo "job $id: $state; deleting it"
    qdel "$id" || true
    failed=1
  fi
done

step "their output files"
for f in *.o*; do
  [[ -e $f ]] || continue
  echo "--- $f"
  cat "$f"
done

step "the accounting record of job ${ids[0]} (qacct -j takes a list: qacct -j 1,2,3)"
show qacct -j "${ids[0]}"

step "qdel: a long job is killed while it runs"
printf '$ echo "sleep 300" | qsub -terse -N long -cwd -j y\n'
long=$(echo "sleep 300" | qsub -terse -N long -cwd -j y)
echo "$long"
deadline=$((SECONDS + 15))
until [[ $(job_state "$long") == running ]]; do
  if ((SECONDS >= deadline)); then
    echo "demo: job $long did not start within 15 s" >&2
    exit 1
  fi
  sleep 0.2
done
show qstat
show qdel "$long"
echo "job $long: $(wait_job "$long" 15)"
show qacct -j "$long"

step "finished jobs"
show qstat -s z

if ((failed)); then
  echo "demo: some jobs did not finish in time" >&2
  exit 1
fi
step "done"
