#include "cni/net/rdma_info.h"

#include <cstdlib>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::net {
namespace {

// "4: ACTIVE" -> "ACTIVE".
std::string StripNumericPrefix(const std::string& s) {
  size_t colon = s.find(':');
  if (colon == std::string::npos) return s;
  size_t start = s.find_first_not_of(' ', colon + 1);
  return start == std::string::npos ? "" : s.substr(start);
}

bool PortNamesNetdev(const std::string& port_dir, const std::string& netdev) {
  auto ndevs = ListDir(JoinPath(port_dir, "gid_attrs/ndevs"));
  if (!ndevs.ok()) return false;
  for (const std::string& i : *ndevs) {
    auto v = ReadAttr(JoinPath(port_dir, "gid_attrs/ndevs/" + i));
    if (v.ok() && *v == netdev) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::optional<RdmaFunction>> FindRdmaFunction(const std::string& sys_root,
                                                             const std::string& netdev) {
  if (netdev.empty() || netdev.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("netdev name \"{}\" is not valid", netdev));
  }
  std::string device = JoinPath(sys_root, "class/net/" + netdev + "/device");
  if (!PathExists(device)) return std::nullopt;
  auto ibdevs = ListDir(JoinPath(device, "infiniband"));
  if (!ibdevs.ok() || ibdevs->empty()) return std::nullopt;
  RdmaFunction fn;
  fn.ibdev = ibdevs->front();
  ASSIGN_OR_RETURN(std::string real, RealPath(device));
  fn.pci_address = BaseName(real);
  std::string ports_dir = JoinPath(device, "infiniband/" + fn.ibdev + "/ports");
  ASSIGN_OR_RETURN(std::vector<std::string> ports, ListDir(ports_dir));
  if (ports.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("RDMA device {} of {}: no ports in {}", fn.ibdev, netdev, ports_dir));
  }
  std::string chosen = ports.front();
  for (const std::string& p : ports) {
    if (PortNamesNetdev(JoinPath(ports_dir, p), netdev)) {
      chosen = p;
      break;
    }
  }
  fn.port = std::atoi(chosen.c_str());
  std::string port_dir = JoinPath(ports_dir, chosen);
  ASSIGN_OR_RETURN(std::string state, ReadAttr(JoinPath(port_dir, "state")));
  fn.port_state = StripNumericPrefix(state);
  ASSIGN_OR_RETURN(fn.link_layer, ReadAttr(JoinPath(port_dir, "link_layer")));
  return fn;
}

}  // namespace rdmashare::cni::net
