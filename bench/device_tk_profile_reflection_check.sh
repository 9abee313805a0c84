#!/usr/bin/env bash
# On the GPU machine, one call: the ThunderKittens candidate (its compile runs
# alongside the others: 16 cores), `eval --profile` on a GEMM and on ReLU, and a batch whose
# reflection prompt must carry the profile digest. Timings of evals that overlap on the GPU
# are not comparable; the point here is status, digest and prompt.
# Prepare here: bench/pack_device.sh 1_Square_matrix_multiplication_.py 19_ReLU.py and copy
# the ThunderKittens root to .tk (git-ignored); carry .devpkg and .tk. Results: $OUT/tk_profile_reflection.tgz.
set -uo pipefail
FINAL=${OUT:-/tmp/out}; mkdir -p "$FINAL"
W=/tmp/kbrun-tk-profile-reflection; rm -rf "$W"; mkdir -p "$W/tk" "$W/profile" "$W/reflection"
t0=$(date +%s)
(OUT=$W/tk timeout 420 bash bench/device_tk_check.sh .tk > "$W/tk/stdout.txt" 2>&1; echo "tk check exit=$? at $(( $(date +%s) - t0 )) s" >> "$W/tk/stdout.txt") &
OUT=$W/profile timeout 300 bash bench/device_profile_check.sh 2>&1 | tee "$W/profile/stdout.txt"
echo "profile check done at $(( $(date +%s) - t0 )) s"
OUT=$W/reflection timeout 240 bash bench/device_reflection_profile_check.sh 2>&1 | tee "$W/reflection/stdout.txt"
echo "reflection check done at $(( $(date +%s) - t0 )) s"
wait
echo "=== ThunderKittens ==="; cat "$W/tk/stdout.txt"
cp "$W/profile/digests.txt" "$FINAL/profile_digests.txt" 2>/dev/null
cp "$W/reflection/reflection_prompt.txt" "$FINAL/" 2>/dev/null
cp "$W/tk/table.txt" "$FINAL/tk_table.txt" 2>/dev/null
tar czf "$FINAL/tk_profile_reflection.tgz" -C "$W" .
echo "all done at $(( $(date +%s) - t0 )) s"
