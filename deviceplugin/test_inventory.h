// Hand-built RDMA inventories for device plugin unit tests (tests only).
#pragma once

#include <string>

#include "fmt/format.h"
#include "rdma/device.h"

namespace rdmashare::deviceplugin::testing {

// A ConnectX-5 RoCE PF `mlx5_<index>` with netdev `netdev`, one ACTIVE Ethernet port, uverbs
// and umad/issm nodes under `dev_root`.
inline rdma::RdmaDevice TestHca(int index, const std::string& netdev, int numa,
                                const std::string& dev_root = "/dev") {
  rdma::RdmaDevice d;
  d.ibdev = fmt::format("mlx5_{}", index);
  d.pci_address = fmt::format("0000:{:02x}:00.0", 0x0b + index);
  d.vendor_id = "15b3";
  d.device_id = "1017";
  d.pci_class = "0x020000";
  d.driver = "mlx5_core";
  d.numa_node = numa;
  d.netdevs = {netdev};
  auto node = [&](const std::string& name, uint32_t minor) {
    return rdma::CharDevice{name, 231, minor, dev_root + "/infiniband/" + name, true};
  };
  rdma::RdmaPort port;
  port.number = 1;
  port.state = "ACTIVE";
  port.phys_state = "LinkUp";
  port.link_layer = rdma::LinkLayer::kEthernet;
  port.gid_table_size = 255;
  port.umad = node(fmt::format("umad{}", index), index);
  port.issm = node(fmt::format("issm{}", index), 64 + index);
  d.ports = {port};
  d.uverbs = node(fmt::format("uverbs{}", index), 192 + index);
  return d;
}

inline rdma::CharDevice TestRdmaCm(const std::string& dev_root = "/dev") {
  return rdma::CharDevice{"rdma_cm", 10, 58, dev_root + "/infiniband/rdma_cm", true};
}

}  // namespace rdmashare::deviceplugin::testing
