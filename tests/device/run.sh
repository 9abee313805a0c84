#!/usr/bin/env bash
# Runs device checks (tests/device/*.sh) one after another and prints a table: check, result
# (pass | FAIL | skipped | timeout), exit status, seconds, where its output is.
# Usage: tests/device/run.sh all | --list | NAME...   (NAME: a check's file name without .sh)
# Each check gets its own OUT folder, $OUT/<name>/ (OUT default /tmp/out), with its stdout in
# stdout.txt; the table is also $OUT/device_checks.txt. CHECK_TIMEOUT_S (default: none) stops a
# check that runs longer. Every other setting is the check's own (PARTS=, HONEST=, TK_ROOT=, ...:
# see its header) and passes through the environment, as do KBRUN_PACK, KB and KBRUN_LEVEL1
# (tests/device/lib.sh). Exits 1 when a check failed or timed out, else 0.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checks() { for f in "$here"/*.sh; do n=$(basename "$f" .sh); [ "$n" = lib ] || [ "$n" = run ] || echo "$n"; done; }
case "${1:-}" in
  ""|-h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; echo "checks: $(checks | tr '\n' ' ')"; exit 64 ;;
  --list) checks; exit 0 ;;
  all) set -- $(checks) ;;
esac
for n in "$@"; do
  n=$(basename "$n" .sh)
  [ -f "$here/$n.sh" ] && [ "$n" != lib ] && [ "$n" != run ] || { echo "no device check $n (--list)" >&2; exit 64; }
done
final=${OUT:-/tmp/out}
mkdir -p "$final"
table=()
failed=0
for n in "$@"; do
  n=$(basename "$n" .sh)
  out=$final/$n
  rm -rf "$out" && mkdir -p "$out"
  echo "=== $n (output in $out)"
  t0=$(date +%s)
  if [ -n "${CHECK_TIMEOUT_S:-}" ]; then
    OUT=$out timeout -k 30 "$CHECK_TIMEOUT_S" bash "$here/$n.sh" 2>&1 | tee "$out/stdout.txt"
  else
    OUT=$out bash "$here/$n.sh" 2>&1 | tee "$out/stdout.txt"
  fi
  rc=${PIPESTATUS[0]}
  case $rc in
    0) result=pass ;;
    77) result=skipped ;;
    124|137) result=timeout; failed=1 ;;
    *) result=FAIL; failed=1 ;;
  esac
  table+=("$(printf '%-30s %-8s %4s %6s s  %s' "$n" "$result" "$rc" "$(( $(date +%s) - t0 ))" "$out")")
done
{
  printf '%-30s %-8s %4s %8s  %s\n' check result exit seconds output
  printf '%s\n' "${table[@]}"
} | tee "$final/device_checks.txt"
# A single skipped check is reported as skipped (ctest's SKIP_RETURN_CODE); several are not a failure.
[ $# = 1 ] && [ "$result" = skipped ] && exit 77
exit $failed
