// MacvlanConfig: the rdmashare-macvlan fields of a network configuration, validated, plus the
// deterministic link names the plugin derives (the policy routing table is routing_plan.h's).
//
// Plain value + stateless functions; thread-safe. Errors are CniError statuses with code 7
// (kInvalidNetworkConfig) naming the field, or 4 for a bad CNI_ARGS MAC.
//
// "master" must pass IfNameProblem (cni/protocol/request.h), like CNI_IFNAME.
//
// Fields (all optional):
//   master          rail NIC; empty = the host's IPv4 default-route interface
//   mode            bridge (default) | private | vepa | passthru
//   mtu             0 = master's MTU; must not exceed it (checked at ADD)
//   mac             MAC for the pod interface; runtimeConfig.mac > CNI_ARGS MAC > this
//   policyRouting   default true
//   routeTable      policy table; default 100 + k - 1 for ifname "netk" (k = 1..153)
//   rulePriority    priority of "from <ip> lookup <table>" rules, default 1000
//   detectGateway, detectIPConflict   default: on when the address has a gateway
//   probeCount (3), probeIntervalMs (25)   the conflict probe's window (count x interval; 3
//                   probes so one lost packet cannot hide a conflict); the gateway is asked
//                   during the same window
//   gatewayTimeoutMs (500)   how long the gateway may take to answer
//   deferLinkDelete default true: DEL renames the pod interface out of the way, removes its
//                   addresses and rules, answers, and deletes the link after replying (the
//                   kernel's link teardown waits for an RCU barrier, ~20 ms); false = delete
//                   before answering
//   allowHostNetns  default false: CNI_NETNS naming the plugin's own (host) network namespace is
//                   refused (code 4) unless this is true; DEL of such a request then leaves the
//                   host's links and rules alone (it only releases the IPAM reservation)
//   sysfsRoot       default HostPaths::sys_root ("/sys")
//   logFile, logLevel
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cni/protocol/netconf.h"

namespace rdmashare::cni::macvlan {

struct MacvlanConfig {
  std::string master;
  std::string mode = "bridge";
  int mtu = 0;
  std::string mac;
  bool policy_routing = true;
  std::optional<uint32_t> route_table;
  uint32_t rule_priority = 1000;
  std::optional<bool> detect_gateway;
  std::optional<bool> detect_ip_conflict;
  int probe_count = 3;
  int probe_interval_ms = 25;
  int gateway_timeout_ms = 500;
  bool defer_link_delete = true;
  bool allow_host_netns = false;
  std::string sysfs_root;
  std::string log_file;
  std::string log_level;
  // "ipam.type"; empty when there is no ipam section.
  std::string ipam_type;

  bool operator==(const MacvlanConfig& o) const {
    return master == o.master && mode == o.mode && mtu == o.mtu && mac == o.mac &&
           policy_routing == o.policy_routing && route_table == o.route_table &&
           rule_priority == o.rule_priority && detect_gateway == o.detect_gateway &&
           detect_ip_conflict == o.detect_ip_conflict && probe_count == o.probe_count &&
           probe_interval_ms == o.probe_interval_ms && gateway_timeout_ms == o.gateway_timeout_ms &&
           defer_link_delete == o.defer_link_delete && allow_host_netns == o.allow_host_netns &&
           sysfs_root == o.sysfs_root && log_file == o.log_file && log_level == o.log_level &&
           ipam_type == o.ipam_type;
  }
};

// Reads the plugin fields of `conf`. `cni_args` are the parsed CNI_ARGS (for MAC=).
// `default_sysfs_root` fills sysfs_root when the config has none.
absl::StatusOr<MacvlanConfig> ParseMacvlanConfig(const NetConf& conf,
                                                 const std::map<std::string, std::string>& cni_args,
                                                 const std::string& default_sysfs_root);

// The temporary link name for (container id, ifname): "rsm" + 12 hex digits of a stable hash,
// so a DEL after a crash mid-ADD finds it. Always a valid 15-byte interface name.
std::string TempLinkName(const std::string& container_id, const std::string& ifname);

// The name DEL gives the pod interface before its deferred deletion: "rsx" + the same hash, so a
// later ADD or DEL of this (container id, ifname) finds and removes a leftover.
std::string DeadLinkName(const std::string& container_id, const std::string& ifname);

}  // namespace rdmashare::cni::macvlan
