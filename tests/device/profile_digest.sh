#!/usr/bin/env bash
# On the GPU machine: `kbrun eval --profile` on a level1 GEMM and on ReLU; prints
# each result's profile status, roofline and the text digest a reflection prompt carries.
# Run after: tools/pack_device.sh 1_Square_matrix_multiplication_.py 19_ReLU.py. Results under $OUT.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
need_level1 1_Square_matrix_multiplication_.py 19_ReLU.py
OUT=$(workdir profile-check)
gpu_info "$OUT/gpu.txt"
(ncu --version || echo "ncu: not found") 2>&1 | tail -1 | tee -a "$OUT/gpu.txt"
ev() {  # name problem candidate [flags]
  local name=$1 prob=$2 cand=$3; shift 3
  local t0
  t0=$(date +%s.%N)
  $KB eval --profile --code "$cand" --problem "$L1/$prob" --output "$OUT/$name.json" --keep-work-dir "$@" \
    > "$OUT/$name.log" 2>&1
  echo "$name exit=$? wall=$(seconds_since "$t0") s" | tee -a "$OUT/summary.txt"
}
ev gemm 1_Square_matrix_multiplication_.py tests/gpu/honest/1_Square_matrix_multiplication_.py
ev relu 19_ReLU.py tests/gpu/relu_correct.py
for f in gemm relu; do
  python3 - "$OUT/$f.json" "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); p = r.get("profile") or {}; roof = r.get("roofline") or {}
print("== %s: status=%s speedup=%s profile=%s (%.1f s) %s" % (sys.argv[2], r["status"], r.get("speedup"),
      p.get("status"), p.get("seconds") or 0, p.get("note") or ""))
print("   roofline: min_bytes=%s min_flops=%s peak %s GB/s %s TFLOP/s (%s) roofline_ms=%s fraction=%s" % (
      roof.get("min_bytes"), roof.get("min_flops"), roof.get("peak_bandwidth_gbs"), roof.get("peak_tflops"),
      roof.get("peaks_source"), roof.get("roofline_ms"), roof.get("fraction_of_roofline")))
for side in ("candidate", "reference"):
    for k in (p.get(side) or {}).get("kernels", [])[:3]:
        print("   %-9s %-60s %9.1f us %-13s mem %s%% dram %s%% sm %s%% occ %s%% regs %s stalls %s" % (
            side, k["name"][:60], k["duration_us"] or 0, k["bound"], k["memory_throughput_pct"],
            k["dram_throughput_pct"], k["compute_throughput_pct"], k["achieved_occupancy_pct"],
            k["registers_per_thread"], ",".join("%s=%.2f" % (s["reason"], s["ratio"]) for s in k["top_stalls"])))
print("   --- digest for the reflection prompt ---")
print("   " + (p.get("summary") or "(none)").replace("\n", "\n   "))
PY
done | tee "$OUT/digests.txt"
cp "$OUT"/*.json "$OUT/digests.txt" "$OUT/summary.txt" "$FINAL/"
