#!/usr/bin/env bash
# Builds kbrun and runs every test (unit and CPU integration) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
"$(dirname "$0")/build.sh"
build=${BUILD_DIR:-build}
cd "$build"
ctest --output-on-failure --timeout 900 -j"$(nproc)"
