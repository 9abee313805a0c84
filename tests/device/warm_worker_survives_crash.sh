#!/usr/bin/env bash
# On the GPU machine: one warm worker (one kbrun batch) survives its forks' GPU crashes.
# 19_ReLU through the replay provider: attempt 1's three samples read far out of bounds (an
# illegal memory access in the fork's own CUDA context), attempt 2's three are correct and
# run after them, forked from the same server. Expected: attempt 1 runtime_error, attempt 2
# correct, every run phase warm (exit 1 otherwise), one server start. Pack first: tools/pack_device.sh 19_ReLU.py
# Last run: docs/device-runs/2026-12-03-session18-h200.txt (as expected).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
need_level1 19_ReLU.py
D=$(workdir warm-crash)
mkdir -p "$D/replay/19_ReLU" "$D/level1"
cp "$L1/19_ReLU.py" "$D/level1/"
for s in 1 2 3; do
  src=bench/replay/makespan/19_ReLU/attempt2_sample$s.txt
  cp "$src" "$D/replay/19_ReLU/attempt2_sample$s.txt"
  sed -e 's/float4 v = x\[i\];/float4 v = x[i + (int64_t(1) << 40)];/' -e 's/name="\([a-z0-9_]*\)"/name="\1_oob"/' \
    "$src" > "$D/replay/19_ReLU/attempt1_sample$s.txt"
done
grep -c "1) << 40" "$D"/replay/19_ReLU/attempt1_sample*.txt
t0=$(date +%s)
"$KB" batch 1 999 --problems-dir "$D/level1" --results "$D/results" --replay-dir "$D/replay" --replay-latency 0 \
  --samples 3 --attempts 2 --target-speedup 0 --device cuda --compile-cache "$D/cache" --correct-trials 1 \
  --perf-trials 3 --no-report --warm-worker all > "$D/batch.log" 2>&1
echo "batch exit $? after $(( $(date +%s) - t0 )) s"
python3 - "$D/results/19_ReLU" <<'PY'
import glob, json, os, sys
wrong = []
results = sorted(glob.glob(os.path.join(sys.argv[1], "result_*.json")), key=lambda p: int(p.split("_")[-1][:-5]))
for f in results:
    r = json.load(open(f)); s = r["eval"]["stages"]; e = r.get("error") or {}
    print("%s attempt %s sample %s: %s %s run=%s setup=%.2f gpu_start=%s msg=%s" % (
        os.path.basename(f), r["attempt"], r["sample"], r["status"], e.get("category"), s.get("run_worker_start"),
        s.get("warm_worker_setup_s", 0), r.get("gpu_lane"), (e.get("message") or "")[:90].replace("\n", " ")))
    expected = "runtime_error" if r["attempt"] == 1 else "correct"
    if r["status"] != expected or s.get("run_worker_start") != "warm":
        wrong.append("%s: %s, run %s (expected %s, warm)" % (os.path.basename(f), r["status"], s.get("run_worker_start"),
                                                             expected))
if len(results) != 6:
    wrong.append("%d results (expected 6)" % len(results))
print("\n".join(["NOT AS EXPECTED:"] + wrong) if wrong else "as expected: attempt 1 runtime_error, attempt 2 correct, all warm")
sys.exit(1 if wrong else 0)
PY
rc=$?
grep -n "start\|GPU\|cold" "$D/batch.log" | head -5
tar czf "$FINAL/warm-crash.tgz" -C "$D" --exclude cache results batch.log
exit $rc
