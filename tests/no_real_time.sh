#!/usr/bin/env bash
# CTest no_real_time: no C++ source outside common/clock.cc reads the real clock or
# sleeps (time is passed in; waits are poll/zmq_poll timeouts). Usage: no_real_time.sh ROOT
# Exit 1 listing file:line of each violation; 0 with a one-line summary otherwise.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"

# (^|...) also catches a call at the start of a line.
pattern='system_clock::now|steady_clock::now|sleep_for|sleep_until|usleep\(|(^|[^_a-z])sleep\(|(^|[^_a-z.])time\(nullptr|(^|[^_a-z.])time\(NULL|gettimeofday|clock_gettime'
dirs=()
for d in common scheduler execd qtools policies sim; do
  [[ -d $d ]] && dirs+=("$d")
done
if ((${#dirs[@]} == 0)); then
  echo "no_real_time: no source directories under $(pwd)" >&2
  exit 1
fi

files=()
while IFS= read -r -d '' f; do
  [[ $f == common/clock.cc ]] || files+=("$f")
done < <(find "${dirs[@]}" -type f \( -name '*.cc' -o -name '*.h' \) -print0 | sort -z)

violations=""
if ((${#files[@]} > 0)); then
  rc=0
  violations=$(grep -HnE -- "$pattern" "${files[@]}") || rc=$?
  if ((rc > 1)); then
    echo "no_real_time: grep failed (status $rc)" >&2
    exit 1
  fi
fi
if [[ -n $violations ]]; then
  echo "no_real_time: real clock reads or sleeps outside common/clock.cc" \
       "(use a Clock&/now, MonotonicNowMs(), and poll/zmq_poll timeouts):" >&2
  echo "$violations" >&2
  exit 1
fi
echo "no_real_time: ok (${#files[@]} files checked)"
