#include "deviceplugin/resource_pool.h"

#include <algorithm>
#include <set>

#include "common/files.h"
#include "deviceplugin/selectors.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr char kContainerDir[] = "/dev/infiniband/";

// Maps a node path under dev_root to the same node under host_dev_root.
std::string HostPathOf(const rdma::CharDevice& dev, const std::string& dev_root,
                       const std::string& host_dev_root) {
  std::string root = dev_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (dev.dev_path.compare(0, root.size(), root) == 0 &&
      (dev.dev_path.size() == root.size() || dev.dev_path[root.size()] == '/')) {
    return JoinPath(host_dev_root, dev.dev_path.substr(root.size()));
  }
  return JoinPath(host_dev_root, std::string("infiniband/") + dev.name);
}

}  // namespace

std::string EnvPrefixFor(const std::string& resource_name) {
  std::string out = "RDMASHARE_";
  for (char c : resource_name) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    bool ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  return out + "_";
}

std::vector<DeviceNode> BuildDeviceNodes(const std::vector<rdma::RdmaDevice>& devices,
                                         const std::optional<rdma::CharDevice>& rdma_cm,
                                         bool include_issm, const std::string& dev_root,
                                         const std::string& host_dev_root) {
  std::vector<DeviceNode> nodes;
  std::set<std::string> seen;
  auto add = [&](const rdma::CharDevice& dev) {
    if (!dev.present || !seen.insert(dev.name).second) return;
    nodes.push_back(
        DeviceNode{kContainerDir + dev.name, HostPathOf(dev, dev_root, host_dev_root), "rw"});
  };
  for (const rdma::RdmaDevice& d : devices) {
    if (!d.usable()) continue;
    add(*d.uverbs);
    for (const rdma::RdmaPort& p : d.ports) {
      if (p.umad) add(*p.umad);
      if (include_issm && p.issm) add(*p.issm);
    }
  }
  if (!nodes.empty() && rdma_cm) add(*rdma_cm);
  return nodes;
}

ResourcePool::ResourcePool(ResourceConfig config, std::string dev_root, std::string host_dev_root,
                           std::string cli_host_path)
    : config_(std::move(config)),
      full_name_(config_.FullName()),
      dev_root_(std::move(dev_root)),
      host_dev_root_(std::move(host_dev_root)),
      cli_host_path_(std::move(cli_host_path)),
      current_(std::make_shared<PoolSnapshot>()) {}

bool ResourcePool::Update(const rdma::NodeInventory& inventory) {
  auto next = std::make_shared<PoolSnapshot>();
  next->devices = SelectDevices(config_, inventory);
  std::set<int64_t> numa;
  std::string ibdevs, netdevs;
  for (const rdma::RdmaDevice& d : next->devices) {
    if (d.numa_node >= 0) numa.insert(d.numa_node);
    if (d.usable()) {
      ibdevs += (ibdevs.empty() ? "" : ",") + d.ibdev;
      for (const std::string& n : d.netdevs) netdevs += (netdevs.empty() ? "" : ",") + n;
    }
  }
  const int total = static_cast<int>(next->devices.size());
  const ResourceHealth health = EvaluateHealth(config_, next->devices);
  const int healthy_count = health.healthy_count;
  next->healthy = health.healthy;
  next->health_cause = health.cause;
  if (config_.topology) next->numa_nodes.assign(numa.begin(), numa.end());
  next->nodes = BuildDeviceNodes(next->devices, inventory.rdma_cm, config_.include_issm, dev_root_,
                                 host_dev_root_);
  if (config_.mount_cli) next->cli_host_path = cli_host_path_;
  if (!ibdevs.empty()) {
    const std::string prefix = EnvPrefixFor(config_.resource_name);
    next->envs = {{prefix + "IBDEVS", ibdevs}, {prefix + "NETDEVS", netdevs}};
  }

  std::shared_ptr<const PoolSnapshot> prev;
  {
    absl::MutexLock lock(&mu_);
    prev = current_;
    if (total > 0 || !prev->ids.empty()) {
      next->ids.reserve(config_.rdma_hca_max);
      for (int i = 0; i < config_.rdma_hca_max; ++i) next->ids.push_back(std::to_string(i));
    }
    if (total == 0 && !prev->ids.empty()) next->health_cause = "all selected HCAs are gone";
    if (prev->version != 0 && prev->SameContent(*next)) return false;
    next->version = prev->version + 1;
    current_ = next;
  }
  if (prev->version != 0 && !next->ids.empty() &&
      (prev->healthy != next->healthy || prev->ids.empty())) {
    if (next->healthy) {
      spdlog::info("resource={} Healthy: {} of {} HCAs usable", full_name_, healthy_count, total);
    } else {
      spdlog::warn("resource={} Unhealthy ({} policy): {}", full_name_,
                   config_.health_policy == HealthPolicy::kAll ? "all" : "any", next->health_cause);
    }
  }
  return true;
}

std::shared_ptr<const PoolSnapshot> ResourcePool::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

std::shared_ptr<const PoolSnapshot> ResourcePool::WaitForNewer(
    uint64_t seen_version, std::chrono::milliseconds timeout) const {
  absl::MutexLock lock(&mu_);
  const uint64_t kicks = kicks_;
  auto ready = [this, seen_version, kicks]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shut_down_ || kicks_ != kicks || current_->version > seen_version;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), absl::FromChrono(timeout));
  if (shut_down_ || current_->version <= seen_version) return nullptr;
  return current_;
}

void ResourcePool::Kick() {
  absl::MutexLock lock(&mu_);
  ++kicks_;
}

void ResourcePool::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

bool ResourcePool::is_shut_down() const {
  absl::MutexLock lock(&mu_);
  return shut_down_;
}

absl::Status ResourcePool::CheckIds(const PoolSnapshot& snapshot,
                                    const std::vector<std::string>& ids,
                                    const std::string& resource) {
  for (const std::string& id : ids) {
    if (std::find(snapshot.ids.begin(), snapshot.ids.end(), id) == snapshot.ids.end()) {
      return absl::InvalidArgumentError(
          fmt::format("resource {}: unknown device ID \"{}\" (this resource advertises {} units)",
                      resource, id, snapshot.ids.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace rdmashare::deviceplugin
