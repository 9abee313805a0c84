#!/usr/bin/env bash
# On the GPU machine: the makespan of a kbrun batch against its floor
# max(LLM s / concurrency, compile CPU-s / cores, GPU s / lanes), and the same batch run
# problem after problem (--schedule by-problem, the seed runner's order) for comparison.
# The replay provider serves bench/replay/makespan (tools/make_makespan_replay.py: correct,
# non-compiling and wrong split-layout CUDA kernels, a reflection round for 3 problems) at a
# fixed simulated latency. Pack first (10 problems):
#   tools/pack_device.sh 19_ReLU.py 20_LeakyReLU.py 21_Sigmoid.py 22_Tanh.py 25_Swish.py \
#     26_GELU_.py 27_SELU_.py 28_HardSigmoid.py 29_Softplus.py 31_ELU.py
# then, in one device call: bench/makespan_bench.sh   (table in $OUT/makespan_table.txt)
# Each run gets its own empty compile cache (no run reuses the other's builds); the
# precompiled torch header is built once by a warm-up and hard-linked into both caches, so
# neither pays for it. The pipelined run goes first and in full; the by-problem run gets the
# rest of the device time (BENCH_BUDGET_S) and, when cut, is reported as a lower bound with a
# projection from its finished problems (bench/makespan_table.py).
# Knobs (env): LATENCY (20 s), SAMPLES (3), ATTEMPTS (2), LLM_CONCURRENCY (8),
# CORRECT_TRIALS (2), PERF_TRIALS (20), BENCH_BUDGET_S (540), DEVICE (cuda), WARMUP (1),
# WARM_WORKER (all: --warm-worker for every evaluation),
# SCHEDULES ("pipelined by-problem"), PCH_FROM (a compile cache whose precompiled header to
# reuse instead of a warm-up), RESUME (an earlier call's makespan_bench.tgz: each schedule's batch
# resumes from its results folder there, so a run longer than one device call ends in the next;
# the table sums its sessions), and for a CPU dry run KB, LEVEL1, REPLAY, EXTRA (flags).
set -uo pipefail
cd "$(dirname "$0")/.."
KB=${KB:-$PWD/.devpkg/kbrun}
LEVEL1=${LEVEL1:-.devpkg/level1}
REPLAY=${REPLAY:-bench/replay/makespan}
FINAL=${OUT:-/tmp/out}
D=${BENCH_DIR:-/tmp/kbrun-makespan}
LATENCY=${LATENCY:-20}
SAMPLES=${SAMPLES:-3}
ATTEMPTS=${ATTEMPTS:-2}
LLM_CONCURRENCY=${LLM_CONCURRENCY:-8}
DEVICE=${DEVICE:-cuda}
BUDGET=${BENCH_BUDGET_S:-540}
SCHEDULES=${SCHEDULES:-pipelined by-problem}
rm -rf "$D"; mkdir -p "$D" "$FINAL"
if [ -n "${RESUME:-}" ]; then
  tar xzf "$RESUME" -C "$D" && echo "resuming from $RESUME: $(cd "$D" && ls -d */ 2>/dev/null | tr '\n' ' ')"
fi
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }

problems=$(ls "$LEVEL1" | grep -E '^[0-9]+_.*\.py$' | wc -l)
cores=$(nproc)
echo "makespan bench: $problems problems x $SAMPLES samples, $ATTEMPTS attempts, latency ${LATENCY}s," \
     "llm concurrency $LLM_CONCURRENCY, $cores cores, device $DEVICE, budget ${BUDGET}s"
# A priori estimate for the guard (H100 machine figures, docs/PERFORMANCE.md): a cold split-layout
# build ~10 s wall, a GPU stage ~8 s at these trial counts; 1.3 attempts per problem on average.
cands=$(( problems * SAMPLES * 13 / 10 ))
est_pipe=$(( LATENCY * 2 + cands * 8 + 20 ))
est_seq=$(( problems * 13 / 10 * (LATENCY + 10 + SAMPLES * 8) ))
echo "estimate: warm-up ~60 s, pipelined ~${est_pipe} s, by-problem ~${est_seq} s" \
     "(by-problem is cut at the budget when it does not fit: reported as a lower bound)"

# PCH_FROM=<a compile cache that has built the precompiled header>: reuse it, no warm-up.
if [ -n "${PCH_FROM:-}" ] && [ -d "$PCH_FROM/pch" ]; then
  mkdir -p "$D/seed" && cp -al "$PCH_FROM/pch" "$D/seed/pch" && WARMUP=0
  echo "precompiled header taken from $PCH_FROM"
fi
if [ "${WARMUP:-1}" = 1 ]; then
  # The precompiled header (about 35 s) once, for both runs: one eval of a replayed answer.
  first=""
  for d in "$REPLAY"/*/; do
    n=$(basename "$d"); [ -f "$LEVEL1/$n.py" ] && { first=$n; break; }
  done
  # A correct answer (the reflected problems' first attempt does not compile).
  answer=$REPLAY/$first/attempt2_sample1.txt; [ -f "$answer" ] || answer=$REPLAY/$first/attempt1_sample1.txt
  python3 - "$answer" "$D/warmup.py" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"```python\n(.*?)```", text, re.S)
code = m.group(1) if m else text
open(sys.argv[2], "w").write(re.sub(r'name="([^"]+)"', r'name="\1_warmup"', code))
PY
  $KB eval --code "$D/warmup.py" --problem "$LEVEL1/$first.py" --device "$DEVICE" --compile-cache "$D/seed" \
    --correct-trials 1 --perf-trials 1 --output "$D/warmup.json" --warm-worker "${WARM_WORKER:-all}" ${EXTRA:-} > "$D/warmup.log" 2>&1
  echo "warm-up ($first) done at $(elapsed) s: $(grep -o '"status": "[a-z_]*"' "$D/warmup.json" | head -1)," \
       "$(grep -o '"pch": *"[a-z]*"' "$D/warmup.json" | tail -1)"
fi

for s in $SCHEDULES; do
  left=$(( BUDGET - $(elapsed) - 15 ))  # 15 s for the table and the archive
  if [ "$left" -lt 30 ]; then echo "$s: no time left in the budget: skipped"; continue; fi
  cache="$D/cache-$s"; mkdir -p "$cache"
  [ -d "$D/seed/pch" ] && cp -al "$D/seed/pch" "$cache/pch"
  start=$(elapsed)
  # SIGINT at the limit: kbrun saves its state and exits 130; the table reads what it did.
  timeout -s INT -k 30 "$left" "$KB" batch 1 999 --problems-dir "$LEVEL1" --results "$D/$s" --replay-dir "$REPLAY" \
    --replay-latency "$LATENCY" --schedule "$s" --samples "$SAMPLES" --attempts "$ATTEMPTS" \
    --llm-concurrency "$LLM_CONCURRENCY" --target-speedup 0 --device "$DEVICE" --compile-cache "$cache" \
    --correct-trials "${CORRECT_TRIALS:-2}" --perf-trials "${PERF_TRIALS:-20}" --no-report --warm-worker "${WARM_WORKER:-all}" ${EXTRA:-} \
    > "$D/$s.log" 2>&1
  rc=$?
  [ $rc = 124 ] && rc="124 (cut at the time limit, state saved)"
  echo "$s: exit $rc after $(( $(elapsed) - start )) s (limit ${left} s), bench at $(elapsed) s"
done

python3 bench/makespan_table.py --cores "$cores" $(for s in $SCHEDULES; do [ -f "$D/$s/summary.json" ] && echo "$D/$s"; done) \
  | tee "$FINAL/makespan_table.txt"
tar czf "$FINAL/makespan_bench.tgz" -C "$D" --exclude 'cache-*' --exclude seed . 2>/dev/null
echo "bench done at $(elapsed) s"
