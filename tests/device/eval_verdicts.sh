#!/usr/bin/env bash
# On the GPU machine: the eval acceptance checks on KernelBench level1 ReLU.
# Run after tools/pack_device.sh 19_ReLU.py; results under $OUT.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
need_level1 19_ReLU.py
OUT=$(workdir eval-check)
gpu_info "$OUT/gpu.txt"
P=$L1/19_ReLU.py
ev() {  # name candidate [flags]
  local name=$1 cand=$2; shift 2
  local t0 rc
  t0=$(date +%s.%N)
  $KB eval --code "tests/gpu/$cand.py" --problem "$P" --output "$OUT/$name.json" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$name exit=$rc wall=$(seconds_since "$t0") s" >> "$OUT/summary.txt"
}
# The four failing candidates compile in parallel (16 cores); then the illegal-address
# one runs, then the correct one on the same GPU: it must work normally after the crash.
ev wrong relu_wrong &
ev compile_error relu_compile_error &
ev infinite_loop relu_infinite_loop --run-timeout 30 &
ev illegal_address relu_illegal_address
wait
ev correct relu_correct
ev correct_again relu_correct
for f in wrong compile_error illegal_address infinite_loop correct correct_again; do
  python3 - "$OUT/$f.json" "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["stages"]; c = r["correctness"]; t = r["timing"]
err = (r.get("error") or {})
line = "%-16s status=%-14s cat=%-16s speedup=%s start=%.1fs compile=%.1fs correct=%.2fs timing=%.2fs" % (
    sys.argv[2], r["status"], err.get("category", ""), "%.3f" % r["speedup"] if r["speedup"] else "-",
    s["worker_start_s"], s["compile_s"], s["correctness_s"], s["timing_s"])
if t.get("reference"):
    line += " ref=%.4fms cand=%.4fms (std %.4f/%.4f, n=%d)" % (t["reference"]["median_ms"], t["candidate"]["median_ms"],
        t["reference"]["std_ms"], t["candidate"]["std_ms"], t["candidate"]["trials"])
if c.get("max_abs_diff") is not None:
    line += " max_diff=%.4g mean_diff=%.4g" % (c["max_abs_diff"], c["mean_abs_diff"])
print(line)
if r["status"] not in ("correct",):
    print("    " + err.get("message", "")[:600].replace("\n", "\n    "))
PY
done | tee "$OUT/table.txt"
cat "$OUT/summary.txt"
cp "$OUT/table.txt" "$OUT/summary.txt" "$FINAL/"
tar czf "$FINAL/eval_check.tgz" -C "$OUT" .
