#!/usr/bin/env bash
# On the GPU machine: real LLM-written KernelBench level-2/3 candidates through `kbrun batch`.
# The corpus (../shared/corpus/cuda-l1-h100: <N_Name>.ref.py references, <N_Name>.cand.py
# candidates, reported.csv, SOURCE.txt) stays outside the repository; to travel to the device it
# is copied into the ignored folder .corpus/ and carried with .devpkg:
#   CORPUS=../shared/corpus/cuda-l1-h100 tools/pack_device.sh   (.devpkg/ and .corpus/cuda-l1-h100/,
#                                                                both listed in .git/info/exclude)
#   device call: carry [".devpkg", ".corpus"], command: LEVEL=2 bench/corpus_bench.sh
# bench/make_corpus_replay.py turns each pair with a candidate into a problem (the .ref.py: the
# reference the candidate was written against, older than KernelBench's current files) and a
# replay answer; the batch runs them with the replay provider, 1 sample, 1 attempt, warm workers.
# One call runs for at most BENCH_BUDGET_S (default 420 s), then stops the batch with SIGINT
# (kbrun saves its state, exit 130); the next call with the same settings resumes it, in
# results/corpus/level<L> (ignored by git; a warm device machine keeps it between calls). On a fresh
# machine, unpack the returned corpus_results_level<L>.tgz into results/corpus/ here and add
# "results/corpus" to carry (never carry it when it is not here: the device tool then deletes the
# machine's copy). Repeat until the table says "finished".
# Prints bench/corpus_table.py's table (status and failure categories, lazy builds, GPU-lane time
# spent building, compile seconds, makespan vs floor, internal errors); $OUT gets the table, the
# per-candidate rows (corpus_rows_level<L>.md), the batch log and the results (no compile cache).
# Knobs (env): LEVEL (2 or 3), FIRST, LAST (problem numbers, default all), COUNT (only the first
# COUNT unfinished pairs from FIRST), BENCH_BUDGET_S, CORRECT_TRIALS, PERF_TRIALS (kbrun's
# defaults 5 and 100 when unset), ALLOW_LIBRARY=1 (--allow-library-kernels: most of the corpus is
# plain PyTorch, rejected as uses_library_only otherwise), DEVICE (cuda), EXTRA (more batch flags),
# and for a dry run on the CPU: KB (kbrun binary), CORPUS, RESULTS_ROOT.
set -uo pipefail
cd "$(dirname "$0")/.."
KB=${KB:-$PWD/.devpkg/kbrun}
CORPUS=${CORPUS:-.corpus/cuda-l1-h100}
LEVEL=${LEVEL:-2}
DEVICE=${DEVICE:-cuda}
BUDGET=${BENCH_BUDGET_S:-420}
FINAL=${OUT:-/tmp/out}
ROOT=${RESULTS_ROOT:-results/corpus}
R=$ROOT/level$LEVEL
PREP=$ROOT/prep
mkdir -p "$ROOT" "$FINAL"
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }

case "$LEVEL" in 2|3) ;; *) echo "LEVEL must be 2 or 3" >&2; exit 64 ;; esac
[ -d "$CORPUS/level$LEVEL" ] || { echo "no corpus at $CORPUS/level$LEVEL (see this script's header)" >&2; exit 66; }
[ -x "$KB" ] || { echo "no kbrun at $KB (tools/pack_device.sh)" >&2; exit 66; }

# The problems and answers are rebuilt every call (a few ms); the results and the cache are kept.
rm -rf "$PREP/problems/level$LEVEL" "$PREP/replay/level$LEVEL"
python3 bench/make_corpus_replay.py "$CORPUS" "$LEVEL" "$PREP" > "$FINAL/corpus_prep_level$LEVEL.txt"
head -1 "$FINAL/corpus_prep_level$LEVEL.txt"

# The range: FIRST..LAST, or the first COUNT pairs from FIRST that the results do not hold finished.
read -r FIRST LAST < <(python3 - "$PREP/problems/level$LEVEL" "$R/summary.json" "${FIRST:-1}" "${LAST:-100000}" \
                         "${COUNT:-0}" <<'PY'
import json, os, re, sys
folder, summary, first, last, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
numbers = sorted(int(m.group(1)) for m in (re.match(r"(\d+)_.*\.py$", f) for f in os.listdir(folder)) if m)
numbers = [n for n in numbers if first <= n <= last]
# Finished: a best result on disk (one sample, one attempt); summary.json lists only the last range.
results = os.path.dirname(summary)
done = {int(d.split("_")[0]) for d in (os.listdir(results) if os.path.isdir(results) else [])
        if re.match(r"\d+_", d) and os.path.exists(os.path.join(results, d, "best_result.json"))}
if count > 0:
    numbers = [n for n in numbers if n not in done][:count]
print(numbers[0] if numbers else first, numbers[-1] if numbers else first - 1)
PY
)
if [ "$LAST" -lt "$FIRST" ]; then
  echo "level $LEVEL: nothing left to run in the range asked for"
else
  n=$(ls "$PREP/problems/level$LEVEL" | awk -F_ -v a="$FIRST" -v b="$LAST" '$1 >= a && $1 <= b' | wc -l)
  echo "level $LEVEL: problems $FIRST..$LAST ($n pairs; finished ones are skipped), device $DEVICE, $(nproc) cores," \
       "budget ${BUDGET}s, results in $R"
  left=$(( BUDGET - $(elapsed) ))
  # SIGINT at the budget: kbrun saves its state and exits 130; a rerun resumes.
  timeout -s INT -k 30 "$left" "$KB" batch "$FIRST" "$LAST" --problems-dir "$PREP/problems" --level "$LEVEL" \
    --results "$R" --replay-dir "$PREP/replay/level$LEVEL" --samples 1 --attempts 1 --target-speedup 0 \
    --device "$DEVICE" --warm-worker all --compile-cache "$ROOT/cache" \
    ${ALLOW_LIBRARY:+--allow-library-kernels} ${CORRECT_TRIALS:+--correct-trials "$CORRECT_TRIALS"} \
    ${PERF_TRIALS:+--perf-trials "$PERF_TRIALS"} ${EXTRA:-} >> "$ROOT/batch_level$LEVEL.log" 2>&1
  rc=$?
  case $rc in
    124|130) echo "batch stopped at the budget after $(elapsed) s (exit $rc): state saved, run again to resume" ;;
    0) echo "batch ran to its end after $(elapsed) s" ;;
    *) echo "batch exit $rc after $(elapsed) s: see $FINAL/batch_level$LEVEL.log"; tail -5 "$ROOT/batch_level$LEVEL.log" ;;
  esac
fi

python3 bench/corpus_table.py --corpus "$CORPUS" --rows "$FINAL/corpus_rows_level$LEVEL.md" "$R" \
  | tee "$FINAL/corpus_table_level$LEVEL.txt"
cp "$ROOT/batch_level$LEVEL.log" "$FINAL/" 2>/dev/null
tar czf "$FINAL/corpus_results_level$LEVEL.tgz" -C "$ROOT" "level$LEVEL" 2>/dev/null
echo "bench done at $(elapsed) s"
