#!/usr/bin/env bash
# Installs Corral's build dependencies (Debian packages, only those missing) and builds
# everything into build/ (executables in build/bin/). Safe to run again: it installs
# nothing when all packages are present and cmake rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Compiler, build tools and the five libraries (ZeroMQ + cppzmq, SQLite, nlohmann/json,
# yaml-cpp, doctest), with libsodium (SHA-256) and MUNGE (munged, libmunge: credentials of
# remote clients; the tests start their own munged); then Python 3 with NumPy, SciPy and
# scikit-image (plus tifffile and imageio for TIFF/PNG, matplotlib for the demo's plot)
# for the image-analysis examples (examples/imaging/), which the demo runs and the tests
# check; Snakemake 7, which the tests run against a local cluster as a real workflow
# client. The rest is the base system (bash, coreutils, ...).
packages=(g++ cmake pkg-config libzmq3-dev cppzmq-dev libsqlite3-dev nlohmann-json3-dev
          libyaml-cpp-dev doctest-dev libsodium-dev munge libmunge-dev
          python3 python3-numpy python3-scipy python3-skimage python3-tifffile python3-imageio
          python3-matplotlib snakemake)
# `setup.sh --deps-only [PKG...]` installs these and the extra packages, and builds
# nothing (scripts/sanitize.sh adds clang and its sanitizer runtimes so).
deps_only=false
if [[ ${1:-} == --deps-only ]]; then
  deps_only=true
  shift
  packages+=("$@")
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "setup: missing packages (${missing[*]}) and not root, and no sudo to install them" >&2
      exit 1
    fi
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"
fi

if $deps_only; then exit 0; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
