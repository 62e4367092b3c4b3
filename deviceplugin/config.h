// The device plugin's configuration: config.json, drop-in compatible with the Go
// k8s-rdma-shared-dev-plugin, plus a few rdmashare extensions.
//
//   {"periodicUpdateInterval": 300,
//    "configList": [{"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu1",
//                    "rdmaHcaMax": 100, "selectors": {"ifNames": ["enp11s0f0np0"]}}]}
//
// Plain values; ParseConfig is a pure function (thread-safe).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rdmashare::deviceplugin {

// Device selectors of one resource. Inside one list the values are ORed, across lists ANDed;
// an empty list does not constrain. Values are normalized by ParseConfig: vendors and deviceIDs
// lower-case hex without "0x", linkTypes "ether" or "infiniband".
struct Selectors {
  std::vector<std::string> vendors;
  std::vector<std::string> device_ids;
  std::vector<std::string> drivers;
  std::vector<std::string> if_names;
  std::vector<std::string> link_types;

  bool empty() const {
    return vendors.empty() && device_ids.empty() && drivers.empty() && if_names.empty() &&
           link_types.empty();
  }
  bool operator==(const Selectors& o) const {
    return vendors == o.vendors && device_ids == o.device_ids && drivers == o.drivers &&
           if_names == o.if_names && link_types == o.link_types;
  }
};

// When the units of a resource are Healthy (rdmashare extension "healthPolicy").
enum class HealthPolicy {
  kAny,  // while at least one selected HCA is usable (default)
  kAll,  // while every selected HCA is usable
};

// One entry of configList: one extended resource.
struct ResourceConfig {
  // "shared_cx5_gpu1".
  std::string resource_name;
  // "spidernet.io"; default "rdma".
  std::string resource_prefix = "rdma";
  // Number of shareable units advertised (0..10000).
  int rdma_hca_max = 0;
  // Deprecated Go-plugin field: netdev names; folded into selectors.if_names by ParseConfig.
  std::vector<std::string> devices;
  Selectors selectors;
  // rdmashare extension "includeIssm": also inject issmN nodes (opening one makes the port an
  // SM, so it is off by default).
  bool include_issm = false;
  // rdmashare extension "mountCli": Allocate also mounts the rdmashare CLI (rdmashare-dp's
  // --cli-host-path) read-only at /usr/local/bin/rdmashare, so `rdmashare gid` works in any
  // image.
  bool mount_cli = false;
  // rdmashare extension "healthPolicy": "any" (default) or "all".
  HealthPolicy health_policy = HealthPolicy::kAny;
  // rdmashare extension "topology": advertise the HCAs' NUMA nodes (default true).
  bool topology = true;

  // "<resource_prefix>/<resource_name>".
  std::string FullName() const { return resource_prefix + "/" + resource_name; }

  bool operator==(const ResourceConfig& o) const {
    return resource_name == o.resource_name && resource_prefix == o.resource_prefix &&
           rdma_hca_max == o.rdma_hca_max && devices == o.devices && selectors == o.selectors &&
           include_issm == o.include_issm && mount_cli == o.mount_cli &&
           health_policy == o.health_policy && topology == o.topology;
  }
};

struct PluginConfig {
  // Seconds between full rescans; 0 disables the periodic rescan. Default 60.
  int periodic_update_interval_s = 60;
  std::vector<ResourceConfig> resources;

  bool operator==(const PluginConfig& o) const {
    return periodic_update_interval_s == o.periodic_update_interval_s && resources == o.resources;
  }
};

// Parses and validates config.json. Errors (InvalidArgument) name the entry (index and
// resourceName when known) and the field. Non-fatal findings (unknown keys with their JSON path,
// suspicious values) are appended to `warnings` when it is not null. Decoding follows Go's
// encoding/json so Go-plugin configs keep working: keys match case-insensitively (with a
// warning), the last of repeated keys wins, null means absent. The rules and their sources are
// listed at the top of config.cc.
absl::StatusOr<PluginConfig> ParseConfig(std::string_view json, std::vector<std::string>* warnings);

// Normalizes a PCI vendor or device id as written in a selector: 4 hex digits, optionally
// prefixed "0x"/"0X", any case ("0x15B3" -> "15b3"). InvalidArgument naming the value otherwise.
absl::StatusOr<std::string> NormalizePciId(std::string_view value);

// Normalizes a link type as written in a selector, case-insensitively: "ether", "ethernet" and
// "eth" -> "ether"; "infiniband" and "ib" -> "infiniband". InvalidArgument naming the value
// otherwise.
absl::StatusOr<std::string> NormalizeLinkType(std::string_view value);

}  // namespace rdmashare::deviceplugin
