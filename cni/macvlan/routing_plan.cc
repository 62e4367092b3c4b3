#include "cni/macvlan/routing_plan.h"

#include <linux/rtnetlink.h>

#include <cstdlib>

#include "cni/protocol/error.h"
#include "fmt/format.h"

namespace rdmashare::cni::macvlan {
namespace {

// The gateway of the first IPAM address of `family` that has one.
std::optional<IpAddr> GatewayFor(const std::vector<IpConfig>& ips, int family) {
  for (const IpConfig& c : ips) {
    if (c.address.family() == family && c.gateway) return c.gateway;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<uint32_t> ResolveRouteTable(const MacvlanConfig& config, const std::string& ifname) {
  if (config.route_table) return *config.route_table;
  if (ifname.size() > 3 && ifname.compare(0, 3, "net") == 0 &&
      ifname.find_first_not_of("0123456789", 3) == std::string::npos && ifname[3] != '0' &&
      ifname.size() <= 6) {
    int k = std::atoi(ifname.c_str() + 3);
    if (k >= 1 && k <= 153) return static_cast<uint32_t>(100 + k - 1);
  }
  return CniError(kInvalidNetworkConfig,
                  fmt::format("interface {}: no policy routing table: set \"routeTable\" in the "
                              "network config or name the interface net1..net153 "
                              "(table 100 + k - 1), or set \"policyRouting\": false",
                              ifname));
}

absl::StatusOr<std::optional<uint32_t>> PolicyTable(const MacvlanConfig& config,
                                                    const std::string& ifname) {
  if (!config.policy_routing) return std::optional<uint32_t>();
  absl::StatusOr<uint32_t> table = ResolveRouteTable(config, ifname);
  if (!table.ok()) return table.status();
  return std::optional<uint32_t>(*table);
}

RoutingPlan PlanRouting(const std::vector<IpConfig>& ips, const std::vector<Route>& routes,
                        int ifindex, std::optional<uint32_t> table, uint32_t rule_priority) {
  RoutingPlan plan;
  std::set<int> families_with_default;
  if (table) {
    for (const IpConfig& c : ips) {
      const IpPrefix& ip = c.address;
      net::Route connected;
      connected.dst = ip.Masked();
      connected.ifindex = ifindex;
      connected.table = *table;
      connected.scope = RT_SCOPE_LINK;
      connected.pref_src = ip.addr();
      plan.routes.push_back(connected);
      if (c.gateway && families_with_default.insert(ip.family()).second) {
        net::Route def;
        def.dst = IpPrefix::Default(ip.family());
        def.gateway = c.gateway;
        def.ifindex = ifindex;
        def.table = *table;
        plan.routes.push_back(def);
      }
      net::Rule rule;
      rule.family = ip.addr().af();
      rule.src = IpPrefix::Host(ip.addr());
      rule.table = *table;
      rule.priority = rule_priority;
      plan.rules.push_back(rule);
    }
  }
  for (const Route& r : routes) {
    // The kernel takes (and reports) a destination without host bits.
    const IpPrefix dst = r.dst.Masked();
    const std::optional<IpAddr> gw = r.gw ? r.gw : GatewayFor(ips, dst.family());
    net::Route route;
    route.dst = dst;
    route.gateway = gw;
    route.ifindex = ifindex;
    route.scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    route.mtu = static_cast<uint32_t>(r.mtu);
    route.metric = static_cast<uint32_t>(r.priority);
    if (table) {
      // The default route of the policy table is already there (the IPAM gateway).
      if (!(dst.IsDefault() && families_with_default.count(dst.family()) != 0)) {
        net::Route in_table = route;
        in_table.table = *table;
        plan.routes.push_back(in_table);
      }
      // The main table keeps the pod's own default route (cluster traffic stays on eth0).
      if (!dst.IsDefault()) plan.routes.push_back(route);
    } else {
      plan.routes.push_back(route);
    }
  }
  return plan;
}

std::vector<net::Rule> OwnRules(const std::vector<net::Rule>& rules, uint32_t table,
                                const std::set<IpPrefix>& addrs, bool addrs_unknown) {
  std::vector<net::Rule> out;
  for (const net::Rule& r : rules) {
    if (r.table != table || !r.src) continue;
    bool mine = addrs.empty() || addrs_unknown;
    for (const IpPrefix& a : addrs) {
      if (r.src->addr() == a.addr()) mine = true;
    }
    if (mine) out.push_back(r);
  }
  return out;
}

}  // namespace rdmashare::cni::macvlan
