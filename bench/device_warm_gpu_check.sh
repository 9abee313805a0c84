#!/usr/bin/env bash
# On the GPU machine: does the warm worker hand forks a usable GPU?
# 1. bench/fork_poison_probe.py: after each import the server makes, a fork tries CUDA.
# 2. kbrun eval of tests/gpu/relu_correct.py on level1 19_ReLU with --warm-worker all,
#    three times: cold build, cached build with warm workers, cached build with cold workers.
# Run after bench/pack_device.sh 19_ReLU.py; results under $OUT.
set -uo pipefail
KB=$PWD/.devpkg/kbrun
FINAL=${OUT:-/tmp/out}
OUT=/tmp/kbrun-warm-gpu
rm -rf "$OUT"; mkdir -p "$OUT" "$FINAL"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader
echo "== fork probe"
python3 bench/fork_poison_probe.py .devpkg 2>&1
P=.devpkg/level1/19_ReLU.py
export KBRUN_COMPILE_CACHE=$OUT/cache
for run in "build all" "cached all" "cached_cold off" "cached_again all"; do
  set -- $run
  t0=$(date +%s.%N)
  $KB eval --code tests/gpu/relu_correct.py --problem $P --output "$OUT/$1.json" --warm-worker $2 > "$OUT/$1.log" 2>&1
  rc=$?
  echo "== eval $1 (--warm-worker $2): exit $rc, wall $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
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
