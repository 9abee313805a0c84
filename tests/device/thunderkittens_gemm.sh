#!/usr/bin/env bash
# On the GPU machine (H100): the ThunderKittens backend. A bf16 GEMM written with
# TK (tests/gpu/tk/tk_matmul.py) is built through `--backend thunderkittens` with kbrun's
# flags only, checked against torch.matmul in bf16 (atol = rtol = 1e-2) and timed; then the
# same again from the compile cache, and once without a root (must be refused before compiling).
# Usage: tests/device/thunderkittens_gemm.sh [TK_ROOT], or TK_ROOT=... tests/device/run.sh thunderkittens_gemm
# (default .tk: a copy of the ThunderKittens checkout, carried to the device, git-ignored; a relative
# path is from the repository root). Run after tools/pack_device.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
TK_ROOT=${1:-${TK_ROOT:-.tk}}
WORK=$(workdir tk-check)
if [ ! -f "$TK_ROOT/include/kittens.cuh" ]; then
  echo "$CHECK: $TK_ROOT/include/kittens.cuh not found (pass the ThunderKittens root): skipped" >&2
  exit 77
fi
gpu_info
nvcc --version | tail -1
CODE=tests/gpu/tk/tk_matmul.py
PROBLEM=tests/gpu/tk/1_bf16_matmul.py
ev() {  # name [flags]
  local name=$1; shift
  local t0
  t0=$(date +%s.%N)
  env -u THUNDERKITTENS_ROOT "$KB" eval --code "$CODE" --problem "$PROBLEM" --precision bf16 \
    --compile-cache "$WORK/cache" --output "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1
  echo "$name exit=$? wall=$(seconds_since "$t0") s" >> "$WORK/summary.txt"
}
ev tk_cold --backend thunderkittens --tk-root "$TK_ROOT"
ev tk_warm --backend thunderkittens --tk-root "$TK_ROOT"
ev tk_no_root --backend thunderkittens
for f in tk_cold tk_warm tk_no_root; do
  python3 - "$WORK/$f.json" "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["stages"]; c = r["correctness"]; err = r.get("error") or {}
ext = (r["build"].get("extensions") or [{}])[0]
line = "%-11s status=%-14s cat=%-22s backend=%s speedup=%s compile=%.1fs cache=%s cuda_headers=%s" % (
    sys.argv[2], r["status"], err.get("category", ""), r.get("backend"),
    "%.3f" % r["speedup"] if r["speedup"] else "-", s["compile_s"], ext.get("cache", "-"),
    ",".join(ext.get("cuda_headers", [])) or "-")
if c.get("max_abs_diff") is not None:
    line += " max_diff=%.4g" % c["max_abs_diff"]
t = r["timing"]
if t.get("reference"):
    line += " ref=%.4fms cand=%.4fms" % (t["reference"]["median_ms"], t["candidate"]["median_ms"])
print(line)
if r["status"] != "correct":
    print("    " + err.get("message", "")[:1500].replace("\n", "\n    "))
PY
done | tee "$WORK/table.txt"
cat "$WORK/summary.txt"
cp "$WORK/table.txt" "$WORK/summary.txt" "$WORK"/*.json "$FINAL/"
tar czf "$FINAL/tk_check.tgz" -C "$WORK" --exclude=cache .
