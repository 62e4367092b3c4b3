// The routing planner as data: no root, no netlink, no namespace.
#include "cni/macvlan/routing_plan.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::macvlan {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kIf = 7;

IpAddr A(const std::string& s) { return *IpAddr::Parse(s); }

// An IPAM address ("172.16.11.10/24") with an optional gateway.
IpConfig Addr(const std::string& cidr, const std::string& gw = "") {
  IpConfig c;
  c.address = *IpPrefix::Parse(cidr);
  if (!gw.empty()) c.gateway = A(gw);
  return c;
}

// An IPAM route with an optional next hop.
Route R(const std::string& dst, const std::string& gw = "") {
  Route r;
  r.dst = *IpPrefix::Parse(dst);
  if (!gw.empty()) r.gw = A(gw);
  return r;
}

std::vector<std::string> Routes(const RoutingPlan& plan) {
  std::vector<std::string> out;
  for (const net::Route& r : plan.routes) out.push_back(net::RouteString(r));
  return out;
}

std::vector<std::string> Rules(const RoutingPlan& plan) {
  std::vector<std::string> out;
  for (const net::Rule& r : plan.rules) out.push_back(net::RuleString(r));
  return out;
}

TEST(PlanRoutingTest, Ipv4WithGatewayGetsConnectedDefaultAndRuleInItsTable) {
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24", "172.16.11.254")}, {}, kIf, 101, 1000);
  EXPECT_THAT(Routes(plan),
              ElementsAre("172.16.11.0/24 dev 7 table 101 scope link src 172.16.11.10",
                          "default via 172.16.11.254 dev 7 table 101"));
  EXPECT_THAT(Rules(plan), ElementsAre("1000: from 172.16.11.10 lookup 101"));
  ASSERT_EQ(plan.rules.size(), 1u);
  EXPECT_EQ(plan.rules[0].family, AF_INET);
  EXPECT_EQ(plan.rules[0].src, IpPrefix::Host(A("172.16.11.10")));
}

TEST(PlanRoutingTest, Ipv6WithGateway) {
  RoutingPlan plan = PlanRouting({Addr("fd00:11::10/64", "fd00:11::1")}, {}, kIf, 100, 1000);
  EXPECT_THAT(Routes(plan), ElementsAre("fd00:11::/64 dev 7 table 100 scope link src fd00:11::10",
                                        "default via fd00:11::1 dev 7 table 100"));
  EXPECT_THAT(Rules(plan), ElementsAre("1000: from fd00:11::10 lookup 100"));
  ASSERT_EQ(plan.rules.size(), 1u);
  EXPECT_EQ(plan.rules[0].family, AF_INET6);
  EXPECT_EQ(plan.routes[1].dst, IpPrefix::Default(6));
}

TEST(PlanRoutingTest, DualStackHasOneDefaultAndOneRulePerFamily) {
  RoutingPlan plan =
      PlanRouting({Addr("172.16.11.10/24", "172.16.11.254"), Addr("fd00:11::10/64", "fd00:11::1")},
                  {}, kIf, 100, 1200);
  EXPECT_THAT(Routes(plan),
              ElementsAre("172.16.11.0/24 dev 7 table 100 scope link src 172.16.11.10",
                          "default via 172.16.11.254 dev 7 table 100",
                          "fd00:11::/64 dev 7 table 100 scope link src fd00:11::10",
                          "default via fd00:11::1 dev 7 table 100"));
  EXPECT_THAT(Rules(plan), ElementsAre("1200: from 172.16.11.10 lookup 100",
                                       "1200: from fd00:11::10 lookup 100"));
}

TEST(PlanRoutingTest, OnlyTheFirstGatewayOfAFamilyBecomesTheTablesDefault) {
  RoutingPlan plan = PlanRouting(
      {Addr("172.16.11.10/24", "172.16.11.254"), Addr("172.16.12.10/24", "172.16.12.254")}, {}, kIf,
      100, 1000);
  EXPECT_THAT(Routes(plan),
              ElementsAre("172.16.11.0/24 dev 7 table 100 scope link src 172.16.11.10",
                          "default via 172.16.11.254 dev 7 table 100",
                          "172.16.12.0/24 dev 7 table 100 scope link src 172.16.12.10"));
  EXPECT_THAT(Rules(plan), ElementsAre("1000: from 172.16.11.10 lookup 100",
                                       "1000: from 172.16.12.10 lookup 100"));
}

TEST(PlanRoutingTest, WithoutGatewayNoDefaultRoute) {
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24")}, {}, kIf, 100, 1000);
  EXPECT_THAT(Routes(plan),
              ElementsAre("172.16.11.0/24 dev 7 table 100 scope link src 172.16.11.10"));
  EXPECT_THAT(Rules(plan), ElementsAre("1000: from 172.16.11.10 lookup 100"));
}

TEST(PlanRoutingTest, ExtraRoutesGoInTheTableAndMainViaTheIpamGateway) {
  Route with_attrs = R("10.96.0.0/12");
  with_attrs.mtu = 9000;
  with_attrs.priority = 50;
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24", "172.16.11.254")},
                                 {with_attrs, R("192.168.0.0/16", "172.16.11.1")}, kIf, 100, 1000);
  EXPECT_THAT(Routes(plan),
              ElementsAre("172.16.11.0/24 dev 7 table 100 scope link src 172.16.11.10",
                          "default via 172.16.11.254 dev 7 table 100",
                          "10.96.0.0/12 via 172.16.11.254 dev 7 table 100 metric 50 mtu 9000",
                          "10.96.0.0/12 via 172.16.11.254 dev 7 metric 50 mtu 9000",
                          "192.168.0.0/16 via 172.16.11.1 dev 7 table 100",
                          "192.168.0.0/16 via 172.16.11.1 dev 7"));
  EXPECT_EQ(plan.routes[3].table, uint32_t{RT_TABLE_MAIN});
  EXPECT_EQ(plan.routes[3].scope, RT_SCOPE_UNIVERSE);
}

TEST(PlanRoutingTest, ExtraRouteWithoutAnyGatewayIsOnLink) {
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24")}, {R("10.96.0.0/12")}, kIf, 100, 1000);
  EXPECT_THAT(
      Routes(plan),
      ElementsAre("172.16.11.0/24 dev 7 table 100 scope link src 172.16.11.10",
                  "10.96.0.0/12 dev 7 table 100 scope link", "10.96.0.0/12 dev 7 scope link"));
}

TEST(PlanRoutingTest, ExtraRouteUsesTheGatewayOfItsOwnFamily) {
  RoutingPlan plan =
      PlanRouting({Addr("172.16.11.10/24", "172.16.11.254"), Addr("fd00:11::10/64", "fd00:11::1")},
                  {R("fd00:99::/48")}, kIf, 100, 1000);
  ASSERT_EQ(plan.routes.size(), 6u);
  EXPECT_EQ(net::RouteString(plan.routes[4]), "fd00:99::/48 via fd00:11::1 dev 7 table 100");
  EXPECT_EQ(net::RouteString(plan.routes[5]), "fd00:99::/48 via fd00:11::1 dev 7");
}

TEST(PlanRoutingTest, RouteDestinationLosesItsHostBits) {
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24")}, {R("10.1.2.3/8", "172.16.11.1")}, kIf,
                                 std::nullopt, 1000);
  ASSERT_EQ(plan.routes.size(), 1u);
  EXPECT_EQ(plan.routes[0].dst.ToString(), "10.0.0.0/8");
}

TEST(PlanRoutingTest, DefaultRouteStaysOutOfMainAndIsNotDuplicatedInTheTable) {
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24", "172.16.11.254")},
                                 {R("0.0.0.0/0"), R("::/0", "fd00:11::1")}, kIf, 100, 1000);
  // The IPv4 default is the table's own (from the IPAM gateway); the IPv6 one has no table
  // default yet, so it goes in the table; neither goes in main (the pod's eth0 keeps that).
  EXPECT_THAT(Routes(plan),
              ElementsAre("172.16.11.0/24 dev 7 table 100 scope link src 172.16.11.10",
                          "default via 172.16.11.254 dev 7 table 100",
                          "default via fd00:11::1 dev 7 table 100"));
}

TEST(PlanRoutingTest, WithoutPolicyRoutingOnlyIpamRoutesInMain) {
  RoutingPlan plan = PlanRouting({Addr("172.16.11.10/24", "172.16.11.254")},
                                 {R("10.96.0.0/12"), R("0.0.0.0/0")}, kIf, std::nullopt, 1000);
  EXPECT_THAT(Routes(plan), ElementsAre("10.96.0.0/12 via 172.16.11.254 dev 7",
                                        "default via 172.16.11.254 dev 7"));
  EXPECT_THAT(plan.rules, IsEmpty());
  EXPECT_THAT(PlanRouting({Addr("172.16.11.10/24")}, {}, kIf, std::nullopt, 1000).routes,
              IsEmpty());
}

TEST(ResolveRouteTableTest, NetKMapsTo100PlusKMinus1) {
  MacvlanConfig c;
  std::vector<std::pair<std::string, uint32_t>> cases = {
      {"net1", 100}, {"net2", 101}, {"net8", 107}, {"net153", 252}};
  for (const auto& [ifname, table] : cases) {
    ASSERT_OK_AND_ASSIGN(uint32_t got, ResolveRouteTable(c, ifname));
    EXPECT_EQ(got, table) << ifname;
  }
}

TEST(ResolveRouteTableTest, ConfiguredTableWins) {
  MacvlanConfig c;
  c.route_table = 4242;
  ASSERT_OK_AND_ASSIGN(uint32_t got, ResolveRouteTable(c, "net3"));
  EXPECT_EQ(got, 4242u);
  ASSERT_OK_AND_ASSIGN(got, ResolveRouteTable(c, "eth1"));
  EXPECT_EQ(got, 4242u);
}

TEST(ResolveRouteTableTest, OtherNamesFailClearly) {
  MacvlanConfig c;
  for (const std::string ifname : {"eth1", "net0", "net", "net01", "net154", "netx", "net1a"}) {
    auto got = ResolveRouteTable(c, ifname);
    ASSERT_FALSE(got.ok()) << ifname;
    EXPECT_EQ(CniCode(got.status()), kInvalidNetworkConfig);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("routeTable")) << ifname;
  }
}

TEST(PolicyTableTest, NoneWhenPolicyRoutingIsOff) {
  MacvlanConfig c;
  c.policy_routing = false;
  ASSERT_OK_AND_ASSIGN(std::optional<uint32_t> off, PolicyTable(c, "eth1"));
  EXPECT_EQ(off, std::nullopt);
  c.policy_routing = true;
  ASSERT_OK_AND_ASSIGN(std::optional<uint32_t> on, PolicyTable(c, "net2"));
  EXPECT_EQ(on, std::optional<uint32_t>(101));
  EXPECT_FALSE(PolicyTable(c, "eth1").ok());
}

TEST(OwnRulesTest, RulesOfTheTableFromTheInterfacesAddresses) {
  net::Rule mine{AF_INET, IpPrefix::Host(A("172.16.11.10")), 100, 1000};
  net::Rule other_src{AF_INET, IpPrefix::Host(A("172.16.11.11")), 100, 1000};
  net::Rule other_table{AF_INET, IpPrefix::Host(A("172.16.11.10")), 101, 1000};
  net::Rule from_all{AF_INET, std::nullopt, 100, 1000};
  std::vector<net::Rule> listed = {mine, other_src, other_table, from_all};
  std::set<IpPrefix> addrs = {*IpPrefix::Parse("172.16.11.10/24")};
  EXPECT_THAT(OwnRules(listed, 100, addrs, false), ElementsAre(mine));
  // Link gone (no addresses) or stripped by an earlier DEL: every sourced rule of the table.
  EXPECT_THAT(OwnRules(listed, 100, {}, false), ElementsAre(mine, other_src));
  EXPECT_THAT(OwnRules(listed, 100, addrs, true), ElementsAre(mine, other_src));
}

}  // namespace
}  // namespace rdmashare::cni::macvlan
