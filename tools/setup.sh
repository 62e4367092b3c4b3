#!/usr/bin/env bash
# Installs every Debian 12 package rdmashare needs (idempotent, non-interactive) and builds.
#
#   tools/setup.sh                 install + configure + build into build/ (RelWithDebInfo)
#   tools/setup.sh --asan          ... into build-asan/ with AddressSanitizer + UBSan (clang; the
#                                  libFuzzer targets are built there too)
#   tools/setup.sh --tsan          ... into build-tsan/ with ThreadSanitizer, only the test
#                                  binaries that do not link gRPC (and what they run)
#   tools/setup.sh --deps-only     install packages only
#
# Must run as root for the package install (it is skipped when everything is present).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang clang-format clang-tidy libclang-rt-14-dev
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libabsl-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libudev-dev
  libibverbs-dev rdma-core libnl-3-dev libnl-route-3-dev
  libgtest-dev libgmock-dev libssl-dev zlib1g-dev libc-ares-dev libre2-dev
  etcd-server etcd-client podman runc busybox-static containernetworking-plugins
  iproute2 iputils-ping procps kmod jq yamllint openssl
)

mode=build
build_dir=build
cmake_args=()
cmake_env=()
for arg in "$@"; do
  case "$arg" in
    # clang, with coverage hooks in every library (fuzzer-no-link): the same tree then also
    # builds the libFuzzer targets (tools/fuzz.sh), and clang's -Wthread-safety checks the
    # ABSL_GUARDED_BY annotations of everything it compiles.
    --asan) build_dir=build-asan; cmake_env=(CC=clang CXX=clang++)
            cmake_args+=(-DRDMASHARE_SANITIZE=ON -DRDMASHARE_BENCHMARKS=OFF
                         -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
                         -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link) ;;
    --tsan) build_dir=build-tsan; cmake_args+=(-DRDMASHARE_TSAN=ON -DRDMASHARE_BENCHMARKS=OFF) ;;
    --release) build_dir=build-release; cmake_args+=(-DCMAKE_BUILD_TYPE=Release -DRDMASHARE_FAILPOINTS=OFF) ;;
    --deps-only) mode=deps ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# kubectl (for `kubectl kustomize` in the manifest tests): Debian's kubernetes-client, unless a
# kubectl from another package is already installed (they conflict).
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: need root to install packages (run with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ $mode == deps ]] && exit 0

jobs=$(nproc)
if [[ ! -f $build_dir/build.ninja ]]; then
  env "${cmake_env[@]}" cmake -S . -B "$build_dir" -G Ninja "${cmake_args[@]}" >/dev/null
fi
if [[ $build_dir == build-tsan ]]; then
  # Test executables whose link line (and order-only dependencies, i.e. the binaries they run)
  # name neither gRPC nor rs_api nor rdmashare-dp: Debian's gRPC is not built with TSan.
  # Left out as well: the tests of single-threaded units (parsers and their corpus replays, the
  # plugins' input hardening, the podman runs of the one-threaded CNI binaries), which have no
  # race to find; the regular and the ASan trees run them.
  single_threaded='_replay_test$|^(dp_config|dp_selectors|cni_protocol|cni_macvlan_config|rdma_gid_table|cni_podman|cni_hostile_json|cni_hardening|fakenode)_test$'
  mapfile -t targets < <(awk 'BEGIN { RS = "" }
    /^build [^ ]*_test: CXX_EXECUTABLE_LINKER__/ && !/grpc|librs_api|rdmashare-dp/ {
      split($2, p, "/"); t = p[length(p)]; sub(":$", "", t); print t }' "$build_dir/build.ninja" |
    grep -Ev "$single_threaded")
  echo "setup: ThreadSanitizer build of ${#targets[@]} test binaries: ${targets[*]}"
  cmake --build "$build_dir" -j "$jobs" --target "${targets[@]}"
else
  cmake --build "$build_dir" -j "$jobs"
fi
