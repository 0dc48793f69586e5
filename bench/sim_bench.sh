#!/usr/bin/env bash
# Simulator figures: corral-sim's time on the real KTH SP2 trace (28k jobs) and on a
# synthetic trace of N jobs (default 1,000,000; bench/sim_synth.cc), and its accuracy
# against the published results (../shared/traces/README.md beside the repository). Each time is the best of
# three runs (wall and user CPU seconds, /usr/bin/time), trace parsing included.
# Prints one "name value unit" line per figure.
# Usage: bench/sim_bench.sh [BIN_DIR (default build/bin)] [N_SYNTH (default 1000000)]
#        TRACES=/path/to/traces bench/sim_bench.sh   (default ../shared/traces beside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-$PWD/build/bin}
N=${2:-1000000}
TRACES=${TRACES:-$(cd "$(dirname "$0")/../.." && pwd)/shared/traces}
KTH=$TRACES/KTH-SP2-1996-2.1-cln.swf
LUBLIN=$TRACES/lublin_256.swf
for f in "$BIN/corral-sim" "$BIN/corral-sim-synth" "$KTH" "$LUBLIN"; do
  [ -e "$f" ] || { echo "sim_bench: missing $f" >&2; exit 1; }
done
TMP=$(mktemp -d /tmp/corral-sim-bench-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# best NAME CMD...: runs CMD three times; prints "NAME_wall_s X s" and "NAME_user_s Y s"
# for the run with the least wall time. CMD's stdout is kept in $TMP/NAME.out.
best() {
  local name=$1 w u bw="" bu=""
  shift
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %U" -o "$TMP/time" "$@" > "$TMP/$name.out"
    read -r w u < "$TMP/time"
    if [ -z "$bw" ] || awk -v a="$w" -v b="$bw" 'BEGIN { exit !(a < b) }'; then bw=$w; bu=$u; fi
  done
  echo "${name}_wall_s $bw s"
  echo "${name}_user_s $bu s"
}
field() { /usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

SIM=$BIN/corral-sim
echo "# speed (trace parsing included)"
best kth_easy "$SIM" --trace "$KTH" --planner easy --json
best kth_fcfs "$SIM" --trace "$KTH" --planner fcfs --json
best kth_conservative "$SIM" --trace "$KTH" --planner conservative --json
best lublin_fcfs_10_windows "$SIM" --trace "$LUBLIN" --planner fcfs --json \
  --windows 1981,2756,4299,8850,3316,2714,5228,7762,4022,7085 --window-size 1024

"$BIN/corral-sim-synth" --jobs "$N" --procs 128 --max-size 64 > "$TMP/synth.swf"
"$BIN/corral-sim-synth" --jobs "$N" --procs 128 --max-size 16 > "$TMP/synth16.swf"
best synth_${N}_easy_1x128 "$SIM" --trace "$TMP/synth.swf" --planner easy --json --users 0
best synth_${N}_fcfs_1x128 "$SIM" --trace "$TMP/synth.swf" --planner fcfs --json --users 0
best synth_${N}_easy_8x16 "$SIM" --trace "$TMP/synth16.swf" --nodes 8 --cores-per-node 16 \
  --planner easy --json --users 0
echo "synth_${N}_easy_1x128_passes $(field "$TMP/synth_${N}_easy_1x128.out" "d['engine']['passes']") passes"

echo "# accuracy (published figures: $TRACES/README.md)"
"$SIM" --trace "$KTH" --planner easy --warmup 1 --json > "$TMP/kth.json"
echo "kth_easy_mean_wait $(field "$TMP/kth.json" "round(d['metrics']['mean_wait_s'] / 60, 1)") min (published 114.2)"
echo "kth_easy_mean_bsld $(field "$TMP/kth.json" "round(d['metrics']['mean_bsld'], 1)") (published 89.9)"
echo "lublin_fcfs_10_windows_mean_bsld $(field "$TMP/lublin_fcfs_10_windows.out" "round(d['mean_over_windows']['mean_bsld'], 2)") (published 7273.77)"
