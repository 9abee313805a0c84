#!/usr/bin/env bash
# On the GPU machine: the compile benchmark with the per-candidate overhead, warm
# worker vs cold starts (bench/compile_bench.sh), and the batch makespan against its floor,
# pipelined and problem after problem (bench/makespan_bench.sh). All of it takes about
# 1,100 s, and one device command may run 600 s, so PART picks what one call runs:
#   PART=compile    the compile bench, all 5 candidates (~530 s)
#   PART=makespan   both schedules (~560 s; by-problem is cut at the budget and projected),
#                   reusing the compile bench's precompiled header if this machine has it
#   PART=both       (default) a short compile bench (COMPILE_BUDGET_S, 170 s: 2 candidates),
#                   then the pipelined makespan only, in TOTAL_BUDGET_S (560 s)
# The figures in docs/PERFORMANCE.md (H100, 2026-11-25) are PART=compile, then
# PART=makespan on the same warm machine. Pack first, all problems both benches use:
#   tools/pack_device.sh 19_ReLU.py 20_LeakyReLU.py 21_Sigmoid.py 22_Tanh.py 25_Swish.py 26_GELU_.py \
#     27_SELU_.py 28_HardSigmoid.py 29_Softplus.py 31_ELU.py 23_Softmax.py \
#     47_Sum_reduction_over_a_dimension.py 1_Square_matrix_multiplication_.py 40_LayerNorm.py 42_Max_Pooling_2D.py
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-/tmp/out}; mkdir -p "$FINAL"
PART=${PART:-both}
TOTAL=${TOTAL_BUDGET_S:-560}
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader || true
if [ "$PART" != makespan ]; then
  budget=${COMPILE_BUDGET_S:-170}; [ "$PART" = compile ] && budget=${COMPILE_BUDGET_S:-470}
  echo "== compile bench and overhead (new candidates until $budget s)"
  BENCH_BUDGET_S=$budget bash bench/compile_bench.sh
  [ "$PART" = compile ] && exit 0
fi
left=$(( TOTAL - $(elapsed) ))
schedules="pipelined by-problem"; [ "$PART" = both ] && schedules=pipelined
echo "== makespan ($schedules) at $(elapsed) s ($left s left)"
# Only the makespan problems in its level1 folder: the compile bench's would join the batch.
mkdir -p /tmp/level1-makespan
for p in 19_ReLU 20_LeakyReLU 21_Sigmoid 22_Tanh 25_Swish 26_GELU_ 27_SELU_ 28_HardSigmoid 29_Softplus 31_ELU; do
  cp .devpkg/level1/$p.py /tmp/level1-makespan/
done
LEVEL1=/tmp/level1-makespan SCHEDULES=$schedules PCH_FROM=/tmp/kbrun-compile-bench/cache BENCH_BUDGET_S=$left \
  bash bench/makespan_bench.sh
echo "== done at $(elapsed) s"
