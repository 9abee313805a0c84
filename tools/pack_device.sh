#!/usr/bin/env bash
# Packs what a GPU-machine run needs into .devpkg/ (ignored by git, carried by the
# device tool beside the working tree): the kbrun binary and worker (and noahead/kbrun, the same
# with --run-ahead off on its batches), the shared libraries it
# links that a bare CUDA image may lack, and the KernelBench level1 problems named on the
# command line. The device checks (tests/device/run.sh) and the benchmarks (bench/) read it there.
# Usage: tools/pack_device.sh [level1 problem files...]
#   BUILD_DIR: the build to pack (default build); PACK_DIR: another folder than .devpkg (e.g.
#   .devpkg/old for an earlier build); KERNELBENCH_LEVEL1: where the problems are (default
#   ../shared/kernelbench/level1).
# CORPUS=<dir>: also copies that corpus (e.g. ../shared/corpus/cuda-l1-h100, which must not enter the
# repository) into the ignored folder .corpus/ for bench/corpus_bench.sh; carry both .devpkg and .corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
pack=${PACK_DIR:-.devpkg}
rm -rf "$pack" && mkdir -p "$pack/lib" "$pack/level1"
cp "$build"/kbrun_*.py "$pack/"
if [ -d "$build/kbrun_eval" ]; then  # the package the scripts import (builds before it had none)
  mkdir -p "$pack/kbrun_eval" && cp "$build"/kbrun_eval/*.py "$pack/kbrun_eval/"
fi
strip -o "$pack/kbrun.bin" "$build/kbrun"
# The wrapper gives only kbrun the carried libraries (through the loader, not
# LD_LIBRARY_PATH), so the Python worker keeps the machine's own libz, libssl, libffi.
cat > "$pack/kbrun" <<'SH'
#!/bin/sh
d=$(cd "$(dirname "$0")" && pwd)
export KBRUN_WORKER="$d/kbrun_worker.py"
exec /lib64/ld-linux-x86-64.so.2 --library-path "$d/lib" "$d/kbrun.bin" "$@"
SH
chmod +x "$pack/kbrun"
# The same kbrun with --run-ahead off on its batches, the other side of bench/lane_ab.sh's A/B of
# run ahead: bench/lane_ab.sh ahead=.devpkg/kbrun noahead=.devpkg/noahead/kbrun
mkdir -p "$pack/noahead"
cat > "$pack/noahead/kbrun" <<'SH'
#!/bin/sh
d=$(cd "$(dirname "$0")/.." && pwd)
if [ "$1" = batch ]; then shift; exec "$d/kbrun" batch --run-ahead off "$@"; fi
exec "$d/kbrun" "$@"
SH
chmod +x "$pack/noahead/kbrun"
# Every non-glibc library the binary needs travels beside it (LD_LIBRARY_PATH=.devpkg/lib).
ldd "$build/kbrun" | awk '/=> \//{print $3}' | grep -Ev '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$pack/lib/"; done
level1=${KERNELBENCH_LEVEL1:-../shared/kernelbench/level1}
for p in "$@"; do cp "$level1/$p" "$pack/level1/"; done
# info/exclude of the repository (a worktree reads the main one's, not its own git dir's).
exclude=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$exclude")"
grep -qx "/.devpkg/" "$exclude" 2>/dev/null || echo "/.devpkg/" >> "$exclude"
if [ -n "${CORPUS:-}" ]; then
  grep -qx "/.corpus/" "$exclude" 2>/dev/null || echo "/.corpus/" >> "$exclude"
  rm -rf .corpus && mkdir -p .corpus && cp -r "$CORPUS" .corpus/
  du -sh .corpus
fi
du -sh "$pack"
