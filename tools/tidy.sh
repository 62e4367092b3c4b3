#!/usr/bin/env bash
# clang-tidy with the checked-in .clang-tidy over every production translation unit (the .cc
# files of the tree that are not tests, fuzz targets or benchmarks), one per core at a time.
# Any finding fails the run (CI's tidy stage). Headers of the tree are checked through the
# sources that include them (.clang-tidy's HeaderFilterRegex).
#
#   tools/tidy.sh [build-dir] [file-filter]   (default build-asan/, the clang tree of CI's ASan
#                                              stage; build/ works as well)
#
# A finding that is wrong for this code gets a NOLINT(<check>) with the reason beside it, or the
# check leaves .clang-tidy with the reason in the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build-asan}
filter=${2:-}
[[ -f $build_dir/compile_commands.json ]] || {
  echo "tidy: $build_dir/compile_commands.json missing (run tools/setup.sh first)" >&2
  exit 2
}
command -v clang-tidy >/dev/null || { echo "tidy: clang-tidy missing (tools/setup.sh installs it)" >&2; exit 2; }
# Only what this tree compiles (its compile commands name the flags to check with).
mapfile -t files < <(git ls-files '*.cc' | grep -Ev '(_test\.cc$|(^|/)fuzz/|^tests/|/testing/|bench)' |
  grep -E "${filter:-.}" | while read -r f; do
    grep -q "\"file\": \"$PWD/$f\"" "$build_dir/compile_commands.json" && echo "$f"; done)
((${#files[@]})) || { echo "tidy: no file matches '$filter'" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'clang-tidy -p "$1" --quiet --warnings-as-errors="*" "$2" >"$3/$(echo "$2" | tr / _).log" 2>&1 ||
   echo "$2" >>"$3/failed"' _ "$build_dir" {} "$out"
if [[ -s $out/failed ]]; then
  while read -r f; do
    echo "tidy: $f:"
    grep -E 'warning:|error:' "$out/$(echo "$f" | tr / _).log" | sort -u
  done <"$out/failed"
  echo "tidy: ${#files[@]} files, $(wc -l <"$out/failed") with findings ($(( $(date +%s) - start )) s)"
  exit 1
fi
echo "tidy: ${#files[@]} files, no findings ($(( $(date +%s) - start )) s)"
