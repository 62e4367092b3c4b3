#include "rdma/verbs.h"

#include <algorithm>
#include <iterator>

#include "common/files.h"
#include "fmt/format.h"

namespace rdmashare::rdma {
namespace {

// Netdev names as the kernel allows them (IFNAMSIZ 16 with the NUL, no '/', not "." or "..").
bool ValidNetdevName(const std::string& name) {
  return !name.empty() && name.size() < 16 && name != "." && name != ".." &&
         name.find('/') == std::string::npos;
}

// Whether sysfs's type text names the same type as verbs. The kernel prints "IB/RoCE v1" for
// both IB_GID_TYPE_IB and IB_GID_TYPE_ROCE (drivers/infiniband/core/cache.c).
bool SameGidType(const std::string& sysfs, VerbsGidType verbs) {
  switch (verbs) {
    case VerbsGidType::kIb:
      return sysfs == "IB/RoCE v1" || sysfs == "IB";
    case VerbsGidType::kRoceV1:
      return sysfs == "IB/RoCE v1" || sysfs == "RoCE v1";
    case VerbsGidType::kRoceV2:
      return sysfs == "RoCE v2";
  }
  return false;
}

std::string VerbsNetdevText(const VerbsGid& g) {
  if (g.ndev_ifindex == 0) return "none";
  if (g.ndev.empty()) return fmt::format("ifindex {}", g.ndev_ifindex);
  return fmt::format("{} (ifindex {})", g.ndev, g.ndev_ifindex);
}

void CompareGids(const std::string& ibdev, int port, const std::vector<GidTableEntry>& table,
                 const std::vector<VerbsGid>& gids, const std::set<std::string>& netdevs,
                 std::vector<VerbsDisagreement>& out) {
  std::map<int, const GidTableEntry*> by_index_s;
  for (const GidTableEntry& e : table) {
    if (e.used()) by_index_s[e.index] = &e;
  }
  std::map<int, const VerbsGid*> by_index_v;
  for (const VerbsGid& g : gids) by_index_v[g.index] = &g;
  std::set<int> indexes;
  for (const auto& [i, e] : by_index_s) indexes.insert(i);
  for (const auto& [i, g] : by_index_v) indexes.insert(i);
  auto add = [&](int index, VerbsDisagreementKind kind, std::string s, std::string v) {
    out.push_back(VerbsDisagreement{ibdev, port, index, kind, std::move(s), std::move(v)});
  };
  for (int i : indexes) {
    auto s_it = by_index_s.find(i);
    auto v_it = by_index_v.find(i);
    if (v_it == by_index_v.end()) {
      add(i, VerbsDisagreementKind::kGidValue, s_it->second->gid, "none");
      continue;
    }
    const VerbsGid& g = *v_it->second;
    if (s_it == by_index_s.end()) {
      add(i, VerbsDisagreementKind::kGidValue, "unused", g.gid);
      continue;
    }
    const GidTableEntry& e = *s_it->second;
    if (e.gid != g.gid) {
      add(i, VerbsDisagreementKind::kGidValue, e.gid, g.gid);
      continue;  // a different entry: its attributes say nothing more
    }
    if (!e.type.empty() && !SameGidType(e.type, g.type)) {
      add(i, VerbsDisagreementKind::kGidType, e.type, VerbsGidTypeName(g.type));
    }
    bool s_has = !e.netdev.empty();
    bool v_has = g.ndev_ifindex != 0;
    if (s_has != v_has ||
        (s_has && !g.ndev.empty() && netdevs.count(e.netdev) != 0 && e.netdev != g.ndev)) {
      add(i, VerbsDisagreementKind::kGidNetdev, s_has ? e.netdev : "none", VerbsNetdevText(g));
    }
  }
}

void ComparePorts(const RdmaDevice& dev, const VerbsDevice& vdev, const SysfsRdmaView& sysfs,
                  std::vector<VerbsDisagreement>& out) {
  std::map<int, const RdmaPort*> s_ports;
  for (const RdmaPort& p : dev.ports) s_ports[p.number] = &p;
  std::map<int, const VerbsPort*> v_ports;
  for (const VerbsPort& p : vdev.ports) v_ports[p.number] = &p;
  std::set<int> numbers;
  for (const auto& [n, p] : s_ports) numbers.insert(n);
  for (const auto& [n, p] : v_ports) numbers.insert(n);
  for (int n : numbers) {
    auto s_it = s_ports.find(n);
    auto v_it = v_ports.find(n);
    if (v_it == v_ports.end()) {
      out.push_back(VerbsDisagreement{dev.ibdev, n, -1, VerbsDisagreementKind::kPortOnlyInSysfs,
                                      "present", "absent"});
      continue;
    }
    if (s_it == s_ports.end()) {
      out.push_back(VerbsDisagreement{dev.ibdev, n, -1, VerbsDisagreementKind::kPortOnlyInVerbs,
                                      "absent", "present"});
      continue;
    }
    const RdmaPort& sp = *s_it->second;
    const VerbsPort& vp = *v_it->second;
    if (sp.state != vp.state) {
      out.push_back(VerbsDisagreement{dev.ibdev, n, -1, VerbsDisagreementKind::kPortState, sp.state,
                                      vp.state});
    }
    if (sp.link_layer != vp.link_layer) {
      out.push_back(VerbsDisagreement{dev.ibdev, n, -1, VerbsDisagreementKind::kLinkLayer,
                                      LinkLayerName(sp.link_layer), LinkLayerName(vp.link_layer)});
    }
    if (sp.gid_table_size != vp.gid_tbl_len) {
      out.push_back(VerbsDisagreement{dev.ibdev, n, -1, VerbsDisagreementKind::kGidTableSize,
                                      std::to_string(sp.gid_table_size),
                                      std::to_string(vp.gid_tbl_len)});
    }
    auto table = sysfs.gid_tables.find({dev.ibdev, n});
    if (table != sysfs.gid_tables.end()) {
      CompareGids(dev.ibdev, n, table->second, vp.gids, sysfs.netdevs, out);
    }
  }
}

}  // namespace

const char* VerbsGidTypeName(VerbsGidType type) {
  switch (type) {
    case VerbsGidType::kIb:
      return "IB";
    case VerbsGidType::kRoceV1:
      return "RoCE v1";
    case VerbsGidType::kRoceV2:
      return "RoCE v2";
  }
  return "?";
}

FakeVerbsReader::FakeVerbsReader(std::vector<absl::StatusOr<std::vector<VerbsDevice>>> answers)
    : answers_(std::move(answers)) {}

absl::StatusOr<std::vector<VerbsDevice>> FakeVerbsReader::Devices() {
  absl::MutexLock lock(&mu_);
  if (answers_.empty()) return std::vector<VerbsDevice>{};
  size_t i = std::min<size_t>(static_cast<size_t>(calls_), answers_.size() - 1);
  ++calls_;
  return answers_[i];
}

int FakeVerbsReader::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

SysfsRdmaView ReadSysfsRdmaView(const std::string& sys_root, NodeInventory inventory) {
  SysfsRdmaView view;
  for (const RdmaDevice& dev : inventory.devices) {
    for (const RdmaPort& port : dev.ports) {
      absl::StatusOr<std::vector<GidTableEntry>> table =
          ReadGidTable(sys_root, dev.ibdev, port.number);
      if (table.ok()) view.gid_tables[{dev.ibdev, port.number}] = std::move(*table);
    }
  }
  absl::StatusOr<std::vector<std::string>> names = ListDir(JoinPath(sys_root, "class/net"));
  if (names.ok()) {
    for (const std::string& name : *names) {
      if (ValidNetdevName(name)) view.netdevs.insert(name);
    }
  }
  view.inventory = std::move(inventory);
  return view;
}

std::string VerbsDisagreement::Describe() const {
  switch (kind) {
    case VerbsDisagreementKind::kDeviceOnlyInSysfs:
      return "in sysfs, not listed by libibverbs";
    case VerbsDisagreementKind::kDeviceOnlyInVerbs:
      return "listed by libibverbs, not in sysfs";
    case VerbsDisagreementKind::kPortOnlyInSysfs:
      return fmt::format("port {} in sysfs, not in verbs", port);
    case VerbsDisagreementKind::kPortOnlyInVerbs:
      return fmt::format("port {} in verbs, not in sysfs", port);
    case VerbsDisagreementKind::kPortState:
      return fmt::format("port {} state: sysfs {}, verbs {}", port, sysfs, verbs);
    case VerbsDisagreementKind::kLinkLayer:
      return fmt::format("port {} link layer: sysfs {}, verbs {}", port, sysfs, verbs);
    case VerbsDisagreementKind::kGidTableSize:
      return fmt::format("port {} GID table size: sysfs {}, verbs {}", port, sysfs, verbs);
    case VerbsDisagreementKind::kGidValue:
      return fmt::format("port {} GID {}: sysfs {}, verbs {}", port, gid_index, sysfs, verbs);
    case VerbsDisagreementKind::kGidType:
      return fmt::format("port {} GID {} type: sysfs {}, verbs {}", port, gid_index, sysfs, verbs);
    case VerbsDisagreementKind::kGidNetdev:
      return fmt::format("port {} GID {} netdev: sysfs {}, verbs {}", port, gid_index, sysfs,
                         verbs);
  }
  return "?";
}

std::vector<VerbsDisagreement> CompareVerbsWithSysfs(const std::vector<VerbsDevice>& verbs,
                                                     const SysfsRdmaView& sysfs) {
  std::map<std::string, const RdmaDevice*> s_devs;
  for (const RdmaDevice& d : sysfs.inventory.devices) s_devs[d.ibdev] = &d;
  std::map<std::string, const VerbsDevice*> v_devs;
  for (const VerbsDevice& d : verbs) v_devs[d.ibdev] = &d;
  std::set<std::string> names;
  for (const auto& [n, d] : s_devs) names.insert(n);
  for (const auto& [n, d] : v_devs) names.insert(n);
  std::vector<VerbsDisagreement> out;
  for (const std::string& name : names) {
    auto s_it = s_devs.find(name);
    auto v_it = v_devs.find(name);
    if (v_it == v_devs.end()) {
      out.push_back(VerbsDisagreement{name, 0, -1, VerbsDisagreementKind::kDeviceOnlyInSysfs,
                                      "present", "absent"});
      continue;
    }
    if (s_it == s_devs.end()) {
      out.push_back(VerbsDisagreement{name, 0, -1, VerbsDisagreementKind::kDeviceOnlyInVerbs,
                                      "absent", "present"});
      continue;
    }
    if (!v_it->second->error.empty()) continue;
    ComparePorts(*s_it->second, *v_it->second, sysfs, out);
  }
  return out;
}

std::string VerbsPortStateName(uint32_t state) {
  // The kernel's names (drivers/infiniband/core/sysfs.c, state_show).
  static constexpr const char* kNames[] = {"NOP",   "DOWN",   "INIT",
                                           "ARMED", "ACTIVE", "ACTIVE_DEFER"};
  return state < std::size(kNames) ? kNames[state] : "UNKNOWN";
}

LinkLayer VerbsLinkLayer(uint32_t link_layer) {
  switch (link_layer) {
    case 1:
      return LinkLayer::kInfiniBand;
    case 2:
      return LinkLayer::kEthernet;
    default:
      return LinkLayer::kUnknown;
  }
}

absl::StatusOr<VerbsGidType> VerbsGidTypeFromValue(uint32_t type) {
  switch (type) {
    case 0:
      return VerbsGidType::kIb;
    case 1:
      return VerbsGidType::kRoceV1;
    case 2:
      return VerbsGidType::kRoceV2;
    default:
      return absl::InvalidArgumentError(fmt::format("unknown GID type {}", type));
  }
}

std::string GidText(const uint8_t (&raw)[16]) {
  std::string out;
  out.reserve(39);
  for (int i = 0; i < 16; i += 2) {
    if (i > 0) out += ':';
    out += fmt::format("{:02x}{:02x}", raw[i], raw[i + 1]);
  }
  return out;
}

}  // namespace rdmashare::rdma
