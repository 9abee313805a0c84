#!/usr/bin/env bash
# GPU-lane time per candidate (result.json stages.run_phase_s, where the build records it, and
# stages.run_worker_total_s), an earlier build against the
# current one, side by side on the same honest candidates (tests/gpu/relu_correct.py and
# tests/gpu/honest on full-size KernelBench level1), in one device call. Builds first, both at
# once; then each candidate old, new, old, new... so that drift hits both. Also runs the GPU check of
# the library share's two methods (tests/worker/gpu_library_share_check.py).
# Pack first: tools/pack_device.sh 19_ReLU.py 23_Softmax.py 47_Sum_reduction_over_a_dimension.py \
#   1_Square_matrix_multiplication_.py 40_LayerNorm.py 42_Max_Pooling_2D.py
# and the earlier build with PACK_DIR=.devpkg/old (where only the worker package differs, the same
# pack with another commit's src/eval/worker/kbrun_eval/*.py in .devpkg/old/kbrun_eval/).
# Prints one row per run to $OUT/lane_time.txt; the result files go to $OUT/lane_time.tgz.
# Knobs: PER_EVAL_TIMEOUT (120 s); TAGS ("old new": which builds run, e.g. TAGS=new alone).
set -uo pipefail
cd "$(dirname "$0")/.."
O=${OUT:-/tmp/out}; D=/tmp/kbrun-lane-time; rm -rf "$D"; mkdir -p "$D" "$O"
L1=.devpkg/level1
cands="tests/gpu/relu_correct.py:19_ReLU.py"
for f in tests/gpu/honest/*.py; do cands="$cands $f:$(basename "$f")"; done
kbrun_of() { if [ "$1" = old ]; then echo .devpkg/old/kbrun; else echo .devpkg/kbrun; fi; }
python3 tests/worker/gpu_library_share_check.py > "$O/libshare_check.txt" 2>&1 &
tags=${TAGS:-old new}
for tag in $tags; do
  for c in $cands; do
    KBRUN_COMPILE_CACHE=/tmp/cache-$tag "$(kbrun_of $tag)" eval --code "${c%%:*}" --problem "$L1/${c##*:}" \
      --device cuda --perf-trials 1 > /dev/null 2>&1 &
  done
done
wait  # the builds and the library-share check: nothing else on the GPU while timing
for c in $cands; do
  for tag in $tags; do
    n=${tag}_$(basename "${c##*:}" .py)
    KBRUN_COMPILE_CACHE=/tmp/cache-$tag timeout "${PER_EVAL_TIMEOUT:-120}" "$(kbrun_of $tag)" eval --code "${c%%:*}" \
      --problem "$L1/${c##*:}" --device cuda --output "$D/$n.json" > "$D/$n.log" 2>&1
    python3 - "$D/$n.json" "$n" >> "$O/lane_time.txt" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["stages"]; f = r.get("fallback") or {}
after = s.get("run_worker_after_result_s")
phase = s.get("run_phase_s")
print("%-40s %-22s speedup %-8s lane(run phase) %s s  run worker %6.2f s  cuda init %4.2f correctness %5.2f"
      " timing %6.2f after result %s  share %-12s %s" % (
    sys.argv[2], r["status"], "%.3f" % r["speedup"] if r.get("speedup") else "-",
    "%6.2f" % phase if phase is not None else "     -", s["run_worker_total_s"],
    s.get("run_cuda_init_s", 0.0), s["correctness_s"], s["timing_s"], "%.2f" % after if after is not None else "-",
    f.get("method"), f.get("call_events_not_used", "")))
PY
  done
done
tar czf "$O/lane_time.tgz" -C "$D" .
