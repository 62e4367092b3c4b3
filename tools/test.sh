#!/usr/bin/env bash
# Sets up (packages + build) and runs the whole test suite with ctest.
#
#   tools/test.sh            regular build (build/)
#   tools/test.sh --asan     AddressSanitizer + UBSan build (build-asan/)
#   tools/test.sh --tsan     ThreadSanitizer build (build-tsan/) of the tests that do not link gRPC
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
    --tsan) setup_args+=(--tsan); build_dir=build-tsan ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
bash tools/setup.sh "${setup_args[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Tests fork/exec plugins from multi-threaded processes: let the children run.
export TSAN_OPTIONS=${TSAN_OPTIONS:-second_deadlock_stack=1:die_after_fork=0:suppressions=$PWD/cmake/tsan.supp}
cd "$build_dir"
if [[ $build_dir == build-tsan ]]; then
  # Only some test binaries are built in this tree; the others show up as <target>_NOT_BUILT.
  ctest_args=(-E '_NOT_BUILT$' "${ctest_args[@]}")
fi
ctest --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
