#!/usr/bin/env bash
# On the GPU machine: the torch.compile and CUDA-graph baselines (--baseline, docs/EVALUATION.md
# "Baselines") on 6 level1 problems. A replayed batch (one sample per problem, one attempt) whose
# answers are the honest kernels (tests/gpu/relu_correct.py for 19_ReLU, tests/gpu/honest/*.py),
# run with --baseline eager --baseline compile --baseline cudagraph. Prints
#   - per problem: the verdict, the speedup over eager, compile and cudagraph, the baselines' own
#     medians, compile_s / capture_s, graph breaks, or why a baseline is unavailable;
#   - the report's "Against each baseline" table (fast_p and geomean over each baseline);
# and leaves under $OUT: baselines_table.txt, baselines_report.txt, baselines_batch_stderr.txt and
# baselines_results.tgz (the whole results tree with detailed_report.html, to render and look at
# on the development machine: tar xzf, then kbrun report DIR --html).
# 19_ReLU and 23_Softmax are 4096 x 393216 (6 GiB per tensor) in level1; they run at 4096 x 65536
# unless FULL=1 (the table says which). PERF_TRIALS (default 100) sets --perf-trials.
# Pack first: tools/pack_device.sh 19_ReLU.py 1_Square_matrix_multiplication_.py 23_Softmax.py \
#   40_LayerNorm.py 42_Max_Pooling_2D.py 47_Sum_reduction_over_a_dimension.py
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
D=$(workdir baselines)
R=$D/results
mkdir -p $D/problems $D/replay
export KBRUN_COMPILE_CACHE=/tmp/kbrun-devcache-baselines
HONEST="19_ReLU 1_Square_matrix_multiplication_ 23_Softmax 40_LayerNorm 42_Max_Pooling_2D 47_Sum_reduction_over_a_dimension"
need_level1 $(for n in $HONEST; do echo "$n.py"; done)
for n in $HONEST; do
  if [ "${FULL:-0}" != 1 ] && { [ "$n" = 19_ReLU ] || [ "$n" = 23_Softmax ]; }; then
    sed -e 's/^dim = .*/dim = 65536/' "$L1/$n.py" > "$D/problems/$n.py"
  else
    cp "$L1/$n.py" "$D/problems/$n.py"
  fi
  code=tests/gpu/honest/$n.py
  [ "$n" = 19_ReLU ] && code=tests/gpu/relu_correct.py
  # The replayed answer: the kernel as a model writes it, prose and then a python block.
  mkdir -p "$D/replay/$n"
  { printf 'An honest kernel for %s.\n\n```python\n' "$n"; cat "$code"; printf '```\n'; } > "$D/replay/$n/attempt1.txt"
done
t0=$(date +%s)
$KB batch 1 100 --problems-dir $D/problems --results $R --replay-dir $D/replay --samples 1 --attempts 1 \
  --device cuda --perf-trials "${PERF_TRIALS:-100}" \
  --baseline eager --baseline compile --baseline cudagraph > "$FINAL/baselines_batch_stderr.txt" 2>&1
echo "batch exit=$? wall=$(( $(date +%s) - t0 )) s" | tee -a "$FINAL/baselines_batch_stderr.txt"
{
  echo "== speedup of the honest kernel over each baseline (baseline median / kernel median; kbrun's method)"
  [ "${FULL:-0}" = 1 ] || echo "   (19_ReLU and 23_Softmax at 4096 x 65536; FULL=1 for level1's 4096 x 393216)"
  python3 - "$R" <<'PY'
import json, os, sys
root = sys.argv[1]
f = lambda v, fmt: (fmt % v) if isinstance(v, (int, float)) else "-"
print("%-36s %-30s %9s %9s %9s | %-44s | %s" % ("problem", "status", "vs eager", "vs compile", "vs graph",
      "median ms: eager / compile / cudagraph", "compile_s capture_s breaks"))
notes = []
for name in sorted(os.listdir(root), key=lambda n: (int(n.split("_")[0]) if n.split("_")[0].isdigit() else 0, n)):
    path = os.path.join(root, name, "result_1.json")
    if not os.path.isfile(path):
        continue
    r = json.load(open(path))
    e = r.get("eval") or {}
    b = e.get("baselines") or {}
    err = r.get("error") or {}
    status = r["status"] + ("/" + err["category"] if err.get("category") else "")
    get = lambda k, x: (b.get(k) or {}).get(x)
    print("%-36s %-30s %9s %9s %9s | %-44s | %s %s %s" % (
        name, status, f(get("eager", "speedup"), "%.3fx"), f(get("compile", "speedup"), "%.3fx"),
        f(get("cudagraph", "speedup"), "%.3fx"),
        " / ".join(f(get(k, "median_ms"), "%.4f") for k in ("eager", "compile", "cudagraph")),
        f(get("compile", "compile_s"), "%.1f"), f(get("cudagraph", "capture_s"), "%.2f"),
        f(get("compile", "graph_breaks"), "%d")))
    for k in ("compile", "cudagraph"):
        if (b.get(k) or {}).get("status") not in (None, "measured"):
            notes.append("  %s %s %s: %s" % (name, k, b[k]["status"], b[k].get("reason")))
        clk = (b.get(k) or {}).get("sm_clock_mhz") or {}
        if clk.get("calls_below_full"):
            notes.append("  %s %s: %s timed calls began below full clock" % (name, k, clk["calls_below_full"]))
    if r["status"] != "correct":
        notes.append("  %s: %s" % (name, (err.get("message") or "")[:400]))
print("\n".join(notes) if notes else "  every baseline measured")
PY
} 2>&1 | tee "$FINAL/baselines_table.txt"
$KB report "$R" --html > /dev/null 2>&1
sed -n '/^Against each baseline/,/^$/p' "$R/detailed_report.txt" | tee "$FINAL/baselines_report.txt"
cp "$R/detailed_report.txt" "$FINAL/baselines_detailed_report.txt"
tar czf "$FINAL/baselines_results.tgz" -C "$R" .
