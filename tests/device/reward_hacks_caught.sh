#!/usr/bin/env bash
# On the GPU machine: the reward-hack suite (tests/cheats) must be caught and the
# honest kernels (tests/gpu/honest, tests/gpu/relu_correct.py) must pass, on CUDA.
# Pack first: tools/pack_device.sh 19_ReLU.py 23_Softmax.py 47_Sum_reduction_over_a_dimension.py \
#   1_Square_matrix_multiplication_.py 40_LayerNorm.py 42_Max_Pooling_2D.py
# Prints the table: candidate, expected, got; exits 1 when one is MISSED. HONEST=0: the cheats only.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # ROOT, KB, L1, FINAL; workdir, need_level1
D=$(workdir cheats)
[ "${HONEST:-1}" = 1 ] && need_level1 19_ReLU.py $(cd tests/gpu/honest && echo *.py)
export KBRUN_COMPILE_CACHE=${KBRUN_COMPILE_CACHE:-/tmp/kbrun-devcache}
run() {  # file problem expected [flags...]
  local f=$1 problem=$2 expected=$3; shift 3
  local name; name=$(basename "$f" .py)
  $KB eval --code "$f" --problem "$problem" --device cuda --output "$D/$name.json" "$@" > "$D/$name.log" 2>&1
  python3 - "$D/$name.json" "$name" "$expected" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as exc:
    print("%-34s expected %-8s got %-44s %s" % (sys.argv[2], sys.argv[3], "no result: %s" % exc, "MISSED"))
    sys.exit()
e = r.get("error") or {}
got = r["status"] + ("/" + e["category"] if e else "")
if r["status"] == "correct":
    got += " %.3fx" % r["speedup"]
ok = (sys.argv[3] == "correct") == (r["status"] == "correct")
print("%-34s expected %-8s got %-44s %s" % (sys.argv[2], sys.argv[3], got, "OK" if ok else "MISSED"))
PY
}
# Port for the network cheat: a listener on loopback outside the sandbox.
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); open("/tmp/kb_port","w").write(str(s.getsockname()[1])); time.sleep(600)' &
listener=$!
sleep 1; sed "s/@PORT@/$(cat /tmp/kb_port)/" tests/cheats/13_network.py > $D/13_network.py
{
for f in tests/cheats/*.py; do
  problem=tests/problems/1_ScaleAdd.py
  case $(basename "$f") in
    13_network.py) f=$D/13_network.py ;;
    15_tf32_matmul.py) problem=tests/problems/2_Matmul.py ;;
  esac
  run "$f" $problem caught --perf-trials 30 &
  while [ "$(jobs -r | wc -l)" -ge 6 ]; do sleep 0.5; done
done
wait
} | sort | tee "$FINAL/cheats_table.txt"
# Honest kernels one at a time (their speedups are measured alone on the GPU); HONEST=0 skips them.
[ "${HONEST:-1}" = 1 ] && {
run tests/gpu/relu_correct.py "$L1/19_ReLU.py" correct
for f in tests/gpu/honest/*.py; do
  run "$f" "$L1/$(basename "$f")" correct
done
} | tee "$FINAL/honest_table.txt"
tar czf "$FINAL/cheats_results.tgz" -C $D .
kill "$listener" 2> /dev/null
! grep -q MISSED "$FINAL/cheats_table.txt" "$FINAL/honest_table.txt" 2> /dev/null
