#!/usr/bin/env bash
# The sanitizer and fuzzing pass. Builds Corral with clang under AddressSanitizer and UBSan
# into build-asan/ (CORRAL_SANITIZE and CORRAL_FUZZ), runs the whole ctest suite there (the
# e2e tests start build-asan/bin's sanitized daemons), then runs each libFuzzer harness of
# fuzz/ for FUZZ_SECONDS (default 30) from its seed corpus in fuzz/corpus/NAME/. Fails on a
# failed test, on any sanitizer report of any process (daemons, shepherds and q-tools
# included: reports go to build-asan/sanitizer-logs/) and on any fuzzer finding (the input
# is kept in build-asan/fuzz-out/NAME/). Extra arguments go to ctest (e.g. -R unit).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
build=build-asan
start=$(date +%s)

scripts/setup.sh --deps-only clang libclang-rt-14-dev

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCORRAL_SANITIZE=ON -DCORRAL_FUZZ=ON
cmake --build "$build" -j"$(nproc)"
echo "sanitize: built in $(($(date +%s) - start)) s"

# Every sanitized process the tests start writes its reports to a file of its own, so
# that a report from a daemon (whose log dies with the test's temp dir) is not lost.
logs=$PWD/$build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
common="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1"
export ASAN_OPTIONS="$ASAN_OPTIONS:detect_stack_use_after_return=0:log_path=$logs/asan"
export UBSAN_OPTIONS="$common:log_path=$logs/ubsan"

status=0
ctest --test-dir "$build" --output-on-failure -j2 "$@" || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "sanitize: sanitizer reports:" >&2
  for f in "$logs"/*; do
    echo "---- $f" >&2
    cat "$f" >&2
  done
  status=1
fi
echo "sanitize: tests done at $(($(date +%s) - start)) s (status $status)"

# The fuzzers print their reports themselves; new inputs they find go to fuzz-out, never
# into the committed seed corpus. A slow input (-timeout) counts as a finding.
export ASAN_OPTIONS="$common:detect_leaks=1"
export UBSAN_OPTIONS="$common"
for fuzzer in "$build"/bin/fuzz_*; do
  name=${fuzzer##*/fuzz_}
  out=$build/fuzz-out/$name
  mkdir -p "$out/corpus"
  args=(-max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$out/")
  if [[ -f fuzz/$name.dict ]]; then args+=(-dict="fuzz/$name.dict"); fi
  if "$fuzzer" "${args[@]}" "$out/corpus" "fuzz/corpus/$name" >"$out/log" 2>&1; then
    echo "sanitize: fuzz_$name: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' \
      "$out/log" | grep -o '[0-9]*$') runs in ${FUZZ_SECONDS} s, no findings"
  else
    echo "sanitize: fuzz_$name FAILED; its input is in $out/ (log: $out/log):" >&2
    grep -v -E '^#[0-9]+' "$out/log" | tail -60 >&2
    status=1
  fi
done

echo "sanitize: done in $(($(date +%s) - start)) s, status $status"
exit "$status"
