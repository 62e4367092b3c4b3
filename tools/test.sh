#!/usr/bin/env bash
# Sets up (packages + build) and runs the whole test suite with ctest.
#
#   tools/test.sh            regular build (build/)
#   tools/test.sh --asan     AddressSanitizer + UBSan build (build-asan/)
#
# Extra arguments after "--" go to ctest (e.g. -- -R Config).
set -euo pipefail
cd "$(dirname "$0")/.."
setup_args=()
ctest_args=()
build_dir=build
while (($#)); do
  case "$1" in
    --asan) setup_args+=(--asan); build_dir=build-asan ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
bash tools/setup.sh "${setup_args[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build_dir"
ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
