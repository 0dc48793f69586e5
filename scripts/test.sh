#!/usr/bin/env bash
# Builds Corral (scripts/setup.sh) and runs every test with ctest: unit tests, the
# end-to-end tests with real daemons, and the no_real_time source check. Extra arguments
# go to ctest (e.g. scripts/test.sh -R e2e_ -V). Exits with ctest's status.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
status=0
ctest --test-dir build --output-on-failure -j2 "$@" || status=$?
exit "$status"
