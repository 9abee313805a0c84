#!/usr/bin/env bash
# clang-tidy (Debian's clang-tidy 14, .clang-tidy at the root: bugs and needless copies) on C++
# sources, with the build's compile_commands.json.
#   scripts/tidy.sh [--build DIR] FILE...     those files
#   scripts/tidy.sh [--build DIR] --since REV the .cc files changed since REV (ctest `cpp_tidy`:
#                                             since HEAD~1, the newest commit's)
# A whole-tree run takes ~8 s a file; CI checks what the newest commit changed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [ "${1:-}" = --build ]; then build=$2; shift 2; fi
command -v clang-tidy >/dev/null || { echo "tidy.sh: clang-tidy not found (apt-get install clang-tidy)" >&2; exit 69; }
[ -f "$build/compile_commands.json" ] || { echo "tidy.sh: no $build/compile_commands.json (configure first)" >&2; exit 66; }
if [ "${1:-}" = --since ]; then
  if ! git rev-parse -q --verify "$2^{commit}" >/dev/null 2>&1; then
    echo "tidy.sh: no commit $2 here (a shallow clone?): nothing to compare with"; exit 0
  fi
  mapfile -t files < <(git diff --name-only --diff-filter=AM "$2" -- 'src/*.cc' | sort)
else
  files=("$@")
fi
if [ ${#files[@]} -eq 0 ]; then echo "tidy.sh: no C++ source to check"; exit 0; fi
echo "tidy.sh: ${#files[@]} files: ${files[*]}"
clang-tidy -p "$build" --quiet "${files[@]}" 2>/dev/null
