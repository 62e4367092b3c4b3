#!/usr/bin/env bash
# The README's first command: set up (packages + build), then run rdmashare-dp on a simulated
# 8-rail node against a fake kubelet and show what kubelet sees. Needs root (mknod for the fake
# /dev/infiniband nodes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec build/tools/demo/rdmashare-demo
