# shellcheck shell=bash
# The shared prelude of the device checks (tests/device/*.sh), sourced as their first line:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It finds the repository root from its own path and moves there (so fixtures such as
# tests/gpu/... resolve from any working directory), and sets:
#   ROOT   the repository root
#   PACK   the device pack, tools/pack_device.sh's output (KBRUN_PACK, default $ROOT/.devpkg)
#   KB     the kbrun to check (KB, default $PACK/kbrun); OLD: an earlier build to compare
#          (OLD, default $PACK/old/kbrun, pack it with PACK_DIR=.devpkg/old)
#   L1     the KernelBench level1 problems (KBRUN_LEVEL1, default $PACK/level1)
#   FINAL  where a check leaves what it returns (OUT, default /tmp/out), created
# and the helpers below. A check exits 77 (skipped) where no GPU answers or kbrun is missing.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Paths given relative to where the check was started, made absolute before moving to ROOT.
_from() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
PACK=$(_from "${KBRUN_PACK:-$ROOT/.devpkg}")
KB=$(_from "${KB:-$PACK/kbrun}")
OLD=$(_from "${OLD:-$PACK/old/kbrun}")
L1=$(_from "${KBRUN_LEVEL1:-$PACK/level1}")
FINAL=$(_from "${OUT:-/tmp/out}")
cd "$ROOT" || exit 2
mkdir -p "$FINAL"
CHECK=$(basename "$0" .sh)

# A GPU and a kbrun, or exit 77 (the runner and ctest report the check as skipped).
if ! nvidia-smi -L > /dev/null 2>&1; then
  echo "$CHECK: no GPU answers nvidia-smi: skipped" >&2; exit 77
fi
if [ ! -x "$KB" ]; then
  echo "$CHECK: no kbrun at $KB (tools/pack_device.sh, or KB=path/to/kbrun): skipped" >&2; exit 77
fi

# workdir NAME: a fresh /tmp/kbrun-NAME (KBRUN_DEVICE_TMP instead of /tmp), printed.
workdir() {
  local d=${KBRUN_DEVICE_TMP:-/tmp}/kbrun-$1
  rm -rf "$d" && mkdir -p "$d" && echo "$d"
}

# need_level1 FILE...: each level1 problem is in $L1, or exit 2 saying how to pack them.
need_level1() {
  local f missing=()
  for f in "$@"; do [ -f "$L1/$f" ] || missing+=("$f"); done
  [ ${#missing[@]} = 0 ] && return 0
  echo "$CHECK: missing in $L1: ${missing[*]}; pack first: tools/pack_device.sh $*" >&2
  exit 2
}

# gpu_info [FILE]: the GPU, driver and clocks, torch and its CUDA (also into FILE).
gpu_info() {
  {
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
  } 2>&1 | tee ${1:+"$1"}
}

# seconds_since T0: seconds since T0 (from `date +%s.%N`), one decimal.
seconds_since() {
  python3 -c "import sys; print(round($(date +%s.%N) - float(sys.argv[1]), 1))" "$1"
}
