#include "cni/macvlan/config.h"

#include <ostream>
#include <string>
#include <vector>

#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::macvlan {
namespace {

using ::rdmashare::testing::IsOk;
using ::testing::HasSubstr;

NetConf Conf(const std::string& extra_json) {
  std::string text =
      R"({"cniVersion":"1.0.0","name":"rail1","type":"rdmashare-macvlan")" + extra_json + "}";
  auto conf = ParseNetConf(text);
  EXPECT_THAT(conf, IsOk()) << text;
  return conf.ok() ? *conf : NetConf{};
}

TEST(MacvlanConfigTest, DefaultsWhenFieldsAreAbsent) {
  ASSERT_OK_AND_ASSIGN(MacvlanConfig c, ParseMacvlanConfig(Conf(""), {}, "/sys"));
  MacvlanConfig want;
  want.sysfs_root = "/sys";
  EXPECT_EQ(c, want);
  EXPECT_TRUE(c.policy_routing);
  EXPECT_TRUE(c.defer_link_delete);
  EXPECT_FALSE(c.allow_host_netns);
  EXPECT_EQ(c.mode, "bridge");
  EXPECT_EQ(c.rule_priority, 1000u);
}

TEST(MacvlanConfigTest, ReadsEveryField) {
  ASSERT_OK_AND_ASSIGN(
      MacvlanConfig c,
      ParseMacvlanConfig(
          Conf(R"(,"master":"enp11s0f0np0","mode":"private","mtu":9000,"mac":"02:00:00:00:00:01",
               "policyRouting":false,"routeTable":120,"rulePriority":500,"detectGateway":false,
               "detectIPConflict":true,"probeCount":2,"probeIntervalMs":50,"gatewayTimeoutMs":800,"sysfsRoot":"/fake",
               "logFile":"/tmp/x.log","logLevel":"debug","deferLinkDelete":false,
               "allowHostNetns":true,"ipam":{"type":"rdmashare-ipam"})"),
          {}, "/sys"));
  EXPECT_EQ(c.master, "enp11s0f0np0");
  EXPECT_EQ(c.mode, "private");
  EXPECT_EQ(c.mtu, 9000);
  EXPECT_EQ(c.mac, "02:00:00:00:00:01");
  EXPECT_FALSE(c.policy_routing);
  EXPECT_EQ(c.route_table, 120u);
  EXPECT_EQ(c.rule_priority, 500u);
  EXPECT_EQ(c.detect_gateway, false);
  EXPECT_EQ(c.detect_ip_conflict, true);
  EXPECT_EQ(c.probe_count, 2);
  EXPECT_EQ(c.probe_interval_ms, 50);
  EXPECT_EQ(c.gateway_timeout_ms, 800);
  EXPECT_EQ(c.sysfs_root, "/fake");
  EXPECT_FALSE(c.defer_link_delete);
  EXPECT_TRUE(c.allow_host_netns);
  EXPECT_EQ(c.log_file, "/tmp/x.log");
  EXPECT_EQ(c.ipam_type, "rdmashare-ipam");
}

TEST(MacvlanConfigTest, MacPrecedenceRuntimeConfigOverCniArgsOverConfig) {
  NetConf all = Conf(R"(,"mac":"02:00:00:00:00:01","runtimeConfig":{"mac":"02:00:00:00:00:03"})");
  ASSERT_OK_AND_ASSIGN(MacvlanConfig c,
                       ParseMacvlanConfig(all, {{"MAC", "02:00:00:00:00:02"}}, "/sys"));
  EXPECT_EQ(c.mac, "02:00:00:00:00:03");
  NetConf no_rc = Conf(R"(,"mac":"02:00:00:00:00:01")");
  ASSERT_OK_AND_ASSIGN(c, ParseMacvlanConfig(no_rc, {{"MAC", "02:00:00:00:00:02"}}, "/sys"));
  EXPECT_EQ(c.mac, "02:00:00:00:00:02");
  ASSERT_OK_AND_ASSIGN(c, ParseMacvlanConfig(no_rc, {}, "/sys"));
  EXPECT_EQ(c.mac, "02:00:00:00:00:01");
}

struct BadCase {
  std::string name;
  std::string json;
  int code;
  std::string substr;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class MacvlanConfigBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(MacvlanConfigBadTest, IsRejectedWithCodeAndMessage) {
  const BadCase& c = GetParam();
  auto got = ParseMacvlanConfig(Conf(c.json), {}, "/sys");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(CniCode(got.status()), c.code) << got.status();
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(c.substr));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MacvlanConfigBadTest,
    ::testing::Values(
        BadCase{"MasterNotString", R"(,"master":5)", 7, "\"master\" must be a string"},
        BadCase{"MasterTooLong", R"(,"master":"abcdefghijklmnop")", 7, "not a valid interface"},
        BadCase{"MasterWithSlash", R"(,"master":"a/b")", 7, "not a valid interface"},
        BadCase{"MasterWithPercentD", R"(,"master":"eth%d")", 7,
                "\"master\" \"eth%d\" is not a valid interface name: it contains '%'"},
        BadCase{"MasterWithColon", R"(,"master":"eth0:1")", 7, "it contains ':'"},
        BadCase{"MasterWithSpace", R"(,"master":"eth 0")", 7, "it contains whitespace"},
        BadCase{"MasterDotDot", R"(,"master":"..")", 7, "not a valid interface name"},
        BadCase{"MasterNotAscii", R"(,"master":"eth\u00e9")", 7,
                "\"eth\\xc3\\xa9\" is not a valid interface name: it contains byte 0xc3"},
        BadCase{"MasterControlCharacter", R"(,"master":"eth\u0001")", 7,
                "it contains byte 0x01 at offset 3"},
        BadCase{"AllowHostNetnsNotBool", R"(,"allowHostNetns":"yes")", 7,
                "\"allowHostNetns\" must be true or false"},
        BadCase{"UnknownMode", R"(,"mode":"source")", 7, "not one of bridge"},
        BadCase{"MtuNotInt", R"(,"mtu":"9000")", 7, "\"mtu\" must be an integer"},
        BadCase{"MtuTooSmall", R"(,"mtu":60)", 7, "below 68"},
        BadCase{"MtuTooLarge", R"(,"mtu":70000)", 7, "must be in [0, 65535]"},
        BadCase{"MacMalformed", R"(,"mac":"02:00:00:00:00")", 7, "not a unicast MAC"},
        BadCase{"MacMulticast", R"(,"mac":"01:00:00:00:00:01")", 7, "not a unicast MAC"},
        BadCase{"RuntimeMacMalformed", R"(,"runtimeConfig":{"mac":"zz"})", 7, "not a unicast"},
        BadCase{"PolicyRoutingNotBool", R"(,"policyRouting":"yes")", 7, "true or false"},
        BadCase{"DeferLinkDeleteNotBool", R"(,"deferLinkDelete":1)", 7, "\"deferLinkDelete\""},
        BadCase{"RouteTableMain", R"(,"routeTable":254)", 7, "reserved table"},
        BadCase{"RouteTableZero", R"(,"routeTable":0)", 7, "\"routeTable\" must be in"},
        BadCase{"RulePriorityZero", R"(,"rulePriority":0)", 7, "\"rulePriority\" must be in"},
        BadCase{"ProbeCountHuge", R"(,"probeCount":100)", 7, "\"probeCount\" must be in"},
        BadCase{"GatewayTimeoutTiny", R"(,"gatewayTimeoutMs":1)", 7,
                "\"gatewayTimeoutMs\" must be in"},
        BadCase{"IpamWithoutType", R"(,"ipam":{})", 7, "ipam.type"},
        BadCase{"DetectGatewayNotBool", R"(,"detectGateway":1)", 7, "\"detectGateway\""}),
    [](const auto& info) { return info.param.name; });

TEST(MacvlanConfigTest, CniArgsMacMalformedIsInvalidEnv) {
  auto got = ParseMacvlanConfig(Conf(""), {{"MAC", "nope"}}, "/sys");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(CniCode(got.status()), kInvalidEnv);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("CNI_ARGS MAC=\"nope\""));
}

TEST(TempLinkNameTest, IsStableValidAndDistinct) {
  std::string a = TempLinkName("abc", "net1");
  EXPECT_EQ(a, TempLinkName("abc", "net1"));
  EXPECT_EQ(a.size(), 15u);
  EXPECT_EQ(a.rfind("rsm", 0), 0u);
  EXPECT_NE(a, TempLinkName("abc", "net2"));
  EXPECT_NE(a, TempLinkName("abd", "net1"));
  // The separator keeps ("ab","cnet1") and ("abc","net1") apart.
  EXPECT_NE(TempLinkName("ab", "cnet1"), a);
}

TEST(DeadLinkNameTest, SharesTheHashButNotThePrefixWithTheTemporaryName) {
  std::string temp = TempLinkName("abc", "net1");
  std::string dead = DeadLinkName("abc", "net1");
  EXPECT_EQ(dead.size(), 15u);
  EXPECT_EQ(dead.rfind("rsx", 0), 0u);
  EXPECT_EQ(dead.substr(3), temp.substr(3));
  EXPECT_NE(dead, DeadLinkName("abc", "net2"));
}

}  // namespace
}  // namespace rdmashare::cni::macvlan
