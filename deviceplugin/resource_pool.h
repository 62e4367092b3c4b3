// ResourcePool: one extended resource of the device plugin (e.g. spidernet.io/shared_cx5_gpu1)
// and the devices its selectors currently pick.
//
// The pool publishes immutable PoolSnapshots: every Update that changes what kubelet would see
// produces a new snapshot with a higher version and wakes the waiters (the ListAndWatch
// streams). Readers take a shared_ptr to the current snapshot and never hold the lock during I/O.
// Thread-safe: Update, Current and WaitForNewer may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "deviceplugin/config.h"
#include "rdma/device.h"

namespace rdmashare::deviceplugin {

// Where the rdmashare CLI appears in containers of resources with mountCli.
inline constexpr char kCliContainerPath[] = "/usr/local/bin/rdmashare";

// A device node to inject into a container (maps to v1beta1.DeviceSpec).
struct DeviceNode {
  std::string container_path;  // "/dev/infiniband/uverbs0"
  std::string host_path;       // "<host_dev_root>/infiniband/uverbs0"
  std::string permissions;     // "rw"

  bool operator==(const DeviceNode& o) const {
    return container_path == o.container_path && host_path == o.host_path &&
           permissions == o.permissions;
  }
};

// What kubelet sees of a pool at one moment. Immutable once published.
struct PoolSnapshot {
  // Increases by one with every published change; starts at 1.
  uint64_t version = 0;
  // Unit IDs "0".."N-1" (N = rdmaHcaMax), empty when no device matched.
  std::vector<std::string> ids;
  // Health of every unit, per the resource's healthPolicy: "any" = at least one selected HCA is
  // healthy (rdma::RdmaDevice::HealthProblem), "all" = every selected HCA is.
  bool healthy = false;
  // Why the units are Unhealthy ("" when healthy): "<ibdev>: <problem>; ..." or "all selected
  // HCAs are gone" / "no HCA matches the selectors".
  std::string health_cause;
  // Distinct NUMA nodes of the selected HCAs, ascending (empty when none is known or the
  // resource has "topology": false).
  std::vector<int64_t> numa_nodes;
  // Selected HCAs (inventory order).
  std::vector<rdma::RdmaDevice> devices;
  // Nodes Allocate injects: uverbs + umad of every usable HCA (issm when configured), rdma_cm
  // once.
  std::vector<DeviceNode> nodes;
  // Host path of the CLI to mount read-only at kCliContainerPath; empty = no mount.
  std::string cli_host_path;
  // Environment Allocate sets: RDMASHARE_<RESOURCE>_IBDEVS / _NETDEVS naming the usable HCAs
  // and their host netdevs, comma-separated (see EnvPrefixFor). Sorted by name.
  std::vector<std::pair<std::string, std::string>> envs;

  // Same content as `o` (versions aside).
  bool SameContent(const PoolSnapshot& o) const {
    return ids == o.ids && healthy == o.healthy && health_cause == o.health_cause &&
           numa_nodes == o.numa_nodes && devices == o.devices && nodes == o.nodes &&
           cli_host_path == o.cli_host_path && envs == o.envs;
  }
};

// "RDMASHARE_<RESOURCE>_": the resource name upper-cased, every other character than A-Z and
// 0-9 as '_' ("shared_cx5-gpu1" -> "RDMASHARE_SHARED_CX5_GPU1_").
std::string EnvPrefixFor(const std::string& resource_name);

// Builds the node list for `devices`: maps each present char device from `dev_root` to
// `host_dev_root` and to /dev/infiniband/<name> in the container.
std::vector<DeviceNode> BuildDeviceNodes(const std::vector<rdma::RdmaDevice>& devices,
                                         const std::optional<rdma::CharDevice>& rdma_cm,
                                         bool include_issm, const std::string& dev_root,
                                         const std::string& host_dev_root);

class ResourcePool {
 public:
  // `cli_host_path`: the rdmashare CLI on the host, mounted when the config has mountCli.
  ResourcePool(ResourceConfig config, std::string dev_root, std::string host_dev_root,
               std::string cli_host_path = "");

  const ResourceConfig& config() const { return config_; }
  // "<prefix>/<name>".
  const std::string& full_name() const { return full_name_; }

  // Recomputes the pool from a fresh inventory. Returns true when a new snapshot was published.
  // A pool that had HCAs and lost them all keeps its units, Unhealthy. Each health transition
  // is logged once, with its cause.
  bool Update(const rdma::NodeInventory& inventory) ABSL_LOCKS_EXCLUDED(mu_);

  // The current snapshot (never null; version 0 before the first Update).
  std::shared_ptr<const PoolSnapshot> Current() const ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until a snapshot newer than `seen_version` exists, Shutdown() is called, or
  // `timeout` passes. Returns the newer snapshot, or nullptr on timeout/shutdown.
  std::shared_ptr<const PoolSnapshot> WaitForNewer(uint64_t seen_version,
                                                   std::chrono::milliseconds timeout) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes every current waiter (they return nullptr) without publishing anything: a stopping
  // server uses it so its ListAndWatch handlers notice at once instead of at their next poll.
  void Kick() ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes every waiter; later waits return immediately with nullptr.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);
  bool is_shut_down() const ABSL_LOCKS_EXCLUDED(mu_);

  // Validates unit IDs for Allocate: InvalidArgument naming the first unknown ID.
  static absl::Status CheckIds(const PoolSnapshot& snapshot, const std::vector<std::string>& ids,
                               const std::string& resource);

 private:
  const ResourceConfig config_;
  const std::string full_name_;
  const std::string dev_root_;
  const std::string host_dev_root_;
  const std::string cli_host_path_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const PoolSnapshot> current_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t kicks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rdmashare::deviceplugin
