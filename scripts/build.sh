#!/usr/bin/env bash
# Configures and builds shhim out of tree in build/.
#   SHHIM_BUILD_JOBS=N   parallel jobs (default: nproc)
#   SHHIM_BUILD_TYPE=T   CMake build type (default: RelWithDebInfo)
#   extra arguments are passed to `cmake --build` (e.g. --target shhimd)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${SHHIM_BUILD_JOBS:-$(nproc)}"
build_type="${SHHIM_BUILD_TYPE:-RelWithDebInfo}"

cmake -S "$repo_root" -B "$repo_root/build" -DCMAKE_BUILD_TYPE="$build_type"
cmake --build "$repo_root/build" -j"$jobs" "$@"
