#include "cni/protocol/result.h"

#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

IpPrefix P(const std::string& s) { return *IpPrefix::Parse(s); }
IpAddr A(const std::string& s) { return *IpAddr::Parse(s); }

Result Sample() {
  Result r;
  r.interfaces.push_back(
      Interface{"net1", "02:42:ac:10:0b:0a", 9000, "/var/run/netns/pod1", "0000:0b:00.0", ""});
  r.ips.push_back(IpConfig{P("172.16.11.10/24"), A("172.16.11.254"), 0});
  r.ips.push_back(IpConfig{P("fd00:11::a/64"), A("fd00:11::1"), 0});
  Route def;
  def.dst = P("0.0.0.0/0");
  def.gw = A("172.16.11.254");
  def.table = 100;
  def.mtu = 9000;
  def.scope = 0;
  r.routes.push_back(def);
  r.routes.push_back(Route{P("10.96.0.0/12"), std::nullopt, 0, 0, 0, 0, -1});
  r.dns.nameservers = {"10.96.0.10"};
  r.dns.domain = "cluster.local";
  r.dns.search = {"default.svc.cluster.local"};
  r.dns.options = {"ndots:5"};
  return r;
}

struct GoldenCase {
  std::string version;
  std::string golden;
};

class EncodeResultGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(EncodeResultGoldenTest, MatchesSpecShape) {
  EXPECT_EQ(EncodeResult(Sample(), GetParam().version), GetParam().golden);
}

const char kGolden03[] =
    R"({"cniVersion":"VER","interfaces":[{"name":"net1","mac":"02:42:ac:10:0b:0a","sandbox":"/var/run/netns/pod1"}],)"
    R"("ips":[{"version":"4","interface":0,"address":"172.16.11.10/24","gateway":"172.16.11.254"},)"
    R"({"version":"6","interface":0,"address":"fd00:11::a/64","gateway":"fd00:11::1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"172.16.11.254"},{"dst":"10.96.0.0/12"}],)"
    R"("dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}})";
const char kGolden10[] =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"net1","mac":"02:42:ac:10:0b:0a","sandbox":"/var/run/netns/pod1"}],)"
    R"("ips":[{"interface":0,"address":"172.16.11.10/24","gateway":"172.16.11.254"},)"
    R"({"interface":0,"address":"fd00:11::a/64","gateway":"fd00:11::1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"172.16.11.254"},{"dst":"10.96.0.0/12"}],)"
    R"("dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}})";
const char kGolden11[] =
    R"({"cniVersion":"1.1.0","interfaces":[{"name":"net1","mac":"02:42:ac:10:0b:0a","mtu":9000,"sandbox":"/var/run/netns/pod1","pciID":"0000:0b:00.0"}],)"
    R"("ips":[{"interface":0,"address":"172.16.11.10/24","gateway":"172.16.11.254"},)"
    R"({"interface":0,"address":"fd00:11::a/64","gateway":"fd00:11::1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0","gw":"172.16.11.254","mtu":9000,"table":100,"scope":0},{"dst":"10.96.0.0/12"}],)"
    R"("dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}})";

std::string Golden03(const std::string& v) {
  std::string g = kGolden03;
  g.replace(g.find("VER"), 3, v);
  return g;
}

INSTANTIATE_TEST_SUITE_P(Versions, EncodeResultGoldenTest,
                         ::testing::Values(GoldenCase{"0.3.0", Golden03("0.3.0")},
                                           GoldenCase{"0.3.1", Golden03("0.3.1")},
                                           GoldenCase{"0.4.0", Golden03("0.4.0")},
                                           GoldenCase{"1.0.0", kGolden10},
                                           GoldenCase{"1.1.0", kGolden11}),
                         [](const ::testing::TestParamInfo<GoldenCase>& info) {
                           std::string n = "V" + info.param.version;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

TEST(EncodeResultTest, IpamOnlyResultHasNoInterfacesAndEmptyDns) {
  Result r;
  r.ips.push_back(IpConfig{P("10.1.0.5/16"), std::nullopt, std::nullopt});
  EXPECT_EQ(EncodeResult(r, "1.0.0"),
            R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/16"}],"dns":{}})");
}

TEST(EncodeResultTest, Rule11FieldsOmittedWhenUnset) {
  Result r;
  r.interfaces.push_back(Interface{"net2", "", 0, "", "", ""});
  EXPECT_EQ(EncodeResult(r, "1.1.0"),
            R"({"cniVersion":"1.1.0","interfaces":[{"name":"net2"}],"dns":{}})");
}

class ParseResultRoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ParseResultRoundTripTest, ParsesEncodedResultOfVersion) {
  const std::string& v = GetParam();
  ASSERT_OK_AND_ASSIGN(Result parsed, ParseResult(json::parse(EncodeResult(Sample(), v))));
  Result expected = Sample();
  if (v != "1.1.0") {
    // Pre-1.1 encodings carry no mtu/pciID nor route extras.
    expected.interfaces[0].mtu = 0;
    expected.interfaces[0].pci_id = "";
    expected.routes[0].mtu = 0;
    expected.routes[0].table = 0;
    expected.routes[0].scope = -1;
  }
  EXPECT_EQ(parsed, expected);
}

INSTANTIATE_TEST_SUITE_P(Versions, ParseResultRoundTripTest,
                         ::testing::Values("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = "V" + info.param;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

TEST(ParseResultTest, ReadsReferencePluginPrevResult) {
  // Shape written by the reference macvlan + host-local for 0.4.0.
  ASSERT_OK_AND_ASSIGN(Result r, ParseResult(json::parse(R"({
    "cniVersion":"0.4.0",
    "interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/var/run/netns/x"}],
    "ips":[{"version":"4","interface":0,"address":"10.1.2.3/24","gateway":"10.1.2.1"}],
    "dns":{}})")));
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0].address.ToString(), "10.1.2.3/24");
  EXPECT_EQ(r.ips[0].gateway, A("10.1.2.1"));
  EXPECT_EQ(r.ips[0].interface, 0);
  EXPECT_EQ(r.ips[0].Family(), 4);
  EXPECT_EQ(r.interfaces[0].sandbox, "/var/run/netns/x");
}

TEST(ParseResultTest, AddressesAreParsedOnceIntoValuesAndEncodedCanonically) {
  ASSERT_OK_AND_ASSIGN(Result r, ParseResult(json::parse(R"({
    "ips":[{"address":"FD00:11:0::A/64","gateway":"FD00:11::1"}],
    "routes":[{"dst":"10.1.2.3/8","gw":"10.0.0.1"}]})")));
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0].address, P("fd00:11::a/64"));
  EXPECT_EQ(r.ips[0].Family(), 6);
  EXPECT_EQ(r.ips[0].gateway, A("fd00:11::1"));
  ASSERT_EQ(r.routes.size(), 1u);
  // A route destination keeps its host bits, as written; whoever installs it masks them.
  EXPECT_EQ(r.routes[0].dst.ToString(), "10.1.2.3/8");
  EXPECT_EQ(r.routes[0].gw, A("10.0.0.1"));
  EXPECT_EQ(EncodeResult(r, "1.0.0"),
            R"({"cniVersion":"1.0.0","ips":[{"address":"fd00:11::a/64","gateway":"fd00:11::1"}],)"
            R"("routes":[{"dst":"10.1.2.3/8","gw":"10.0.0.1"}],"dns":{}})");
}

TEST(ParseResultTest, MalformedIsCode7) {
  struct Case {
    std::string json, message;
  };
  const Case cases[] = {
      {R"([])", "must be a JSON object"},
      {R"({"interfaces":{}})", "\"interfaces\" must be an array"},
      {R"({"interfaces":[{"mac":"x"}]})", "\"name\" is missing"},
      {R"({"ips":[{"address":"10.0.0.1"}]})", "is not a CIDR"},
      {R"({"ips":[{"address":"10.0.0.1/33"}]})", "is not a CIDR"},
      {R"({"ips":[{"address":"10.0.0.1/24","gateway":"fd00::1"}]})", "not an IPv4 address"},
      {R"({"ips":[{"version":"6","address":"10.0.0.1/24"}]})", "does not match"},
      {R"({"ips":[{"address":"10.0.0.1/24","interface":0}]})", "out of range"},
      {R"({"ips":[{"address":"10.0.0.1/24","interface":"0"}]})", "must be an integer"},
      {R"({"routes":[{"gw":"10.0.0.1"}]})", "\"dst\" is missing"},
      {R"({"routes":[{"dst":"default"}]})", "is not a CIDR"},
      {R"({"routes":[{"dst":"0.0.0.0/0","table":"main"}]})", "\"table\" must be an integer"},
      {R"({"dns":{"nameservers":"10.0.0.1"}})", "must be an array of strings"},
      // Found by fuzz/cni_result: out-of-range integers used to wrap or vanish on re-encoding.
      {R"({"routes":[{"dst":"0.0.0.0/0","mtu":-1500}]})", "\"mtu\" must be an integer from 0"},
      {R"({"routes":[{"dst":"0.0.0.0/0","table":4294967396}]})", "\"table\" must be an integer"},
      {R"({"routes":[{"dst":"0.0.0.0/0","scope":256}]})",
       "\"scope\" must be an integer from 0 to 255"},
      {R"({"interfaces":[{"name":"a","mtu":-1}]})", "\"mtu\" must be an integer from 0"},
      {R"({"interfaces":[{"name":"a"}],"ips":[{"address":"10.0.0.1/24","interface":4294967296}]})",
       "interface 4294967296 is out of range"},
      {R"({"interfaces":[{"name":"a"}],"ips":[{"address":"10.0.0.1/24","interface":-1}]})",
       "out of range"},
  };
  for (const Case& c : cases) {
    auto r = ParseResult(json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(CniCode(r.status()), kInvalidNetworkConfig) << c.json;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message)) << c.json;
  }
}

}  // namespace
}  // namespace rdmashare::cni
