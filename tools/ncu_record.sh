#!/usr/bin/env bash
# On the GPU machine: records real Nsight Compute output (CSV, raw page) for a small
# reference/candidate pair marked with NVTX ranges, as kbrun's profiler runs it. The
# files become test fixtures of the ncu parser (src/profile/testdata/). Results under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
W=$(mktemp -d)
ncu --version | tee "$OUT/ncu_version.txt"
cat > "$W/probe.py" <<'PY'
import torch
x = torch.randn(4096, 4096, device="cuda")
a = torch.randn(2048, 2048, device="cuda"); b = torch.randn(2048, 2048, device="cuda")
torch.cuda.synchronize()
for name, fn in (("reference", lambda: (torch.relu(x), a @ b)), ("candidate", lambda: (x.clamp_min(0), torch.mm(a, b)))):
    torch.cuda.nvtx.range_push("kbrun_" + name)
    fn(); torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
PY
SECTIONS="--section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats"
t0=$(date +%s.%N)
ncu --clock-control none --target-processes all --nvtx $SECTIONS -o "$W/rep" python3 "$W/probe.py" > "$OUT/ncu_run.log" 2>&1
echo "ncu run rc=$? $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s" | tee -a "$OUT/ncu_run.log"
ncu -i "$W/rep.ncu-rep" --csv --page raw > "$OUT/raw.csv" 2>&1
ncu -i "$W/rep.ncu-rep" --csv --page details > "$OUT/details.csv" 2>&1
ncu -i "$W/rep.ncu-rep" --csv --page raw --print-nvtx-rename kernel > "$OUT/raw_nvtx_rename.csv" 2>&1
ncu -i "$W/rep.ncu-rep" --csv --page raw --nvtx-include "kbrun_candidate/" > "$OUT/raw_candidate_only.csv" 2>&1
wc -l "$OUT"/*.csv; head -c 1500 "$OUT/raw.csv"; echo; cut -c1-300 "$OUT/details.csv" | head -20
# Peaks for the roofline: DRAM copy bandwidth and dense matmul rates, CUDA events.
python3 - <<'PY' | tee "$OUT/peaks.txt"
import torch
def t(fn, n=20):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = 1e9
    for _ in range(n):
        s.record(); fn(); e.record(); e.synchronize(); best = min(best, s.elapsed_time(e) / 1e3)
    return best
src = torch.empty(1 << 28, device="cuda"); dst = torch.empty_like(src)
sec = t(lambda: dst.copy_(src)); print("copy GB/s %.0f" % (2 * src.numel() * 4 / sec / 1e9))
for dt in (torch.float32, torch.bfloat16, torch.float16):
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(8192, 8192, device="cuda", dtype=dt); b = torch.randn_like(a)
    sec = t(lambda: a @ b, 10); print(dt, "TFLOP/s %.0f" % (2 * 8192**3 / sec / 1e12))
print(torch.cuda.get_device_properties(0))
PY
