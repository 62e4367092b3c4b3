// RDMA awareness for the CNI: does a netdev (the macvlan master) have an RDMA function, which
// PCI address, and in which state is its port. Reads sysfs under an injected root
// (class/net/<netdev>/device → infiniband/<ibdev>/ports/<N>) through common/files.h.
//
// Stateless, thread-safe. Virtual netdevs (veth, no `device` link) have no RDMA function.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace rdmashare::cni::net {

struct RdmaFunction {
  std::string ibdev;
  // PCI address of the parent function ("0000:0b:00.0").
  std::string pci_address;
  int port = 0;
  // Port state without the numeric prefix ("ACTIVE", "DOWN").
  std::string port_state;
  // "Ethernet" (RoCE) or "InfiniBand".
  std::string link_layer;

  bool operator==(const RdmaFunction& o) const {
    return ibdev == o.ibdev && pci_address == o.pci_address && port == o.port &&
           port_state == o.port_state && link_layer == o.link_layer;
  }
};

// Finds the RDMA function of `netdev` under `sys_root`. nullopt when the netdev is not in sysfs
// (another namespace's sysfs) or has no device/infiniband directory. The port is the one whose
// gid_attrs/ndevs name the netdev, else the first port. InvalidArgument for unreadable state
// files (names the file).
absl::StatusOr<std::optional<RdmaFunction>> FindRdmaFunction(const std::string& sys_root,
                                                             const std::string& netdev);

}  // namespace rdmashare::cni::net
