// HostPaths: every operating-system root rdmashare reads or writes, gathered in one value.
//
// Only `main` functions build one from flags; everything else receives it by constructor, so
// tests point the real code at fake trees. Plain value type, freely copyable, no threading
// concerns.
#pragma once

#include <string>

namespace rdmashare {

struct HostPaths {
  // Root of sysfs as this process sees it ("/sys").
  std::string sys_root = "/sys";
  // Root of the device tree where this process finds the char device nodes ("/dev").
  std::string dev_root = "/dev";
  // Root of the device tree as the container runtime on the host sees it. DeviceSpec.host_path
  // is opened by the runtime, not by us, so it is built from this root.
  std::string host_dev_root = "/dev";
  // Root of procfs ("/proc").
  std::string proc_root = "/proc";
  // Kubelet state directory, holding device-plugins/ and plugins_registry/.
  std::string kubelet_dir = "/var/lib/kubelet";
  // Directory of the local IPAM store.
  std::string ipam_data_dir = "/var/lib/cni/networks";
  // Root-only runtime state (lock files), on tmpfs so it goes with a reboot.
  std::string run_dir = "/run/rdmashare";

  bool operator==(const HostPaths& other) const {
    return sys_root == other.sys_root && dev_root == other.dev_root &&
           host_dev_root == other.host_dev_root && proc_root == other.proc_root &&
           kubelet_dir == other.kubelet_dir && ipam_data_dir == other.ipam_data_dir &&
           run_dir == other.run_dir;
  }
};

}  // namespace rdmashare
