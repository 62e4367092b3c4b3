#include "rdma/ibverbs_reader.h"

#include <infiniband/verbs.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "fmt/format.h"

namespace rdmashare::rdma {
namespace {

// rdma/verbs.h translates rdma-core's enum values without including its header.
static_assert(IBV_PORT_DOWN == 1 && IBV_PORT_ACTIVE == 4 && IBV_PORT_ACTIVE_DEFER == 5);
static_assert(IBV_LINK_LAYER_UNSPECIFIED == 0 && IBV_LINK_LAYER_INFINIBAND == 1 &&
              IBV_LINK_LAYER_ETHERNET == 2);
static_assert(IBV_GID_TYPE_IB == 0 && IBV_GID_TYPE_ROCE_V1 == 1 && IBV_GID_TYPE_ROCE_V2 == 2);
static_assert(sizeof(ibv_gid::raw) == 16);

struct DeviceListDeleter {
  void operator()(ibv_device** list) const { ibv_free_device_list(list); }
};
struct ContextDeleter {
  void operator()(ibv_context* ctx) const { ibv_close_device(ctx); }
};

std::string ErrnoText(int err) { return std::strerror(err < 0 ? -err : err); }

// The netdev name of `ifindex` in this process's network namespace, or "".
std::string IfName(uint32_t ifindex) {
  if (ifindex == 0) return "";
  char name[IF_NAMESIZE] = {};
  if (::if_indextoname(ifindex, name) == nullptr) return "";
  return std::string(name, strnlen(name, sizeof(name)));
}

// Fills dev.ports from an open context; returns the reason when a query fails.
std::string QueryDevice(ibv_context* ctx, VerbsDevice& dev) {
  ibv_device_attr attr{};
  if (int rc = ibv_query_device(ctx, &attr); rc != 0) {
    return "ibv_query_device: " + ErrnoText(rc);
  }
  int port_count = std::min<int>(attr.phys_port_cnt, IbverbsReader::kMaxPorts);
  size_t total_gids = 0;
  std::map<int, size_t> port_slot;
  for (int n = 1; n <= port_count; ++n) {
    ibv_port_attr pa{};
    if (int rc = ibv_query_port(ctx, static_cast<uint8_t>(n), &pa); rc != 0) {
      return fmt::format("ibv_query_port {}: {}", n, ErrnoText(rc));
    }
    VerbsPort port;
    port.number = n;
    port.state = VerbsPortStateName(pa.state);
    port.link_layer = VerbsLinkLayer(pa.link_layer);
    port.gid_tbl_len = pa.gid_tbl_len;
    total_gids += pa.gid_tbl_len > 0 ? static_cast<size_t>(pa.gid_tbl_len) : 0;
    port_slot[n] = dev.ports.size();
    dev.ports.push_back(std::move(port));
  }
  if (total_gids == 0) return "";
  if (total_gids > static_cast<size_t>(IbverbsReader::kMaxGidEntries)) {
    return fmt::format("GID tables hold {} entries, more than the {} read", total_gids,
                       IbverbsReader::kMaxGidEntries);
  }
  std::vector<ibv_gid_entry> entries(total_gids);
  ssize_t got = ibv_query_gid_table(ctx, entries.data(), entries.size(), 0);
  if (got < 0) return "ibv_query_gid_table: " + ErrnoText(static_cast<int>(got));
  for (size_t i = 0; i < static_cast<size_t>(got) && i < entries.size(); ++i) {
    const ibv_gid_entry& e = entries[i];
    auto slot = port_slot.find(static_cast<int>(e.port_num));
    if (slot == port_slot.end()) {
      return fmt::format("ibv_query_gid_table: entry {} names port {}, which the device lacks",
                         e.gid_index, e.port_num);
    }
    absl::StatusOr<VerbsGidType> type = VerbsGidTypeFromValue(e.gid_type);
    if (!type.ok()) {
      return fmt::format("ibv_query_gid_table: port {} GID {}: {}", e.port_num, e.gid_index,
                         std::string(type.status().message()));
    }
    VerbsGid gid;
    gid.index = static_cast<int>(e.gid_index);
    gid.gid = GidText(e.gid.raw);
    gid.type = *type;
    gid.ndev_ifindex = static_cast<int>(e.ndev_ifindex);
    gid.ndev = IfName(e.ndev_ifindex);
    dev.ports[slot->second].gids.push_back(std::move(gid));
  }
  for (VerbsPort& port : dev.ports) {
    std::sort(port.gids.begin(), port.gids.end(),
              [](const VerbsGid& a, const VerbsGid& b) { return a.index < b.index; });
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<VerbsDevice>> IbverbsReader::Devices() {
  int count = 0;
  errno = 0;
  std::unique_ptr<ibv_device*, DeviceListDeleter> list(ibv_get_device_list(&count));
  if (list == nullptr) {
    int err = errno;
    // libibverbs answers ENOSYS when the kernel has no verbs interface
    // (/sys/class/infiniband_verbs missing): no device can exist.
    if (err == ENOSYS) return std::vector<VerbsDevice>{};
    return absl::UnavailableError(
        fmt::format("libibverbs: ibv_get_device_list: {}", ErrnoText(err)));
  }
  if (count > kMaxDevices) {
    return absl::ResourceExhaustedError(
        fmt::format("libibverbs: ibv_get_device_list lists {} devices, more than the {} read",
                    count, kMaxDevices));
  }
  std::vector<VerbsDevice> out;
  for (int i = 0; i < count && list.get()[i] != nullptr; ++i) {
    ibv_device* device = list.get()[i];
    VerbsDevice dev;
    const char* name = ibv_get_device_name(device);
    dev.ibdev = name != nullptr ? std::string(name, strnlen(name, IBV_SYSFS_NAME_MAX)) : "";
    errno = 0;
    std::unique_ptr<ibv_context, ContextDeleter> ctx(ibv_open_device(device));
    if (ctx == nullptr) {
      dev.error = "ibv_open_device: " + ErrnoText(errno != 0 ? errno : ENODEV);
    } else {
      dev.error = QueryDevice(ctx.get(), dev);
      if (!dev.error.empty()) dev.ports.clear();
    }
    out.push_back(std::move(dev));
  }
  std::sort(out.begin(), out.end(),
            [](const VerbsDevice& a, const VerbsDevice& b) { return a.ibdev < b.ibdev; });
  return out;
}

}  // namespace rdmashare::rdma
