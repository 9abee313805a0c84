#!/usr/bin/env bash
# On the GPU machine: the reward-hack suite (tests/cheats) and honest candidates on CUDA.
# Prints the table: candidate, expected, got.
set -uo pipefail
KB=$PWD/.devpkg/kbrun
FINAL=${OUT:-/tmp/out}
D=/tmp/kbrun-cheats; rm -rf $D; mkdir -p $D "$FINAL"
P=tests/problems/1_ScaleAdd.py
run() {  # file expected
  $KB eval --code "$1" --problem $P --device cuda --perf-trials 30 --output "$D/$(basename "$1" .py).json" > /dev/null 2>&1
  python3 - "$D/$(basename "$1" .py).json" "$(basename "$1" .py)" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); e = r.get("error") or {}
got = r["status"] + ("/" + e["category"] if e else "")
ok = (sys.argv[3] == "correct") == (r["status"] == "correct")
print("%-26s expected %-10s got %-40s %s" % (sys.argv[2], sys.argv[3], got, "OK" if ok else "MISSED"))
PY
}
# Port for the network cheat: a listener on loopback outside the sandbox.
python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); open("/tmp/kb_port","w").write(str(s.getsockname()[1])); time.sleep(600)' &
sleep 1; sed "s/@PORT@/$(cat /tmp/kb_port)/" tests/cheats/13_network.py > $D/13_network.py
{
for f in tests/cheats/0*.py tests/cheats/1[0-3]_*.py; do
  [ "$(basename $f)" = 13_network.py ] && f=$D/13_network.py
  run "$f" caught &
  while [ "$(jobs -r | wc -l)" -ge 6 ]; do sleep 0.5; done
done
wait
} | sort | tee "$FINAL/cheats_table.txt"
