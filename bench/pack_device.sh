#!/usr/bin/env bash
# Packs what a GPU-machine run needs into .devpkg/ (ignored by git, carried by the
# device tool): the kbrun binary and worker, the shared libraries it links that a
# bare CUDA image may lack, and the KernelBench level1 problems named on the command line.
# Usage: bench/pack_device.sh [level1 problem files...]   (PACK_DIR: another folder than .devpkg)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
pack=${PACK_DIR:-.devpkg}
rm -rf "$pack" && mkdir -p "$pack/lib" "$pack/level1"
cp "$build"/kbrun_*.py "$pack/"
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
# Every non-glibc library the binary needs travels beside it (LD_LIBRARY_PATH=.devpkg/lib).
ldd "$build/kbrun" | awk '/=> \//{print $3}' | grep -Ev '/(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$pack/lib/"; done
level1=${KERNELBENCH_LEVEL1:-../shared/kernelbench/level1}
for p in "$@"; do cp "$level1/$p" "$pack/level1/"; done
mkdir -p "$(git rev-parse --git-dir)/info"; grep -qx "/.devpkg/" "$(git rev-parse --git-dir)/info/exclude" 2>/dev/null || echo "/.devpkg/" >> "$(git rev-parse --git-dir)/info/exclude"
du -sh "$pack"
