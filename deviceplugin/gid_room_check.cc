#include "deviceplugin/gid_room_check.h"

#include <map>
#include <utility>

#include "fmt/format.h"
#include "rdma/gid_table.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

void GidRoomCheck::Check(const std::vector<const ResourcePool*>& pools) {
  // Pods per (ibdev, port): every resource selecting the HCA can place rdmaHcaMax pods on it.
  struct PortUse {
    int pods = 0;
    int size = 0;
    std::vector<std::string> resources;
  };
  std::map<std::pair<std::string, int>, PortUse> ports;
  for (const ResourcePool* pool : pools) {
    auto snap = pool->Current();
    for (const auto& d : snap->devices) {
      for (const auto& p : d.ports) {
        PortUse& u = ports[{d.ibdev, p.number}];
        u.pods += pool->config().rdma_hca_max;
        u.size = p.gid_table_size;
        u.resources.push_back(pool->full_name());
      }
    }
  }
  std::set<std::string> active;
  for (const auto& [key, u] : ports) {
    if (u.size == 0) continue;
    rdma::GidRoom room = rdma::ReadGidRoom(sys_root_, key.first, key.second);
    if (u.pods <= room.pods_fit()) continue;
    std::string names;
    for (const auto& r : u.resources) names += (names.empty() ? "" : ", ") + r;
    std::string msg = fmt::format(
        "ibdev={} port={}: resources {} can place {} pods; {}; pods beyond {} will fail to get "
        "a RoCE GID",
        key.first, key.second, names, u.pods, rdma::DescribeGidRoom(room), room.pods_fit());
    active.insert(msg);
    if (warned_.count(msg) == 0) spdlog::warn("{}", msg);
  }
  warned_ = std::move(active);
}

}  // namespace rdmashare::deviceplugin
