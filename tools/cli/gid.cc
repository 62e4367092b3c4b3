// `rdmashare gid`: RoCE v2 GID indexes of the pod's rail addresses (declared in cli.h).
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "common/files.h"
#include "common/ip.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "rdma/gid_table.h"
#include "tools/cli/cli.h"

namespace rdmashare::cli {
namespace {

absl::StatusOr<uint32_t> ParseIpv4(const std::string& text) {
  absl::StatusOr<IpAddr> addr = IpAddr::Parse(text);
  if (!addr.ok() || !addr->is_v4()) {
    return absl::InvalidArgumentError(fmt::format("\"{}\" is not an IPv4 address", text));
  }
  return static_cast<uint32_t>(addr->value());
}

std::string Ipv4String(uint32_t a) { return IpAddr::FromValue(4, a).ToString(); }

}  // namespace

absl::StatusOr<std::vector<InterfaceAddress>> GetifaddrsAddressSource::List() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    return absl::InternalError(fmt::format("getifaddrs: {}", std::strerror(errno)));
  }
  std::vector<InterfaceAddress> out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    const auto* sin = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
    const std::string addr =
        IpAddr::FromBytes(4, reinterpret_cast<const uint8_t*>(&sin->sin_addr)).ToString();
    int prefix = 32;
    if (it->ifa_netmask != nullptr) {
      const auto* mask = reinterpret_cast<const sockaddr_in*>(it->ifa_netmask);
      prefix = __builtin_popcount(mask->sin_addr.s_addr);
    }
    out.push_back(InterfaceAddress{it->ifa_name, addr, prefix});
  }
  freeifaddrs(list);
  return out;
}

absl::StatusOr<std::string> Ipv4MappedGid(const std::string& ipv4) {
  ASSIGN_OR_RETURN(uint32_t a, ParseIpv4(ipv4));
  return fmt::format("0000:0000:0000:0000:0000:ffff:{:04x}:{:04x}", a >> 16, a & 0xffff);
}

absl::StatusOr<GidEntry> FindRoceV2Gid(const HostPaths& paths, const InterfaceAddress& address) {
  ASSIGN_OR_RETURN(std::string want, Ipv4MappedGid(address.ipv4));
  std::string class_dir = JoinPath(paths.sys_root, "class/infiniband");
  absl::StatusOr<std::vector<std::string>> ibdevs = ListDir(class_dir);
  std::vector<std::string> other_types;
  if (ibdevs.ok()) {
    for (const std::string& ibdev : *ibdevs) {
      std::string ports_dir = JoinPath(class_dir, ibdev + "/ports");
      absl::StatusOr<std::vector<std::string>> ports = ListDir(ports_dir);
      if (!ports.ok()) continue;
      for (const std::string& port : *ports) {
        if (port.empty() || port.size() > 3 ||
            port.find_first_not_of("0123456789") != std::string::npos) {
          continue;
        }
        int port_number = std::stoi(port);
        absl::StatusOr<std::vector<rdma::GidTableEntry>> table =
            rdma::ReadGidTable(paths.sys_root, ibdev, port_number);
        if (!table.ok()) continue;
        for (const rdma::GidTableEntry& g : *table) {
          if (g.gid != want) continue;
          // Unused entries make the kernel fail the type read (EINVAL): no type, no match.
          std::string type_text = g.type.empty() ? "unreadable" : g.type;
          if (type_text != "RoCE v2") {
            other_types.push_back(
                fmt::format("{}/{} index {} ({})", ibdev, port, g.index, type_text));
            continue;
          }
          GidEntry entry;
          entry.ifname = address.ifname;
          entry.ipv4 = address.ipv4;
          entry.prefix_len = address.prefix_len;
          entry.ibdev = ibdev;
          entry.port = port_number;
          entry.gid_index = g.index;
          return entry;
        }
      }
    }
  }
  if (!other_types.empty()) {
    std::string list;
    for (const std::string& s : other_types) list += (list.empty() ? "" : ", ") + s;
    return absl::FailedPreconditionError(
        fmt::format("{} {}: GID {} exists only with another type: {} (no RoCE v2 entry)",
                    address.ifname, address.ipv4, want, list));
  }
  return absl::NotFoundError(fmt::format("{} {}: no RDMA port under {} has GID {}", address.ifname,
                                         address.ipv4, class_dir, want));
}

std::string GidEnvironment(const std::vector<GidEntry>& entries, const std::string& socket_ifname) {
  std::string hcas, ucx;
  std::set<int> indexes;
  // Smallest IPv4 prefix holding every rail subnet (NCCL_IB_ADDR_RANGE takes one range).
  uint32_t first = 0;
  int common = 32;
  bool have = false;
  for (const GidEntry& e : entries) {
    hcas += (hcas.empty() ? "" : ",") + e.ibdev;
    ucx += (ucx.empty() ? "" : ",") + fmt::format("{}:{}", e.ibdev, e.port);
    indexes.insert(e.gid_index);
    absl::StatusOr<uint32_t> a = ParseIpv4(e.ipv4);
    if (!a.ok()) continue;
    int len = std::min(std::max(e.prefix_len, 0), 32);
    if (!have) {
      first = *a;
      common = len;
      have = true;
    }
    common = std::min(common, len);
    while (common > 0 && (first >> (32 - common)) != (*a >> (32 - common))) --common;
  }
  uint32_t mask = common == 0 ? 0 : ~uint32_t{0} << (32 - common);
  std::string out;
  out += fmt::format("export NCCL_IB_HCA={}\n", hcas);
  if (indexes.size() == 1) out += fmt::format("export NCCL_IB_GID_INDEX={}\n", *indexes.begin());
  out += "export NCCL_IB_ROCE_VERSION_NUM=2\n";
  out += "export NCCL_IB_ADDR_FAMILY=AF_INET\n";
  if (have) {
    out += fmt::format("export NCCL_IB_ADDR_RANGE={}/{}\n", Ipv4String(first & mask), common);
  }
  out += fmt::format("export NCCL_SOCKET_IFNAME={}\n", socket_ifname);
  out += fmt::format("export UCX_NET_DEVICES={}\n", ucx);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The `gid` command: flags and glue.

namespace {

int RunGid(const ParsedArgs& p, const Environment& env, std::ostream& out, std::ostream& err) {
  HostPaths paths = PathsFor(p, env.paths);
  GetifaddrsAddressSource real;
  AddressSource& source = env.addresses ? *env.addresses : real;
  absl::StatusOr<std::vector<InterfaceAddress>> addrs = source.List();
  if (!addrs.ok()) return Fail(err, "gid", addrs.status(), kExitFailure);
  std::string only = p.Get("ifname", "");
  std::vector<GidEntry> found;
  int code = kExitOk;
  bool matched_ifname = false;
  for (const InterfaceAddress& a : *addrs) {
    if (a.ifname == "lo") continue;
    if (!only.empty() && a.ifname != only) continue;
    matched_ifname = true;
    absl::StatusOr<GidEntry> e = FindRoceV2Gid(paths, a);
    if (e.ok()) {
      found.push_back(*e);
    } else if (absl::IsNotFound(e.status()) && only.empty()) {
      // Without --ifname, interfaces such as the cluster's eth0 are simply not rails.
      err << fmt::format("{} {}: not an RDMA rail (no GID holds this address)\n", a.ifname, a.ipv4);
    } else {
      err << "rdmashare gid: " << e.status().message() << "\n";
      code = kExitFailure;
    }
  }
  if (!only.empty() && !matched_ifname) {
    err << fmt::format("rdmashare gid: interface {} has no IPv4 address\n", only);
    return kExitFailure;
  }
  if (found.empty()) {
    err << "rdmashare gid: no interface has a RoCE v2 GID for its IPv4 address\n";
    return kExitFailure;
  }
  if (p.bools.count("env")) {
    out << GidEnvironment(found, p.Get("socket-ifname", "eth0"));
  } else {
    out << fmt::format("{:<10} {:<18} {:<10} {:<5} {}\n", "IFNAME", "ADDRESS", "IBDEV", "PORT",
                       "GID_INDEX (RoCE v2)");
    for (const GidEntry& e : found) {
      out << fmt::format("{:<10} {:<18} {:<10} {:<5} {}\n", e.ifname,
                         fmt::format("{}/{}", e.ipv4, e.prefix_len), e.ibdev, e.port, e.gid_index);
    }
  }
  return code;
}

}  // namespace

const Command& GidCommand() {
  static const Command kCommand = {
      {"gid",
       "",
       "inside a pod: the RDMA device and RoCE v2 GID index of each rail interface",
       {{"ifname", true, "only this interface (e.g. net1)"},
        {"env", false, "print NCCL/UCX settings as export lines"},
        {"socket-ifname", true, "NCCL_SOCKET_IFNAME value (default eth0)"}}},
      RunGid};
  return kCommand;
}

}  // namespace rdmashare::cli
