#!/usr/bin/env bash
# Issue 6 on the GPU machine in one call (TOTAL_BUDGET_S, default 560 s): the compile
# benchmark with the per-candidate overhead, warm worker vs cold starts
# (bench/compile_bench.sh, as many candidates as COMPILE_BUDGET_S allows), then the batch
# makespan against its floor on the pipelined schedule (bench/makespan_bench.sh) with the
# time left. The by-problem comparison does not fit beside them: run
#   SCHEDULES=by-problem bench/makespan_bench.sh
# in a call of its own. Pack first, all problems both benches use:
#   bench/pack_device.sh 19_ReLU.py 20_LeakyReLU.py 21_Sigmoid.py 22_Tanh.py 25_Swish.py 26_GELU_.py \
#     27_SELU_.py 28_HardSigmoid.py 29_Softplus.py 31_ELU.py 23_Softmax.py \
#     47_Sum_reduction_over_a_dimension.py 1_Square_matrix_multiplication_.py 40_LayerNorm.py 42_Max_Pooling_2D.py
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-/tmp/out}; mkdir -p "$FINAL"
TOTAL=${TOTAL_BUDGET_S:-560}
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader || true
echo "== compile bench and overhead (new candidates until ${COMPILE_BUDGET_S:-170} s)"
BENCH_BUDGET_S=${COMPILE_BUDGET_S:-170} bash bench/compile_bench.sh
python3 - <<'PY'
import json
try:
    r = json.load(open("/tmp/kbrun-compile-bench/warmup.json"))
    print("warm-up eval: %s, workers %s/%s, stages %s" % (r["status"], r["stages"].get("compile_worker_start"),
          r["stages"].get("run_worker_start"), json.dumps(r["stages"])))
except Exception as e:
    print("warm-up eval: no result (%s)" % e)
PY
left=$(( TOTAL - $(elapsed) ))
echo "== makespan, pipelined, at $(elapsed) s ($left s left)"
# Only the makespan problems in its level1 folder: the compile bench's would join the batch.
mkdir -p /tmp/level1-makespan
for p in 19_ReLU 20_LeakyReLU 21_Sigmoid 22_Tanh 25_Swish 26_GELU_ 27_SELU_ 28_HardSigmoid 29_Softplus 31_ELU; do
  cp .devpkg/level1/$p.py /tmp/level1-makespan/
done
LEVEL1=/tmp/level1-makespan SCHEDULES=pipelined PCH_FROM=/tmp/kbrun-compile-bench/cache BENCH_BUDGET_S=$left \
  bash bench/makespan_bench.sh
echo "== done at $(elapsed) s"
