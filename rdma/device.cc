#include "rdma/device.h"

#include "fmt/format.h"

namespace rdmashare::rdma {

const char* LinkLayerName(LinkLayer layer) {
  switch (layer) {
    case LinkLayer::kEthernet:
      return "Ethernet";
    case LinkLayer::kInfiniBand:
      return "InfiniBand";
    case LinkLayer::kUnknown:
      break;
  }
  return "unknown";
}

std::string RdmaDevice::HealthProblem() const {
  if (!uverbs.has_value()) return "no uverbs device";
  if (!uverbs->present) return fmt::format("uverbs node {} missing", uverbs->dev_path);
  if (!pci_address.empty() && driver.empty()) {
    return fmt::format("PCI function {} has no driver bound", pci_address);
  }
  if (!ports.empty()) {
    bool active = false;
    std::string states;
    for (const RdmaPort& p : ports) {
      if (p.state == "ACTIVE") active = true;
      states += fmt::format("{}port {} {}", states.empty() ? "" : ", ", p.number, p.state);
    }
    if (!active) return states;
  }
  bool roce = false;
  for (const RdmaPort& p : ports) roce = roce || p.link_layer == LinkLayer::kEthernet;
  if (roce && !netdev_states.empty()) {
    std::string down;
    for (const NetdevState& n : netdev_states) {
      if (n.up()) return "";
      down += fmt::format("{}netdev {} operstate={} carrier={}", down.empty() ? "" : ", ", n.name,
                          n.operstate.empty() ? "?" : n.operstate, n.carrier);
    }
    return down;
  }
  return "";
}

}  // namespace rdmashare::rdma
