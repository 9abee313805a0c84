#!/usr/bin/env bash
# On the GPU machine: GPU-lane time per evaluation of two or more kbrun builds on the same corpus
# candidates, in one device call. A warm-up batch (the first build) fills one compile cache that every
# run shares, so no run competes with cold builds for the CPU; then the builds run in turn, ROUNDS
# times (default 2: a, b, a, b), each a fresh bench/corpus_bench.sh batch in results/lane-ab/<name><round>.
# Prints each run's "GPU lanes in this run" line and statuses, then bench/lane_stages.py's per-stage
# medians; $OUT gets lane_ab.txt and lane_ab_results.tgz (every run's results, for a closer look).
# Usage: bench/lane_ab.sh NAME=KBRUN NAME=KBRUN...   e.g. old=.devpkg/old/kbrun new=.devpkg/kbrun
#   (pack with tools/pack_device.sh and PACK_DIR=.devpkg/old BUILD_DIR=... tools/pack_device.sh,
#   the corpus with CORPUS=../shared/corpus/cuda-l1-h100 tools/pack_device.sh; carry .devpkg, .corpus)
# Knobs (env): LEVEL (2), FIRST, LAST, COUNT (30), ROUNDS (2), WARM_BUDGET_S (130), RUN_BUDGET_S (95).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 NAME=KBRUN NAME=KBRUN..." >&2; exit 64; }
FINAL=${OUT:-/tmp/out}
ROOT=results/lane-ab
rm -rf "$ROOT" && mkdir -p "$ROOT/cache" "$FINAL"
runs=()
one() {  # name kbrun budget
  local name=$1 kb=$2 budget=$3 root=$ROOT/$1
  mkdir -p "$root" && ln -sfn "$PWD/$ROOT/cache" "$root/cache"
  echo "== $name ($kb, $(date +%T))"
  OUT=$root/out KB=$kb RESULTS_ROOT=$root LEVEL=${LEVEL:-2} COUNT=${COUNT:-30} ALLOW_LIBRARY=1 \
    BENCH_BUDGET_S=$budget bench/corpus_bench.sh > "$root/bench.txt" 2>&1
  grep -E "^(statuses|failures|internal)" "$root/bench.txt"
  grep -h "GPU lanes in this run" "$root/batch_level${LEVEL:-2}.log" | tail -1
}
{
first=${1#*=}
one warm "$(realpath "$first")" "${WARM_BUDGET_S:-130}"
for round in $(seq 1 "${ROUNDS:-2}"); do
  for pair in "$@"; do
    name=${pair%%=*}$round
    one "$name" "$(realpath "${pair#*=}")" "${RUN_BUDGET_S:-95}"
    runs+=("$ROOT/$name/level${LEVEL:-2}")
  done
done
echo "== stage medians (bench/lane_stages.py)"
python3 bench/lane_stages.py "${runs[@]}"
} 2>&1 | tee "$FINAL/lane_ab.txt"
tar czf "$FINAL/lane_ab_results.tgz" --exclude=cache --exclude='*/cache' -C "$ROOT" .
