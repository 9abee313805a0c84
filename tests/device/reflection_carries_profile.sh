#!/usr/bin/env bash
# On the GPU machine: a batch with --profile whose first answer is correct but slower than
# the target, so attempt 2's reflection prompt must carry the profile digest.
# Problem: KernelBench level1 19_ReLU; the replay provider answers every request with
# tests/gpu/relu_correct.py (about 0.94x on the H100). Run after tools/pack_device.sh 19_ReLU.py.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
need_level1 19_ReLU.py
W=$(workdir reflection-profile)
mkdir -p "$W/replay" "$W/problems"
cp "$L1/19_ReLU.py" "$W/problems/"
{ echo "Same kernel again."; echo '```python'; cat tests/gpu/relu_correct.py; echo '```'; } > "$W/replay/19_ReLU.txt"
t0=$(date +%s)
$KB batch 19 19 --problems-dir "$W/problems" --results "$W/results" --replay-dir "$W/replay" \
  --samples 1 --attempts 2 --target-speedup 1.0 --device cuda --profile > "$W/batch.log" 2>&1
echo "batch exit=$? wall=$(( $(date +%s) - t0 )) s"
ls "$W/results/19_ReLU"
for r in "$W"/results/19_ReLU/result_*.json; do
  python3 - "$r" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); e = r.get("eval", r); p = e.get("profile") or {}
print("%s: status=%s speedup=%s profile=%s" % (sys.argv[1].rsplit("/", 1)[1], e.get("status"), e.get("speedup"), p.get("status")))
PY
done
echo "--- what attempt 2's prompt says the evaluator reported ---"
last=$(ls "$W"/results/19_ReLU/prompt_*.txt | sort -V | tail -1)
echo "($last)"
sed -n '/## What the evaluator reported/,/## Hints/p' "$last"
cp "$last" "$FINAL/reflection_prompt.txt"
tar czf "$FINAL/reflection_results.tgz" -C "$W" results batch.log
