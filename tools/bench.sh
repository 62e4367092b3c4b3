#!/usr/bin/env bash
# Builds the release configuration and runs the benchmark programs, printing their figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --release
for b in build-release/tests/bench/*/*_bench; do
  [[ -x $b ]] || continue
  echo "=== $b"
  "$b"
done
