#!/usr/bin/env bash
# The demo: a whole batch (generate -> compile -> check -> time -> reflect -> best) on the
# project's own example problems, with the replay provider serving recorded LLM answers.
# No API key, no GPU: candidates are C++ CPU extensions built with load_inline.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
results=${1:-results/demo}
rm -rf "$results"
"$build/kbrun" batch --problems-dir examples/problems --results "$results" \
  --provider replay --replay-dir examples/responses --device cpu --samples 1 --perf-trials 20
"$build/kbrun" report "$results"
echo
echo "Demo results: $results (detailed_report.txt, one folder per problem)"
