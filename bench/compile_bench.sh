#!/usr/bin/env bash
# On the GPU machine: compile seconds per candidate, plain load_inline vs kbrun's
# fast build (cold cache, then warm), on the same sources, plus per-candidate overhead.
# Pack first: tools/pack_device.sh 23_Softmax.py 47_Sum_reduction_over_a_dimension.py \
#   1_Square_matrix_multiplication_.py 40_LayerNorm.py 42_Max_Pooling_2D.py
# (Replay answers, *.txt, can join the list: their python block is evaluated.)
# Each candidate's plain and cold builds run side by side (each build is two compiler
# processes; 16 cores), the warm one after them, then the warm one again with every worker
# a fresh interpreter (--warm-worker off): the per-candidate overhead side by side. The
# evaluations use WARM_WORKER (default all: GPU runs are forks too).
# Table: bench/compile_table.py.
set -uo pipefail
KB=$PWD/.devpkg/kbrun
FINAL=${OUT:-/tmp/out}
D=${BENCH_DIR:-/tmp/kbrun-compile-bench}; rm -rf "$D"; mkdir -p "$D/code" "$FINAL"
export KBRUN_COMPILE_CACHE=$D/cache
# PCH_FROM=<a compile cache with the precompiled header built>: reuse it (hard links).
if [ -n "${PCH_FROM:-}" ] && [ -d "$PCH_FROM/pch" ]; then mkdir -p "$D/cache" && cp -al "$PCH_FROM/pch" "$D/cache/pch"; fi
# code file : level1 problem
CANDIDATES="tests/gpu/honest/23_Softmax.py:23_Softmax.py
tests/gpu/honest/47_Sum_reduction_over_a_dimension.py:47_Sum_reduction_over_a_dimension.py
tests/gpu/honest/1_Square_matrix_multiplication_.py:1_Square_matrix_multiplication_.py
tests/gpu/honest/40_LayerNorm.py:40_LayerNorm.py
tests/gpu/honest/42_Max_Pooling_2D.py:42_Max_Pooling_2D.py"
ev() {  # label code problem [flags]
  local label=$1 code=$2 problem=$3; shift 3
  $KB eval --code "$code" --problem ".devpkg/level1/$problem" --device cuda --correct-trials 2 --perf-trials 10 \
    --output "$D/$label.json" --warm-worker "${WARM_WORKER:-all}" ${EXTRA:-} "$@" > "$D/$label.log" 2>&1
}
extract() {  # replay answers are LLM text: take the python block
  python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"```python\n(.*?)```", text, re.S)
open(sys.argv[2], "w").write(m.group(1) if m else text)
PY
}
t0=$(date +%s)
# The precompiled header is built once per toolchain and flag set: a warm-up build pays for it.
# (A split-layout candidate under another extension name: its build is not one of the measured ones.)
sed 's/name="kb_softmax_ext"/name="kb_softmax_warmup_ext"/' tests/gpu/honest/23_Softmax.py > "$D/code/warmup.py"
ev warmup "$D/code/warmup.py" 23_Softmax.py
echo "warm-up (PCH) done at $(( $(date +%s) - t0 )) s"
i=0
for pair in $CANDIDATES; do
  # One device command may run 600 s: stop in time to print the table for what was measured.
  if [ $(( $(date +%s) - t0 )) -gt "${BENCH_BUDGET_S:-420}" ]; then echo "time budget reached: stopping"; break; fi
  i=$((i + 1))
  code=${pair%%:*}; problem=${pair##*:}
  case $code in *.txt) extract "$code" "$D/code/c$i.py"; code=$D/code/c$i.py ;; esac
  ev "c${i}_plain" "$code" "$problem" --compile-mode plain &
  ev "c${i}_cold" "$code" "$problem" --compile-mode fast &
  wait
  ev "c${i}_warm" "$code" "$problem" --compile-mode fast
  # Same cached build, every worker a fresh interpreter: the overhead the warm worker saves.
  WARM_WORKER=off ev "c${i}_coldworker" "$code" "$problem" --compile-mode fast
  echo "candidate $i ($problem) done at $(( $(date +%s) - t0 )) s"
done
python3 bench/compile_table.py "$D" | tee "$FINAL/compile_table.txt"
tar czf "$FINAL/compile_bench.tgz" -C "$D" --exclude cache .
