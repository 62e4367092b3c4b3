// RDMA device discovery from sysfs and /dev.
//
// DeviceScanner is the interface the device plugin, the CNI and the CLI depend on;
// SysfsDeviceScanner is the real implementation reading <sys_root> and <dev_root> of the
// HostPaths it is given (the real /sys and /dev in production, fake trees in tests).
//
// Threading: Scan() may be called from any thread, concurrently. The scanner owns only the set
// of problems it has already warned about (guarded by a mutex), so each distinct problem is
// logged once while it persists instead of on every rescan.
#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/host_paths.h"
#include "rdma/device.h"

namespace rdmashare::rdma {

// Source of the node's RDMA inventory.
class DeviceScanner {
 public:
  virtual ~DeviceScanner();
  // Returns every RDMA device of the node, sorted by ibdev. A node without RDMA is an empty
  // inventory, not an error.
  virtual absl::StatusOr<NodeInventory> Scan() = 0;
};

// Reads <sys_root>/class/infiniband/* and friends:
//  - parent PCI function (address, ids, class, driver, numa_node) through the ibdev's `device`
//    link; ibdevs under devices/virtual have no PCI parent;
//  - netdevs from the PCI function's net/ directory (non-PCI parents: ports/N/gid_attrs/ndevs);
//  - ports (state, phys_state, link_layer, GID table size);
//  - char devices uverbsN (class/infiniband_verbs), umadN/issmN per port (class/infiniband_mad),
//    the global rdma_cm (class/misc/rdma_cm), numbers from their sysfs `dev` files (or a stat of
//    the /dev node when sysfs has none), `present` when <dev_root>/infiniband/<name> is a char
//    device with that number.
// A malformed device (garbage attribute, truncated file, dangling `device` link, symlink loop)
// is skipped with one warning; the others are still returned. Missing umad/issm/rdma_cm or a
// bad /dev node are warned about but keep the device (its `present` flags tell).
class SysfsDeviceScanner final : public DeviceScanner {
 public:
  explicit SysfsDeviceScanner(HostPaths paths);

  absl::StatusOr<NodeInventory> Scan() override;

  // The problems found by the latest Scan (each logged once when it first appeared), sorted.
  // For the CLI doctor and for tests.
  std::vector<std::string> Warnings() const;

 private:
  // Logs the problems in `current` that were not in the previous scan, then remembers
  // `current` as the active set.
  void Report(std::vector<std::string> current);

  const HostPaths paths_;
  mutable absl::Mutex mu_;
  std::vector<std::string> active_warnings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rdmashare::rdma
