#include "deviceplugin/selectors.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "fmt/format.h"

namespace rdmashare::deviceplugin {
namespace {

// Tolerates ids written as in sysfs ("0x15B3") on either side; ParseConfig already normalizes
// the selector side and the scanner the device side.
std::string CanonicalPciId(std::string_view id) {
  if (id.size() >= 2 && id[0] == '0' && (id[1] == 'x' || id[1] == 'X')) id.remove_prefix(2);
  std::string out(id);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool PciIdSelected(const std::vector<std::string>& list, const std::string& device_id) {
  if (device_id.empty()) return false;
  std::string id = CanonicalPciId(device_id);
  return std::any_of(list.begin(), list.end(),
                     [&id](const std::string& want) { return CanonicalPciId(want) == id; });
}

}  // namespace

const char* SelectorLinkType(rdma::LinkLayer layer) {
  switch (layer) {
    case rdma::LinkLayer::kEthernet:
      return "ether";
    case rdma::LinkLayer::kInfiniBand:
      return "infiniband";
    case rdma::LinkLayer::kUnknown:
      break;
  }
  return "";
}

bool SelectorsMatch(const Selectors& selectors, const rdma::RdmaDevice& device) {
  if (selectors.empty()) return false;
  if (!selectors.vendors.empty() && !PciIdSelected(selectors.vendors, device.vendor_id)) {
    return false;
  }
  if (!selectors.device_ids.empty() && !PciIdSelected(selectors.device_ids, device.device_id)) {
    return false;
  }
  if (!selectors.drivers.empty() &&
      (device.driver.empty() || !Contains(selectors.drivers, device.driver))) {
    return false;
  }
  if (!selectors.if_names.empty() &&
      std::none_of(device.netdevs.begin(), device.netdevs.end(), [&](const std::string& netdev) {
        return Contains(selectors.if_names, netdev);
      })) {
    return false;
  }
  if (!selectors.link_types.empty() &&
      std::none_of(device.ports.begin(), device.ports.end(), [&](const rdma::RdmaPort& port) {
        std::string_view type = SelectorLinkType(port.link_layer);
        return !type.empty() && Contains(selectors.link_types, type);
      })) {
    return false;
  }
  return true;
}

std::vector<rdma::RdmaDevice> SelectDevices(const ResourceConfig& resource,
                                            const rdma::NodeInventory& inventory) {
  Selectors selectors = resource.selectors;
  if (selectors.empty()) selectors.if_names = resource.devices;
  std::vector<rdma::RdmaDevice> out;
  for (const rdma::RdmaDevice& device : inventory.devices) {
    if (SelectorsMatch(selectors, device)) out.push_back(device);
  }
  return out;
}

ResourceHealth EvaluateHealth(const ResourceConfig& resource,
                              const std::vector<rdma::RdmaDevice>& devices) {
  ResourceHealth h;
  std::string problems;
  for (const rdma::RdmaDevice& d : devices) {
    std::string problem = d.HealthProblem();
    if (problem.empty()) {
      ++h.healthy_count;
    } else {
      problems += fmt::format("{}{}: {}", problems.empty() ? "" : "; ", d.ibdev, problem);
    }
  }
  const int total = static_cast<int>(devices.size());
  h.healthy = resource.health_policy == HealthPolicy::kAll ? total > 0 && h.healthy_count == total
                                                           : h.healthy_count > 0;
  if (!h.healthy) h.cause = total == 0 ? "no HCA matches the selectors" : problems;
  return h;
}

}  // namespace rdmashare::deviceplugin
