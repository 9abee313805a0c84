#!/usr/bin/env bash
# On the GPU machine: does the warm worker hand forks a usable GPU?
# 1. tools/fork_poison_probe.py: after each import the server makes, a fork tries CUDA.
# 2. kbrun eval of tests/gpu/relu_correct.py on level1 19_ReLU with --warm-worker all,
#    three times: cold build, cached build with warm workers, cached build with cold workers.
# Run after tools/pack_device.sh 19_ReLU.py; results under $OUT.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
need_level1 19_ReLU.py
OUT=$(workdir warm-gpu)
gpu_info
echo "== fork probe"
python3 tools/fork_poison_probe.py "$(dirname "$KB")" 2>&1
P=$L1/19_ReLU.py
export KBRUN_COMPILE_CACHE=$OUT/cache
for run in "build all" "cached all" "cached_cold off" "cached_again all"; do
  set -- $run
  t0=$(date +%s.%N)
  $KB eval --code tests/gpu/relu_correct.py --problem $P --output "$OUT/$1.json" --warm-worker $2 > "$OUT/$1.log" 2>&1
  rc=$?
  echo "== eval $1 (--warm-worker $2): exit $rc, wall $(seconds_since "$t0") s"
  grep -i "cold\|warm\|error" "$OUT/$1.log" | head -5
  python3 - "$OUT/$1.json" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print("no result:", e); sys.exit()
s = r["stages"]; err = r.get("error") or {}
print("status=%s cat=%s speedup=%s" % (r["status"], err.get("category"), r.get("speedup")))
print("message:", (err.get("message") or "")[:300])
print("stages:", json.dumps(s))
PY
done
tar czf "$FINAL/warm-gpu.tgz" -C "$OUT" --exclude=cache .
