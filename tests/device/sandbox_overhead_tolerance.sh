#!/usr/bin/env bash
# On the GPU machine: the sandbox, the per-candidate overhead and the worker's GPU paths.
#   sandbox   hostile fixtures (tests/candidates: secret_hunter with the key in the parent shell's
#             environment, double_fork_daemon, fs_escape, checker_prober, memory_hog under
#             --memory-limit 4G) on CUDA, warm workers, the sandbox block of an honest GPU run
#             (shared PID namespace, read-only root, cgroup memory cap, CUDA IPC), a --profile run
#   overhead  per-candidate overhead (worker walls minus compile, checks, timing and the warm
#             worker's one-time start) on cached builds, the current build against the earlier
#             one in .devpkg/old, on small copies of the honest set's level1 problems
#   libshare  tests/worker/gpu_library_share_check.py (provenance of GPU kernels)
#   tolerance tests/cheats/15_tf32_matmul.py (evidence rule: precision_downgrade; kernelbench
#             rule: value_mismatch at 1024^3, allclose misses near zero), tests/worker/gpu_judge_check.py
# Pack first as for tests/device/judge_floor_and_cheats.sh. PARTS picks parts.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, OLD, L1, FINAL; workdir, need_level1, gpu_info, seconds_since
D=$(workdir sandbox)
PARTS=${PARTS:-sandbox overhead libshare tolerance}
case " $PARTS " in
  *" overhead "*) need_level1 19_ReLU.py $(cd tests/gpu/honest && echo *.py) ;;
  *" sandbox "*) need_level1 19_ReLU.py ;;
esac
summary() {  # json name
  python3 - "$@" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as exc:
    print("%-28s no result: %s" % (sys.argv[2], exc)); sys.exit()
e = r.get("error") or {}
print("%-28s %-40s speedup %s sandbox %s run_worker_start %s" % (
    sys.argv[2], r["status"] + ("/" + e["category"] if e else ""), r.get("speedup"),
    json.dumps({k: v for k, v in (r.get("sandbox") or {}).items() if k != "network_interfaces"}),
    (r.get("stages") or {}).get("run_worker_start")))
PY
}
for part in $PARTS; do case $part in
sandbox) {
  echo "== sandbox on CUDA (warm workers)"
  export KBRUN_COMPILE_CACHE=/tmp/kbrun-devcache-new
  key="sk-test-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  # The key is exported by kbrun's parent shell, as a user's shell would hold it.
  for f in secret_hunter double_fork_daemon fs_escape checker_prober; do
    LLM_GATEWAY_KEY=$key bash -c "$KB eval --code tests/candidates/$f.py --problem tests/problems/1_ScaleAdd.py \
      --device cuda --perf-trials 10 --allow-library-kernels --output $D/$f.json > $D/$f.log 2>&1"
    summary $D/$f.json $f
    grep -l -- "$key" $D/$f.json $D/$f.log && echo "LEAK: the key is in $f's output" || echo "$f: key not found in result or output"
  done
  echo "processes left from the daemon fixture: $(pgrep -fc double_fork || true)"
  $KB eval --code tests/candidates/memory_hog.py --problem tests/problems/1_ScaleAdd.py --device cuda --perf-trials 10 \
    --allow-library-kernels --memory-limit 4G --output $D/memory_hog.json > $D/memory_hog.log 2>&1
  summary $D/memory_hog.json memory_hog_4G
  sed -e 's/^batch_size = .*/batch_size = 64/' -e 's/^dim = .*/dim = 16384/' $L1/19_ReLU.py > $D/small_19_ReLU.py
  $KB eval --code tests/gpu/relu_correct.py --problem $D/small_19_ReLU.py --device cuda --output $D/relu_sandbox.json > $D/relu_sandbox.log 2>&1
  summary $D/relu_sandbox.json relu_correct_sandboxed
  python3 -c "import json; r=json.load(open('$D/relu_sandbox.json')); print('transport:', r['correctness'].get('checker', {}).get('transport_note', 'CUDA IPC'))"
  # The profiled run under ncu, sealed in a PID namespace of its own.
  $KB eval --code tests/gpu/relu_correct.py --problem $D/small_19_ReLU.py --device cuda --profile \
    --output $D/relu_profile.json > $D/relu_profile.log 2>&1
  python3 -c "import json; r=json.load(open('$D/relu_profile.json')); p=r.get('profile') or {}; print('profile:', r['status'], p.get('status'), json.dumps(p)[:400])"
  cat /proc/self/cgroup | head -3; cat /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null | head -1
} 2>&1 | tee "$FINAL/sandbox_table.txt" ;;
overhead) {
  echo "== per-candidate overhead on cached builds (second evaluation of each), small level1 copies"
  for kb in $KB $OLD; do
    [ -x "$kb" ] || continue
    tag=$([ "$kb" = "$KB" ] && echo new || echo old)
    export KBRUN_COMPILE_CACHE=/tmp/kbrun-devcache-$tag
    mkdir -p $D/$tag
    sed -e 's/^batch_size = .*/batch_size = 64/' -e 's/^dim = .*/dim = 16384/' $L1/19_ReLU.py > $D/$tag/19_ReLU.py
    cp tests/gpu/relu_correct.py $D/$tag/c_19_ReLU.py
    for f in tests/gpu/honest/*.py; do
      b=$(basename $f); cp $f $D/$tag/c_$b
      sed -e 's/^batch_size = .*/batch_size = 16/' -e 's/^dim = .*/dim = 16384/' -e 's/^dim1 = .*/dim1 = 256/' \
        -e 's/^dim2 = .*/dim2 = 255/' -e 's/^N = .*/N = 1024/' -e 's/^features = .*/features = 16/' \
        -e 's/^height = .*/height = 128/' -e 's/^width = .*/width = 128/' $L1/$b > $D/$tag/$b
    done
    # Warm the compile cache in parallel (16 cores), then evaluate one at a time.
    for c in $D/$tag/c_*.py; do p=$D/$tag/$(basename $c | sed 's/^c_//')
      $kb eval --code $c --problem $p --device cuda --perf-trials 5 --output $c.warm.json > $c.warm.log 2>&1 & done; wait
    for c in $D/$tag/c_*.py; do p=$D/$tag/$(basename $c | sed 's/^c_//')
      $kb eval --code $c --problem $p --device cuda --perf-trials 20 --output $c.json > $c.log 2>&1
      python3 - $c.json $tag <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); st = r["stages"]
run_part = st["run_worker_total_s"] - st["correctness_s"] - st["timing_s"]
over = st["compile_worker_total_s"] - st["compile_s"] + run_part - st.get("warm_worker_setup_s", 0.0)
print("%s %-40s %-10s overhead %.2f s (compile worker %.2f, run worker %.2f: cuda init %.2f, load candidate %.2f, models %.2f) "
      "checks %.2f s timing %.2f s start %s/%s" % (sys.argv[2], r["problem"], r["status"], over,
      st["compile_worker_total_s"] - st["compile_s"], run_part, st.get("run_cuda_init_s", 0), st.get("run_load_candidate_s", 0),
      st.get("run_load_models_s", 0), st["correctness_s"], st["timing_s"], st["compile_worker_start"], st["run_worker_start"]))
PY
    done
  done
} 2>&1 | tee "$FINAL/overhead_table.txt" ;;
libshare) python3 tests/worker/gpu_library_share_check.py 2>&1 | tail -40 | tee "$FINAL/libshare_check.txt" ;;
tolerance) {
  export KBRUN_COMPILE_CACHE=/tmp/kbrun-devcache-new
  for rule in evidence kernelbench; do
    $KB eval --code tests/cheats/15_tf32_matmul.py --problem tests/problems/2_Matmul.py --device cuda --tolerance $rule \
      --output $D/tf32_$rule.json > $D/tf32_$rule.log 2>&1
    summary $D/tf32_$rule.json "15_tf32_matmul --tolerance $rule"
  done
  python3 tests/worker/gpu_judge_check.py 2>&1 | tail -25
} 2>&1 | tee "$FINAL/tolerance_table.txt" ;;
esac; done
tar czf "$FINAL/sandbox_results.tgz" -C $D .
