#!/usr/bin/env bash
# Builds kbrun and runs every test (unit, CPU integration, lint) with ctest. First the unit
# tests in an ASan+UBSan build (build-sanitize/, SANITIZE_BUILD_DIR overrides; KBRUN_NO_SANITIZE=1
# skips it), then the whole suite in build/ (BUILD_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${KBRUN_NO_SANITIZE:-0}" != 1 ]; then
  san=${SANITIZE_BUILD_DIR:-build-sanitize}
  cmake -S . -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKBRUN_SANITIZE=ON >/dev/null
  cmake --build "$san" -j"$(nproc)" --target kbrun_unit_tests
  (cd "$san" && ctest -L unit --output-on-failure --timeout 900 -j"$(nproc)")
fi
scripts/build.sh
build=${BUILD_DIR:-build}
cd "$build"
ctest --output-on-failure --timeout 900 -j"$(nproc)"
