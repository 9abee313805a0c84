#!/usr/bin/env bash
# The C++ sources' layout is clang-format's (Debian's clang-format 14, .clang-format at the root).
#   scripts/format.sh           formats every file under src/ in place
#   scripts/format.sh --check   changes nothing; lists the files that are not formatted and fails
#                               (ctest `cpp_format`, label lint)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format not found (apt-get install clang-format)" >&2; exit 69; }
mapfile -t files < <(find src -name '*.cc' -o -name '*.h' | sort)
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'not formatted (run scripts/format.sh): %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files formatted"
else
  clang-format -i "${files[@]}"
fi
