// The macvlan plugin's routing planner: which policy table an interface gets, which routes and
// "from <ip> lookup <table>" rules ADD installs for it (and CHECK expects), and which rules DEL
// removes. Decisions only, as data: nothing here talks to the kernel; the plugin applies a plan
// through net::Netlink.
//
// The plan for an interface with policy routing (table T):
//  - per address: the connected route of its subnet in T (scope link, src = the address), and the
//    rule "from <address> lookup T" at the configured priority;
//  - per family with a gateway (the first address of that family that has one): a default route
//    via that gateway in T;
//  - per IPAM route: in T (unless it is a default route of a family whose default T already has),
//    and in the main table unless it is a default route (the pod's own default route, on eth0,
//    keeps cluster traffic); without a gateway of its own it goes via its family's IPAM gateway,
//    else on-link (scope link).
// Without policy routing only the IPAM routes go in, in the main table.
//
// Pure functions over plain values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cni/macvlan/config.h"
#include "cni/net/netlink.h"
#include "cni/protocol/result.h"
#include "common/ip.h"

namespace rdmashare::cni::macvlan {

// The routing state ADD installs for one pod interface (also what CHECK expects): routes in
// install order, then rules.
struct RoutingPlan {
  std::vector<net::Route> routes;
  std::vector<net::Rule> rules;

  bool operator==(const RoutingPlan& o) const { return routes == o.routes && rules == o.rules; }
};

// The policy routing table for `ifname`: the configured routeTable, else 100 + k - 1 for
// "net<k>" (k = 1..153). Code 7 when neither applies.
absl::StatusOr<uint32_t> ResolveRouteTable(const MacvlanConfig& config, const std::string& ifname);

// The table `ifname` uses: nullopt when policy routing is off, else ResolveRouteTable's.
absl::StatusOr<std::optional<uint32_t>> PolicyTable(const MacvlanConfig& config,
                                                    const std::string& ifname);

// The plan for the interface `ifindex` carrying `ips` (IPAM's addresses and gateways) and
// `routes` (IPAM's routes), with policy table `table` (nullopt: no policy routing) and rules at
// `rule_priority` (see the header comment).
RoutingPlan PlanRouting(const std::vector<IpConfig>& ips, const std::vector<Route>& routes,
                        int ifindex, std::optional<uint32_t> table, uint32_t rule_priority);

// Of `rules` (as listed in the pod netns), those DEL removes for an interface with policy table
// `table` whose addresses were `addrs`: rules of that table with a source among `addrs`, or with
// any source when `addrs` is empty or `addrs_unknown` (the link was already gone or stripped, and
// the table is this interface's alone). Rules from all sources are never ours.
std::vector<net::Rule> OwnRules(const std::vector<net::Rule>& rules, uint32_t table,
                                const std::set<IpPrefix>& addrs, bool addrs_unknown);

}  // namespace rdmashare::cni::macvlan
