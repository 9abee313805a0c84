#!/usr/bin/env bash
# On the GPU machine: a kbrun batch over KernelBench level1 element-wise problems with the
# replay provider (tests/device/replay/level1), then the report; exits 1 when
# the batch or the report failed. Results and timeline under $OUT.
# Pack first: tools/pack_device.sh 19_ReLU.py 20_LeakyReLU.py 21_Sigmoid.py 22_Tanh.py 25_Swish.py 32_HardTanh.py
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
need_level1 19_ReLU.py 20_LeakyReLU.py 21_Sigmoid.py 22_Tanh.py 25_Swish.py 32_HardTanh.py
R=$(workdir batch-results)
t0=$(date +%s)
# Target 0.9: torch's element-wise kernels already run near DRAM bandwidth on the H100,
# so an honest hand-written kernel lands near 1.0x; the batch must not spin on that.
$KB batch 1 40 --problems-dir "$L1" --results "$R" --replay-dir tests/device/replay/level1 \
  --samples ${SAMPLES:-2} --attempts 2 --target-speedup 0.9 --device cuda \
  --correct-trials ${CORRECT_TRIALS:-5} --perf-trials ${PERF_TRIALS:-100} > "$FINAL/batch_stderr.txt" 2>&1
rc=$?
echo "batch exit=$rc wall=$(( $(date +%s) - t0 )) s" | tee -a "$FINAL/batch_stderr.txt"
$KB report "$R" > /dev/null 2>&1
cat "$R/detailed_report.txt"
cp "$R/detailed_report.txt" "$FINAL/batch_report.txt"
tar czf "$FINAL/batch_results.tgz" -C "$R" .
[ "$rc" = 0 ] && [ -s "$FINAL/batch_report.txt" ]  # fails when the batch or its report failed
