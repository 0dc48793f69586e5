#!/usr/bin/env bash
# The sanitizer and fuzzing pass. Builds Corral with clang under AddressSanitizer and UBSan
# into build-asan/ (CORRAL_SANITIZE and CORRAL_FUZZ), runs the whole ctest suite there (the
# e2e tests start build-asan/bin's sanitized daemons), then runs each libFuzzer harness of
# fuzz/ for FUZZ_SECONDS (default 60; FUZZ_JOBS at once, default one per core) from its
# seed corpus in fuzz/corpus/NAME/. Fails on a failed test, on any sanitizer report of any
# process (daemons, shepherds and q-tools included: reports go to build-asan/sanitizer-logs/)
# and on any fuzzer finding (the input is kept in build-asan/fuzz-out/NAME/). Extra
# arguments go to ctest (e.g. -R unit). .ci/run calls it after scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
build=build-asan
start=$(date +%s)

scripts/setup.sh --deps-only clang libclang-rt-14-dev

# -O0 -g (Debug): a third of the compile time of -O2 under the sanitizers, which matters
# more here than run time (the e2e tests mostly wait). libstdc++'s own checks are on too.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS=-D_GLIBCXX_ASSERTIONS -DCORRAL_SANITIZE=ON -DCORRAL_FUZZ=ON \
  -DCORRAL_BENCH=OFF
cmake --build "$build" -j"$(nproc)"
echo "sanitize: built in $(($(date +%s) - start)) s"

# Every sanitized process the tests start writes its reports to a file of its own, so
# that a report from a daemon (whose log dies with the test's temp dir) is not lost.
logs=$PWD/$build/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# Writable by all (sticky, like /tmp): an unprivileged execd and its shepherds run as a
# test user (tests/e2e/owner_test.cc), and ASan kills a process that cannot open its log.
chmod 1777 "$logs"
common="print_stacktrace=1:halt_on_error=1"
export ASAN_OPTIONS="$common:detect_leaks=1:check_initialization_order=1:strict_init_order=1"
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$logs/report"
export UBSAN_OPTIONS="$common:log_path=$logs/report"

# -O0 and the sanitizers make the daemons several times slower than the deadlines the
# e2e tests were written for: stretch them (tests/e2e/harness.h, Slack()).
export CORRAL_TEST_TIME_SCALE=${CORRAL_TEST_TIME_SCALE:-4}
status=0
ctest --test-dir "$build" --output-on-failure -j2 "$@" || status=$?
# Every log is a report, except one that holds nothing but ASan's warning about a stack it
# does not know: the shepherd starts the job child on a stack of its own (clone with
# CLONE_VM|CLONE_VFORK, execd/shepherd.cc), where the child's noreturn execve makes ASan
# say so. That warning is counted, not failed on; anything else in a log fails the pass.
known='^==[0-9]+==WARNING: ASan is ignoring requested __asan_handle_no_return|^False positive error reports may follow|^For details see https://github.com/google/sanitizers/issues/189'
warned=0
for f in "$logs"/*; do
  [[ -e $f ]] || continue
  if grep -q -v -E "$known" "$f"; then
    echo "sanitize: sanitizer report $f:" >&2
    cat "$f" >&2
    status=1
  else
    warned=$((warned + 1))
  fi
done
if ((warned > 0)); then
  echo "sanitize: $warned process(es) logged only ASan's unknown-stack warning (the job child's own stack)"
fi
echo "sanitize: tests done at $(($(date +%s) - start)) s (status $status)"

# The fuzzers print their reports themselves; new inputs they find go to fuzz-out, never
# into the committed seed corpus. A slow input (-timeout) counts as a finding. FUZZ_JOBS
# harnesses run at once (default: one per core), each for FUZZ_SECONDS.
export ASAN_OPTIONS="$common:detect_leaks=1"
export UBSAN_OPTIONS="$common"
fuzz_one() {  # NAME: runs build-asan/bin/fuzz_NAME, prints one line; fails on a finding
  local name=$1 out=$build/fuzz-out/$1
  mkdir -p "$out/corpus"
  local args=(-max_total_time="$FUZZ_SECONDS" -timeout=20 -rss_limit_mb=2048
              -print_final_stats=1 -artifact_prefix="$out/")
  if [[ -f fuzz/$name.dict ]]; then args+=(-dict="fuzz/$name.dict"); fi
  # libFuzzer's entropic schedule updates a weight per feature on every run. The protocol
  # and qsub harnesses reach tens of thousands of features per input, and that update was
  # 70% of the protocol harness's time (perf); without it both run 2-4x more inputs and
  # reach more coverage in the same time. The small harnesses keep it.
  case $name in protocol | qsub) args+=(-entropic=0) ;; esac
  if "$build/bin/fuzz_$name" "${args[@]}" "$out/corpus" "fuzz/corpus/$name" >"$out/log" 2>&1; then
    echo "sanitize: fuzz_$name: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' \
      "$out/log" | grep -o '[0-9]*$') runs in ${FUZZ_SECONDS} s, no findings"
  else
    echo "sanitize: fuzz_$name FAILED; its input is in $out/ (log: $out/log):" >&2
    grep -v -E '^#[0-9]+' "$out/log" | tail -60 >&2
    return 1
  fi
}
export -f fuzz_one
export build FUZZ_SECONDS
names=()
for fuzzer in "$build"/bin/fuzz_*; do names+=("${fuzzer##*/fuzz_}"); done
if ((${#names[@]} == 0)); then
  echo "sanitize: no fuzzers were built in $build/bin" >&2
  status=1
elif ! printf '%s\n' "${names[@]}" | xargs -P "${FUZZ_JOBS:-$(nproc)}" -I{} bash -c 'fuzz_one {}'; then
  status=1
fi

echo "sanitize: done in $(($(date +%s) - start)) s, status $status"
exit "$status"
