// The OCI runtime wrapper the podman tests run containers with: runc with the process rlimits
// removed from the bundle's config.json and from `runc exec` process files, because this
// kernel refuses some of the limits podman 4.3 asks for (and crun fails outright). Header-only;
// write it to a file, chmod +x, and pass it as `podman --runtime <path>`.
#pragma once

namespace rdmashare::testing {

inline constexpr char kRuncWrapperScript[] = R"(#!/bin/sh
strip() { [ -f "$1" ] && jq "$2" "$1" > "$1.tmp" && mv "$1.tmp" "$1"; }
prev=""
for a in "$@"; do
  case "$prev" in
    --bundle|-b) strip "$a/config.json" 'del(.process.rlimits)' ;;
    --process|-p) strip "$a" 'del(.rlimits)' ;;
  esac
  case "$a" in
    --bundle=*) strip "${a#--bundle=}/config.json" 'del(.process.rlimits)' ;;
    --process=*) strip "${a#--process=}" 'del(.rlimits)' ;;
  esac
  prev="$a"
done
exec runc "$@"
)";

}  // namespace rdmashare::testing
