#!/usr/bin/env bash
# Time from a node's death (kill -9 of its execd and its jobs) to its jobs running on
# another node, with a given node timeout and heartbeat (defaults: the shipped 30 s / 5 s).
# Prints "failover_ms_timeout_<T>s <ms> ms" and writes bench/results/failover.json.
# Usage: bench/failover.sh [NODE_TIMEOUT_S (30)] [HEARTBEAT_S (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/bin
TIMEOUT=${1:-30}
BEAT=${2:-5}
[ -x "$BIN/qsub" ] || scripts/setup.sh >/dev/null
DIR=$(mktemp -d /tmp/corral-fail-XXXXXX)
trap '"$BIN/corral" local down --dir "$DIR/c" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
"$BIN/corral" local up --dir "$DIR/c" --nodes 2 --cpus 1 --node-timeout "$TIMEOUT" --heartbeat "$BEAT" >/dev/null
eval "$("$BIN/corral" local env --dir "$DIR/c")"
export PATH="$BIN:/usr/bin:/bin"
cd "$DIR"
printf '#!/bin/sh\necho $$ > pid.$JOB_ID.$CORRAL_ATTEMPT\nsleep 120\n' > job.sh
# One job; first fit puts it on node1, and node2 stays free to take it over.
node1_job=$(qsub -terse -cwd job.sh)
for _ in $(seq 100); do [ -s "pid.$node1_job.1" ] && break; sleep 0.1; done
kill -9 "$(cat "$DIR/c/run/execd-node1.pid")"
kill -9 -- "-$(cat "pid.$node1_job.1")"
killed=$(date +%s.%N)
for _ in $(seq $((TIMEOUT * 20 + 400))); do [ -s "pid.$node1_job.2" ] && break; sleep 0.05; done
[ -s "pid.$node1_job.2" ] || { echo "failover: job $node1_job never restarted" >&2; exit 1; }
started=$(qstat -j "$node1_job" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["attempts"][1]["start_time"])')
ms=$(/usr/bin/python3 -c "print(round(($started - $killed) * 1000))")
echo "failover_ms_timeout_${TIMEOUT}s $ms ms"
qdel "$node1_job" >/dev/null || true
mkdir -p "$OLDPWD/bench/results"
echo "{\"node_timeout_s\": $TIMEOUT, \"heartbeat_s\": $BEAT, \"failover_ms\": $ms}" > "$OLDPWD/bench/results/failover.json"
