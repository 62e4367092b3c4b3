#!/usr/bin/env bash
# Checks (default) or applies (--fix) clang-format on every C++ source we own.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.h' '*.cc' | grep -v '^build')
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! diff -q <(clang-format "$f") "$f" >/dev/null; then
    echo "format: $f differs from clang-format (run tools/format.sh --fix)"
    bad=1
  fi
done
((bad == 0)) && echo "format: ${#files[@]} files clean"
exit $bad
