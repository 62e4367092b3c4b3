// Selector matching: which RDMA devices of a node belong to a resource.
//
// Pure functions over plain records; thread-safe.
#pragma once

#include <vector>

#include "deviceplugin/config.h"
#include "rdma/device.h"

namespace rdmashare::deviceplugin {

// The selector spelling of a port's link layer: "ether", "infiniband", or "" for kUnknown
// (which no linkTypes selector matches).
const char* SelectorLinkType(rdma::LinkLayer layer);

// True when `device` satisfies every non-empty selector list of `selectors` (OR inside a list,
// AND across lists). An entirely empty Selectors matches nothing (a resource must select).
// ifNames match any of the device's netdevs; linkTypes match any of its ports' link layers.
bool SelectorsMatch(const Selectors& selectors, const rdma::RdmaDevice& device);

// The devices of `inventory` that `resource` selects, in inventory order. Unusable devices
// (no uverbs node) are included; callers decide what to do with them. A hand-built resource with
// empty selectors but a non-empty deprecated `devices` list selects by those netdev names (what
// ParseConfig folds into selectors.if_names anyway).
std::vector<rdma::RdmaDevice> SelectDevices(const ResourceConfig& resource,
                                            const rdma::NodeInventory& inventory);

// Health of a resource over the devices it selects, by its healthPolicy: "any" = at least one
// device is healthy (rdma::RdmaDevice::HealthProblem empty), "all" = every one is and there is
// at least one. `cause` names each unhealthy device and its problem when not healthy.
struct ResourceHealth {
  bool healthy = false;
  int healthy_count = 0;
  std::string cause;
  bool operator==(const ResourceHealth& o) const {
    return healthy == o.healthy && healthy_count == o.healthy_count && cause == o.cause;
  }
};
ResourceHealth EvaluateHealth(const ResourceConfig& resource,
                              const std::vector<rdma::RdmaDevice>& devices);

}  // namespace rdmashare::deviceplugin
