#!/usr/bin/env bash
# Builds the libFuzzer targets in the ASan + UBSan tree (build-asan/, clang, coverage in every
# library; tools/setup.sh --asan) and runs each for a bounded time, one target per core at a
# time, over a scratch copy of its seed corpus. Prints the executions reached per target; fails when any target crashes (the
# reproducer is kept under build-asan/artifacts/).
#
#   tools/fuzz.sh [seconds-per-target] [target-name-filter]     (default 10 s, all targets)
#
# Targets: fuzz/<name>_fuzzer.cc (corpus fuzz/corpus/<name>) plus the older ones beside their code
# (rdma/fuzz netns reply, cni/ipam/fuzz netconf). A crash found: fix it, add the reproducer to the
# target's corpus (crash_<what>), rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
filter=${2:-}
# The ASan + UBSan tree (tools/setup.sh --asan: clang, coverage hooks in every library), which
# builds the fuzzers beside the tests.
build_dir=build-asan

# name -> corpus directory (relative to the repo) ; binary names are fuzz_<name> unless listed.
declare -A corpus=(
  [rdma_netns_reply_fuzzer]=rdma/fuzz/corpus/netns_reply
  [cni_netconf_fuzzer]=cni/ipam/fuzz/corpus
)
for f in fuzz/*_fuzzer.cc; do
  name=$(basename "$f" _fuzzer.cc)
  corpus[fuzz_$name]=fuzz/corpus/$name
done
targets=()
for t in $(printf '%s\n' "${!corpus[@]}" | sort); do
  [[ -z $filter || $t == *"$filter"* ]] && targets+=("$t")
done
((${#targets[@]})) || { echo "fuzz.sh: no target matches '$filter'" >&2; exit 2; }

if [[ ! -f $build_dir/build.ninja ]]; then
  bash tools/setup.sh --asan
fi
ninja -C "$build_dir" -j "$(nproc)" "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work=$build_dir/fuzz-run
mkdir -p "$work" "$build_dir/artifacts"
# One target per core at a time (each libFuzzer run is single-threaded): a target's run writes
# its log and a one-line report under $work; the summary is printed in target order.
run_target() {
  local t=$1 bin run_corpus log rc=0 execs cov
  bin=$(find "$build_dir/" -type f -name "$t" -perm -u+x | head -n 1)
  if [[ -z $bin ]]; then
    echo "fuzz.sh: binary $t not found in $build_dir" >&2
    printf '%-28s %12s execs  cov %6s  %s\n' "$t" "?" "?" "MISSING" >"$work/$t.report"
    return 1
  fi
  run_corpus=$work/$t
  rm -rf "$run_corpus"
  mkdir -p "$run_corpus"
  cp -r "${corpus[$t]}/." "$run_corpus/"
  log=$work/$t.log
  echo "=== $t: ${seconds}s over $(ls "$run_corpus" | wc -l) seeds"
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build_dir/artifacts/$t-" "$run_corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  printf '%-28s %12s execs  cov %6s  %s\n' "$t" "${execs:-?}" "${cov:-?}" \
    "$([[ $rc -eq 0 ]] && echo ok || echo "CRASH (rc $rc, see $log)")" >"$work/$t.report"
  if [[ $rc -ne 0 ]]; then
    grep -E 'ERROR|SUMMARY|fuzz invariant|Test unit written' "$log" | head -n 8 >&2 || true
    return 1
  fi
}
parallel=$(nproc)
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  rm -f "$work/$t.report"
  run_target "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do
  grep -q ' ok$' "$work/$t.report" 2>/dev/null || failed+=("$t")
done
echo "=== fuzz summary (${seconds}s per target)"
for t in "${targets[@]}"; do cat "$work/$t.report" 2>/dev/null || echo "$t: no report"; done
if ((${#failed[@]})); then
  echo "fuzz.sh: crashed or missing: ${failed[*]}" >&2
  exit 1
fi
