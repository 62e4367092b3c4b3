#include "deviceplugin/config.h"

#include <ostream>
#include <string>
#include <vector>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string TestData(const std::string& name) {
  absl::StatusOr<std::string> content = ReadFile(std::string(RS_DP_TESTDATA_DIR) + "/" + name);
  EXPECT_TRUE(content.ok()) << content.status().ToString();
  return content.ok() ? *content : std::string();
}

// A config with one entry object given as JSON text.
std::string OneEntry(const std::string& entry) { return R"({"configList": [)" + entry + "]}"; }

// A valid entry for tests that need one.
constexpr char kGoodEntry[] =
    R"({"resourceName": "good", "rdmaHcaMax": 1, "selectors": {"ifNames": ["eth0"]}})";

ResourceConfig Rail(const std::string& name, const std::string& if_name) {
  ResourceConfig rc;
  rc.resource_prefix = "spidernet.io";
  rc.resource_name = name;
  rc.rdma_hca_max = 100;
  rc.selectors.if_names = {if_name};
  return rc;
}

TEST(ParseConfigTest, WalkthroughConfigParsesToExpectedConfig) {
  PluginConfig want;
  want.periodic_update_interval_s = 300;
  want.resources = {
      Rail("shared_cx5_gpu1", "enp11s0f0np0"), Rail("shared_cx5_gpu2", "enp12s0f0np0"),
      Rail("shared_cx5_gpu3", "enp13s0f0np0"), Rail("shared_cx5_gpu4", "enp14s0f0np0"),
      Rail("shared_cx5_gpu5", "enp15s0f0np0"), Rail("shared_cx5_gpu6", "enp16s0f0np0"),
      Rail("shared_cx5_gpu7", "enp17s0f0np0"), Rail("shared_cx5_gpu8", "enp18s0f0np0"),
  };
  std::vector<std::string> warnings;
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(TestData("walkthrough.json"), &warnings));
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.resources[0].FullName(), "spidernet.io/shared_cx5_gpu1");
  EXPECT_THAT(warnings, IsEmpty());
}

// deployment/k8s/base/configmap.yaml of the Go plugin, verbatim.
TEST(ParseConfigTest, GoPluginConfigMapExampleParses) {
  ResourceConfig a;
  a.resource_name = "hca_shared_devices_a";
  a.rdma_hca_max = 1000;
  a.devices = {"ib0", "ib1"};
  a.selectors.if_names = {"ib0", "ib1"};
  ResourceConfig b;
  b.resource_name = "hca_shared_devices_b";
  b.rdma_hca_max = 500;
  b.selectors.vendors = {"15b3"};
  b.selectors.device_ids = {"1017"};
  b.selectors.if_names = {"ib3", "ib4"};
  PluginConfig want;
  want.periodic_update_interval_s = 300;
  want.resources = {a, b};

  std::vector<std::string> warnings;
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(TestData("go_configmap.json"), &warnings));
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.resources[0].FullName(), "rdma/hca_shared_devices_a");
  EXPECT_THAT(warnings,
              ElementsAre("configList[0].devices: deprecated; use selectors.ifNames (treated as "
                          "ifNames)"));
}

// README.md of the Go plugin, verbatim: its "example_prefix" is no DNS subdomain, so kubelet
// would refuse to register "example_prefix/hca_shared_devices_a". We refuse it up front.
TEST(ParseConfigTest, GoPluginReadmeExampleIsRejectedForItsKubeletInvalidPrefix) {
  EXPECT_THAT(ParseConfig(TestData("go_readme.json"), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("configList[0] (resourceName \"hca_shared_devices_a\"): "
                                       "resourcePrefix: \"example_prefix\" is not a lower-case "
                                       "DNS subdomain"),
                             HasSubstr("kubelet refuses to register"))));
}

TEST(ParseConfigTest, GoPluginReadmeExampleWithValidPrefixParses) {
  std::string text = TestData("go_readme.json");
  size_t at = text.find("example_prefix");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("example_prefix").size(), "example.com");
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(text, nullptr));
  ASSERT_EQ(got.resources.size(), 2u);
  EXPECT_EQ(got.resources[0].FullName(), "example.com/hca_shared_devices_a");
  EXPECT_EQ(got.resources[1].FullName(), "rdma/hca_shared_devices_b");
}

TEST(ParseConfigTest, AppliesDefaults) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 5,
                                                "selectors": {"drivers": ["mlx5_core"]}})"),
                                   nullptr));
  EXPECT_EQ(got.periodic_update_interval_s, 60);
  ASSERT_EQ(got.resources.size(), 1u);
  const ResourceConfig& rc = got.resources[0];
  EXPECT_EQ(rc.resource_prefix, "rdma");
  EXPECT_EQ(rc.FullName(), "rdma/r");
  EXPECT_EQ(rc.rdma_hca_max, 5);
  EXPECT_FALSE(rc.include_issm);
  EXPECT_THAT(rc.devices, IsEmpty());
  EXPECT_THAT(rc.selectors.drivers, ElementsAre("mlx5_core"));
}

TEST(ParseConfigTest, MissingRdmaHcaMaxDefaultsToZeroWithWarning) {
  std::vector<std::string> warnings;
  ASSERT_OK_AND_ASSIGN(
      PluginConfig got,
      ParseConfig(OneEntry(R"({"resourceName": "r", "selectors": {"ifNames": ["eth0"]}})"),
                  &warnings));
  EXPECT_EQ(got.resources[0].rdma_hca_max, 0);
  EXPECT_THAT(warnings, ElementsAre(HasSubstr("configList[0].rdmaHcaMax: not set; defaults to 0")));
}

TEST(ParseConfigTest, NullValuesCountAsAbsentLikeGo) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(R"({"periodicUpdateInterval": null,
      "configList": [{"resourceName": "r", "resourcePrefix": null, "rdmaHcaMax": 3,
                      "devices": null, "includeIssm": null,
                      "selectors": {"ifNames": ["eth0"], "vendors": null}}]})",
                                                     nullptr));
  EXPECT_EQ(got.periodic_update_interval_s, 60);
  EXPECT_EQ(got.resources[0].resource_prefix, "rdma");
  EXPECT_THAT(got.resources[0].selectors.vendors, IsEmpty());
  EXPECT_FALSE(got.resources[0].include_issm);
}

TEST(ParseConfigTest, EmptyResourcePrefixMeansDefaultLikeGo) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "resourcePrefix": "",
                                                "rdmaHcaMax": 1, "devices": ["eth0"]})"),
                                   nullptr));
  EXPECT_EQ(got.resources[0].FullName(), "rdma/r");
}

TEST(ParseConfigTest, ZeroPeriodicUpdateIntervalDisablesRescan) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(R"({"periodicUpdateInterval": 0, "configList": [)" +
                                       std::string(kGoodEntry) + "]}",
                                   nullptr));
  EXPECT_EQ(got.periodic_update_interval_s, 0);
}

TEST(ParseConfigTest, AcceptsRdmaHcaMaxBounds) {
  for (int n : {0, 10000}) {
    ASSERT_OK_AND_ASSIGN(PluginConfig got,
                         ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": )" +
                                              std::to_string(n) + R"(, "devices": ["eth0"]})"),
                                     nullptr));
    EXPECT_EQ(got.resources[0].rdma_hca_max, n);
  }
}

TEST(ParseConfigTest, IncludeIssmExtensionIsRead) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1,
                                                "includeIssm": true, "devices": ["ib0"]})"),
                                   nullptr));
  EXPECT_TRUE(got.resources[0].include_issm);
}

TEST(ParseConfigTest, MountCliExtensionIsReadAndDefaultsOff) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1,
                                                "mountCli": true, "devices": ["ib0"]})"),
                                   nullptr));
  EXPECT_TRUE(got.resources[0].mount_cli);
  ASSERT_OK_AND_ASSIGN(PluginConfig plain,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1,
                                                "devices": ["ib0"]})"),
                                   nullptr));
  EXPECT_FALSE(plain.resources[0].mount_cli);
}

TEST(ParseConfigTest, HealthPolicyAndTopologyDefaultToAnyAndOn) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1,
                                                "devices": ["ib0"]})"),
                                   nullptr));
  EXPECT_EQ(got.resources[0].health_policy, HealthPolicy::kAny);
  EXPECT_TRUE(got.resources[0].topology);
}

TEST(ParseConfigTest, HealthPolicyIsReadCaseInsensitively) {
  struct Case {
    const char* text;
    HealthPolicy want;
  };
  for (const Case& c : {Case{"all", HealthPolicy::kAll}, Case{"ALL", HealthPolicy::kAll},
                        Case{"any", HealthPolicy::kAny}, Case{"Any", HealthPolicy::kAny}}) {
    ASSERT_OK_AND_ASSIGN(PluginConfig got,
                         ParseConfig(OneEntry(fmt::format(R"({{"resourceName": "r", "rdmaHcaMax": 1,
                                             "healthPolicy": "{}", "devices": ["ib0"]}})",
                                                          c.text)),
                                     nullptr));
    EXPECT_EQ(got.resources[0].health_policy, c.want) << c.text;
  }
}

TEST(ParseConfigTest, TopologyFalseTurnsTopologyOff) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1,
                                                "topology": false, "devices": ["ib0"]})"),
                                   nullptr));
  EXPECT_FALSE(got.resources[0].topology);
}

TEST(ParseConfigTest, DeprecatedDevicesFoldIntoIfNames) {
  ASSERT_OK_AND_ASSIGN(
      PluginConfig got,
      ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": ["ib0", "ib1"],
                               "selectors": {"vendors": []}})"),
                  nullptr));
  EXPECT_THAT(got.resources[0].devices, ElementsAre("ib0", "ib1"));
  EXPECT_THAT(got.resources[0].selectors.if_names, ElementsAre("ib0", "ib1"));
}

TEST(ParseConfigTest, AcceptsBoundaryResourceNamesAndPrefixes) {
  struct Case {
    std::string prefix;
    std::string name;
  };
  const std::vector<Case> cases = {
      {"rdma", std::string(63, 'a')},
      {"rdma", "A_1"},
      {"rdma", "123"},
      {"rdma", "x"},
      {"nvidia.com", "hca"},
      {"a-b.c-d.example", "hca"},
      {std::string(244, 'p'), "hca"},
      {"0", "hca"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.prefix + "/" + c.name);
    ASSERT_OK_AND_ASSIGN(
        PluginConfig got,
        ParseConfig(OneEntry(R"({"resourceName": ")" + c.name + R"(", "resourcePrefix": ")" +
                             c.prefix + R"(", "rdmaHcaMax": 1, "devices": ["eth0"]})"),
                    nullptr));
    EXPECT_EQ(got.resources[0].FullName(), c.prefix + "/" + c.name);
  }
}

TEST(ParseConfigTest, NormalizesSelectorValues) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(OneEntry(R"({"resourceName": "r",
      "rdmaHcaMax": 1, "selectors": {"vendors": ["0x15B3", "8086"], "deviceIDs": ["0X101d", "1017"],
      "linkTypes": ["Ethernet", "ib"], "drivers": ["mlx5_core"], "ifNames": ["eth0"]}})"),
                                                     nullptr));
  const Selectors& s = got.resources[0].selectors;
  EXPECT_THAT(s.vendors, ElementsAre("15b3", "8086"));
  EXPECT_THAT(s.device_ids, ElementsAre("101d", "1017"));
  EXPECT_THAT(s.link_types, ElementsAre("ether", "infiniband"));
  EXPECT_THAT(s.drivers, ElementsAre("mlx5_core"));
  EXPECT_THAT(s.if_names, ElementsAre("eth0"));
}

TEST(NormalizePciIdTest, NormalizesValidIds) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"15b3", "15b3"},   {"15B3", "15b3"}, {"0x15b3", "15b3"}, {"0X15B3", "15b3"},
      {"0x1017", "1017"}, {"101D", "101d"}, {"0000", "0000"},   {"ffff", "ffff"},
  };
  for (const auto& [in, want] : cases) {
    absl::StatusOr<std::string> got = NormalizePciId(in);
    ASSERT_THAT(got, IsOk()) << in;
    EXPECT_EQ(*got, want) << in;
  }
}

TEST(NormalizePciIdTest, RejectsInvalidIds) {
  for (const std::string in :
       {"", "0x", "15b", "015b3", "mellanox", "15g3", "x15b3", "0x15b3 ", " 15b3", "0x0x15"}) {
    EXPECT_THAT(NormalizePciId(in),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("\"" + in + "\""), HasSubstr("is not a PCI id"))))
        << in;
  }
}

TEST(NormalizeLinkTypeTest, MapsSynonyms) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ether", "ether"},           {"ethernet", "ether"},
      {"Ethernet", "ether"},        {"eth", "ether"},
      {"ETHER", "ether"},           {"infiniband", "infiniband"},
      {"InfiniBand", "infiniband"}, {"ib", "infiniband"},
      {"IB", "infiniband"},
  };
  for (const auto& [in, want] : cases) {
    absl::StatusOr<std::string> got = NormalizeLinkType(in);
    ASSERT_THAT(got, IsOk()) << in;
    EXPECT_EQ(*got, want) << in;
  }
}

TEST(NormalizeLinkTypeTest, RejectsOtherValues) {
  for (const std::string in : {"", "roce", "RoCE", "ipoib", "loopback", "ether "}) {
    EXPECT_THAT(NormalizeLinkType(in),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("\"" + in + "\""), HasSubstr("is not a link type"))))
        << in;
  }
}

// encoding/json matches keys case-insensitively; configs relying on it keep working.
TEST(ParseConfigTest, AcceptsCaseInsensitiveKeysLikeGoWithWarning) {
  std::vector<std::string> warnings;
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(R"({"PeriodicUpdateInterval": 30,
      "configlist": [{"ResourceName": "r", "RESOURCEPREFIX": "example.com", "rdmahcamax": 7,
                      "Selectors": {"IfNames": ["eth0"], "deviceids": ["1017"]}}]})",
                                                     &warnings));
  EXPECT_EQ(got.periodic_update_interval_s, 30);
  EXPECT_EQ(got.resources[0].FullName(), "example.com/r");
  EXPECT_EQ(got.resources[0].rdma_hca_max, 7);
  EXPECT_THAT(got.resources[0].selectors.if_names, ElementsAre("eth0"));
  EXPECT_THAT(got.resources[0].selectors.device_ids, ElementsAre("1017"));
  EXPECT_THAT(warnings, Contains(HasSubstr("configList[0].selectors.IfNames: key matched field "
                                           "\"ifNames\" case-insensitively")));
  EXPECT_EQ(warnings.size(), 8u);
}

TEST(ParseConfigTest, LastOfRepeatedKeysWinsLikeGo) {
  std::vector<std::string> warnings;
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(OneEntry(R"({"resourceName": "r",
      "rdmaHcaMax": 1, "rdmaHcaMax": 2, "RdmaHcaMax": 3, "devices": ["eth0"]})"),
                                                     &warnings));
  EXPECT_EQ(got.resources[0].rdma_hca_max, 3);
  EXPECT_THAT(warnings, Contains(HasSubstr("configList[0].RdmaHcaMax: field \"rdmaHcaMax\" given "
                                           "more than once; the last value wins")));
}

TEST(ParseConfigTest, LastOfVerbatimRepeatedKeysWins) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got, ParseConfig(OneEntry(R"({"resourceName": "r",
      "rdmaHcaMax": 1, "selectors": {"ifNames": ["a"], "ifNames": ["b"]}})"),
                                                     nullptr));
  EXPECT_THAT(got.resources[0].selectors.if_names, ElementsAre("b"));
}

TEST(ParseConfigTest, DropsDuplicateSelectorValuesAfterNormalization) {
  ASSERT_OK_AND_ASSIGN(PluginConfig got,
                       ParseConfig(OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1, "selectors": {
          "vendors": ["15b3", "0x15B3", "8086"], "ifNames": ["a", "b", "a"]}})"),
                                   nullptr));
  EXPECT_THAT(got.resources[0].selectors.vendors, ElementsAre("15b3", "8086"));
  EXPECT_THAT(got.resources[0].selectors.if_names, ElementsAre("a", "b"));
}

TEST(ParseConfigTest, ErrorsAreReportedWithoutAWarningsSink) {
  EXPECT_THAT(ParseConfig(R"({"bogus": 1, "configList": []})", nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("configList: empty")));
}

struct InvalidCase {
  std::string name;
  std::string json;
  std::vector<std::string> message_parts;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << c.name; }

class InvalidConfigTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfigTest, IsRejectedWithInvalidArgumentNamingTheProblem) {
  const InvalidCase& c = GetParam();
  std::vector<::testing::Matcher<std::string>> parts;
  for (const std::string& p : c.message_parts) parts.push_back(HasSubstr(p));
  std::vector<std::string> warnings;
  EXPECT_THAT(ParseConfig(c.json, &warnings),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::AllOfArray(parts)));
}

std::string E(const std::string& body) { return OneEntry(body); }
// An entry "r" with the given selectors object text.
std::string Sel(const std::string& selectors) {
  return OneEntry(R"({"resourceName": "r", "rdmaHcaMax": 1, "selectors": )" + selectors + "}");
}
const char kR[] = "configList[0] (resourceName \"r\"): ";

INSTANTIATE_TEST_SUITE_P(
    Table, InvalidConfigTest,
    ::testing::ValuesIn(std::vector<InvalidCase>{
        {"NotJson", "{", {"config: not valid JSON: parse error at line 1, column 2"}},
        {"EmptyInput", "", {"config: not valid JSON"}},
        {"TrailingGarbage", R"({"configList": []} x)", {"not valid JSON"}},
        {"Comment", "// c\n{}", {"not valid JSON"}},
        {"TopLevelArray", "[]", {"config: must be a JSON object, got array"}},
        {"TopLevelNull", "null", {"config: must be a JSON object, got null"}},
        {"TopLevelString", R"("x")", {"config: must be a JSON object, got string"}},
        {"ConfigListMissing", R"({"periodicUpdateInterval": 5})", {"configList: missing"}},
        {"ConfigListNull", R"({"configList": null})", {"configList: missing"}},
        {"ConfigListNotArray",
         R"({"configList": {}})",
         {"configList: must be an array, got object"}},
        {"ConfigListEmpty", R"({"configList": []})", {"configList: empty"}},
        {"EntryNotObject",
         R"({"configList": [)" + std::string(kGoodEntry) + ", 5]}",
         {"configList[1]: must be an object, got number 5"}},
        {"EntryNull", R"({"configList": [null]})", {"configList[0]: must be an object, got null"}},
        {"ResourceNameMissing",
         E(R"({"rdmaHcaMax": 1, "devices": ["eth0"]})"),
         {"configList[0]: resourceName: missing"}},
        {"ResourceNameNotString",
         E(R"({"resourceName": 7, "devices": ["eth0"]})"),
         {"configList[0]: resourceName: must be a string, got number 7"}},
        {"ResourceNameEmpty",
         E(R"({"resourceName": "", "devices": ["eth0"]})"),
         {"configList[0] (resourceName \"\"): resourceName: empty"}},
        {"ResourceNameDash",
         E(R"({"resourceName": "a-b", "devices": ["eth0"]})"),
         {"configList[0] (resourceName \"a-b\"): resourceName: ", "\"-\" at offset 1",
          "letters, digits and '_'"}},
        {"ResourceNameDot",
         E(R"({"resourceName": "a.b", "devices": ["eth0"]})"),
         {"resourceName: ", "\".\" at offset 1"}},
        {"ResourceNameSlash",
         E(R"({"resourceName": "a/b", "devices": ["eth0"]})"),
         {"resourceName: ", "\"/\" at offset 1"}},
        {"ResourceNameSpace",
         E(R"({"resourceName": "a b", "devices": ["eth0"]})"),
         {"resourceName: ", "\" \" at offset 1"}},
        {"ResourceNameTooLong",
         E(R"({"resourceName": ")" + std::string(64, 'a') + R"(", "devices": ["eth0"]})"),
         {"resourceName: 64 characters long; kubelet allows at most 63"}},
        {"ResourceNameLeadingUnderscore",
         E(R"({"resourceName": "_a", "devices": ["eth0"]})"),
         {"configList[0] (resourceName \"_a\"): resourceName: ",
          "must start and end with a letter or digit"}},
        {"ResourceNameTrailingUnderscore",
         E(R"({"resourceName": "a_", "devices": ["eth0"]})"),
         {"resourceName: \"a_\" must start and end with a letter or digit"}},
        {"PrefixNotString",
         E(R"({"resourceName": "r", "resourcePrefix": 1, "devices": ["eth0"]})"),
         {kR, "resourcePrefix: must be a string, got number 1"}},
        {"PrefixUpperCase",
         E(R"({"resourceName": "r", "resourcePrefix": "Example.com", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: \"Example.com\" is not a lower-case DNS subdomain",
          "upper-case 'E'"}},
        {"PrefixUnderscore",
         E(R"({"resourceName": "r", "resourcePrefix": "my_prefix", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: \"my_prefix\" is not a lower-case DNS subdomain",
          "\"_\" at offset 2"}},
        {"PrefixSlash",
         E(R"({"resourceName": "r", "resourcePrefix": "a/b", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: ", "\"/\" at offset 1"}},
        {"PrefixEmptyLabel",
         E(R"({"resourceName": "r", "resourcePrefix": "a..b", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: ", "empty label at offset 2"}},
        {"PrefixLeadingDot",
         E(R"({"resourceName": "r", "resourcePrefix": ".a", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: ", "empty label at offset 0"}},
        {"PrefixTrailingDot",
         E(R"({"resourceName": "r", "resourcePrefix": "a.", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: ", "empty label at offset 2"}},
        {"PrefixLabelDash",
         E(R"({"resourceName": "r", "resourcePrefix": "-a.com", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: ", "label \"-a\" starting or ending with '-'"}},
        {"PrefixKubernetesIo",
         E(R"({"resourceName": "r", "resourcePrefix": "kubernetes.io", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: \"kubernetes.io\" is in the reserved kubernetes.io namespace"}},
        {"PrefixSubdomainOfKubernetesIo",
         E(R"({"resourceName": "r", "resourcePrefix": "gpu.kubernetes.io", "devices": ["a"]})"),
         {kR, "resourcePrefix: \"gpu.kubernetes.io\" is in the reserved kubernetes.io"}},
        {"PrefixRequests",
         E(R"({"resourceName": "r", "resourcePrefix": "requests.example.com",
              "devices": ["eth0"]})"),
         {kR, "resourcePrefix: \"requests.example.com\" starts with the reserved quota prefix"}},
        {"PrefixTooLong",
         E(R"({"resourceName": "r", "resourcePrefix": ")" + std::string(245, 'p') +
           R"(", "devices": ["eth0"]})"),
         {kR, "resourcePrefix: 245 characters long; kubelet allows at most 244"}},
        {"RdmaHcaMaxNegative",
         E(R"({"resourceName": "r", "rdmaHcaMax": -1, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: -1 is out of range 0..10000"}},
        {"RdmaHcaMaxTooLarge",
         E(R"({"resourceName": "r", "rdmaHcaMax": 10001, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: 10001 is out of range 0..10000"}},
        {"RdmaHcaMaxHuge",
         E(R"({"resourceName": "r", "rdmaHcaMax": 18446744073709551615, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: 18446744073709551615 is out of range"}},
        {"RdmaHcaMaxString",
         E(R"({"resourceName": "r", "rdmaHcaMax": "100", "devices": ["a"]})"),
         {kR, "rdmaHcaMax: must be an integer, got string \"100\""}},
        {"RdmaHcaMaxFloat",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1.5, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: must be an integer, got floating-point number 1.5"}},
        {"RdmaHcaMaxIntegralFloat",
         E(R"({"resourceName": "r", "rdmaHcaMax": 100.0, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: must be an integer, got floating-point number"}},
        {"RdmaHcaMaxExponent",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1e2, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: must be an integer"}},
        {"RdmaHcaMaxBool",
         E(R"({"resourceName": "r", "rdmaHcaMax": true, "devices": ["a"]})"),
         {kR, "rdmaHcaMax: must be an integer, got boolean true"}},
        {"DeeplyNestedValue",
         E(R"({"resourceName": "r", "rdmaHcaMax": )" + std::string(100000, '[') +
           std::string(100000, ']') + R"(, "devices": ["a"]})"),
         {"config: configList[0].rdmaHcaMax", "nested more than 32 levels deep"}},
        {"DeeplyNestedTopLevel",
         std::string(100000, '[') + std::string(100000, ']'),
         {"config: ", "nested more than 32 levels deep"}},
        {"SelectorsNotObject", Sel(R"(["eth0"])"), {kR, "selectors: must be an object, got array"}},
        {"SelectorListNotArray",
         Sel(R"({"vendors": "15b3"})"),
         {kR, "selectors.vendors: must be an array of strings, got string \"15b3\""}},
        {"SelectorElementNotString",
         Sel(R"({"ifNames": ["eth0", 1]})"),
         {kR, "selectors.ifNames[1]: must be a string, got number 1"}},
        {"SelectorElementNull",
         Sel(R"({"drivers": [null]})"),
         {kR, "selectors.drivers[0]: must be a string, got null"}},
        {"SelectorEmptyString",
         Sel(R"({"drivers": ["mlx5_core", ""]})"),
         {kR, "selectors.drivers[1]: empty string"}},
        {"SelectorEmptyIfName", Sel(R"({"ifNames": [""]})"), {kR, "selectors.ifNames[0]: empty"}},
        {"BadVendorId",
         Sel(R"({"vendors": ["mellanox"]})"),
         {kR, "selectors.vendors[0]: \"mellanox\" is not a PCI id"}},
        {"ShortVendorId",
         Sel(R"({"vendors": ["15b"]})"),
         {kR, "selectors.vendors[0]: \"15b\" is not a PCI id"}},
        {"BadDeviceId",
         Sel(R"({"deviceIDs": ["1017", "0xzz17"]})"),
         {kR, "selectors.deviceIDs[1]: \"0xzz17\" is not a PCI id"}},
        {"BadLinkType",
         Sel(R"({"linkTypes": ["roce"]})"),
         {kR, "selectors.linkTypes[0]: \"roce\" is not a link type"}},
        {"EmptyLinkType", Sel(R"({"linkTypes": [""]})"), {kR, "selectors.linkTypes[0]: empty"}},
        {"DevicesNotArray",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": "ib0"})"),
         {kR, "devices: must be an array of strings, got string \"ib0\""}},
        {"DevicesEmptyString",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": ["ib0", ""]})"),
         {kR, "devices[1]: empty string"}},
        {"DevicesAndSelectors",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": ["ib0"],
              "selectors": {"vendors": ["15b3"]}})"),
         {kR, "devices: cannot be combined with selectors"}},
        {"NoSelectorsNoDevices",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1})"),
         {kR, "selectors: no selectors and no devices"}},
        {"EmptySelectorsObject", Sel("{}"), {kR, "selectors: no selectors and no devices"}},
        {"AllSelectorListsEmpty",
         Sel(R"({"vendors": [], "ifNames": []})"),
         {kR, "selectors: no selectors and no devices"}},
        {"OnlyUnknownSelectorKeys",
         Sel(R"({"ifname": ["eth0"]})"),
         {kR, "selectors: no selectors and no devices"}},
        {"EmptyDevicesOnly",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": []})"),
         {kR, "selectors: no selectors and no devices"}},
        {"IncludeIssmNotBool",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "includeIssm": "true",
              "devices": ["ib0"]})"),
         {kR, "includeIssm: must be a boolean, got string \"true\""}},
        {"MountCliNotBool",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "mountCli": 1,
               "selectors": {"ifNames": ["a"]}})"),
         {kR, "mountCli: must be a boolean, got number"}},
        {"HealthPolicyUnknownValue",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "healthPolicy": "most",
               "devices": ["ib0"]})"),
         {kR, "healthPolicy: must be \"any\" or \"all\", got \"most\""}},
        {"HealthPolicyNotString",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "healthPolicy": true,
               "devices": ["ib0"]})"),
         {kR, "healthPolicy: must be \"any\" or \"all\", got boolean true"}},
        {"TopologyNotBool",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "topology": "false",
               "devices": ["ib0"]})"),
         {kR, "topology: must be a boolean, got string \"false\""}},
        {"DuplicateNameSamePrefix",
         R"({"configList": [)" + std::string(kGoodEntry) + ", " + std::string(kGoodEntry) + "]}",
         {"configList[1] (resourceName \"good\"): resourceName: duplicate of configList[0] "
          "(resourceName \"good\"): both are \"rdma/good\""}},
        {"DuplicateNameDefaultAndExplicitPrefix",
         R"({"configList": [{"resourceName": "a", "devices": ["x"]},
                            {"resourceName": "b", "devices": ["y"]},
                            {"resourceName": "a", "resourcePrefix": "rdma", "devices": ["z"]}]})",
         {"configList[2] (resourceName \"a\"): resourceName: duplicate of configList[0] "
          "(resourceName \"a\"): both are \"rdma/a\""}},
        {"DuplicateNameDifferentPrefix",
         R"({"configList": [{"resourceName": "a", "resourcePrefix": "x.io", "devices": ["x"]},
                            {"resourceName": "a", "resourcePrefix": "y.io", "devices": ["y"]}]})",
         {"configList[1] (resourceName \"a\"): resourceName: duplicate of configList[0]",
          "\"x.io/a\" vs \"y.io/a\"", "unique whatever the prefix"}},
        {"ErrorInSecondEntryNamesIt",
         R"({"configList": [)" + std::string(kGoodEntry) +
             R"(, {"resourceName": "second", "rdmaHcaMax": -5, "devices": ["a"]}]})",
         {"configList[1] (resourceName \"second\"): rdmaHcaMax: -5 is out of range"}},
        {"IntervalNegative",
         R"({"periodicUpdateInterval": -1, "configList": [)" + std::string(kGoodEntry) + "]}",
         {"periodicUpdateInterval: -1 is negative"}},
        {"IntervalString",
         R"({"periodicUpdateInterval": "300", "configList": [)" + std::string(kGoodEntry) + "]}",
         {"periodicUpdateInterval: must be an integer, got string \"300\""}},
        {"IntervalFloat",
         R"({"periodicUpdateInterval": 0.5, "configList": [)" + std::string(kGoodEntry) + "]}",
         {"periodicUpdateInterval: must be an integer, got floating-point number 0.5"}},
        {"IntervalOverflowsGoDuration",
         R"({"periodicUpdateInterval": 9223372037, "configList": [)" + std::string(kGoodEntry) +
             "]}",
         {"periodicUpdateInterval: 9223372037 seconds is out of range"}},
    }),
    [](const ::testing::TestParamInfo<InvalidCase>& info) { return info.param.name; });

struct WarningCase {
  std::string name;
  std::string json;
  std::string warning;
};

void PrintTo(const WarningCase& c, std::ostream* os) { *os << c.name; }

class ConfigWarningTest : public ::testing::TestWithParam<WarningCase> {};

TEST_P(ConfigWarningTest, ParsesAndWarns) {
  const WarningCase& c = GetParam();
  std::vector<std::string> warnings;
  EXPECT_THAT(ParseConfig(c.json, &warnings), IsOk());
  EXPECT_THAT(warnings, Contains(c.warning));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigWarningTest,
    ::testing::ValuesIn(std::vector<WarningCase>{
        {"UnknownTopLevelKey", R"({"foo": 1, "configList": [)" + std::string(kGoodEntry) + "]}",
         "foo: unknown key, ignored"},
        {"NearMissTopLevelKey",
         R"({"periodicUpdateIntervall": 1, "configList": [)" + std::string(kGoodEntry) + "]}",
         "periodicUpdateIntervall: unknown key, ignored (did you mean periodicUpdateInterval?)"},
        {"NearMissEntryKey",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "selector": {}, "devices": ["a"]})"),
         "configList[0].selector: unknown key, ignored (did you mean selectors?)"},
        {"NearMissSelectorKeyWithPath",
         R"({"configList": [)" + std::string(kGoodEntry) + ", " +
             R"({"resourceName": "b", "rdmaHcaMax": 1, "selectors": {"ifNames": ["x"]}},
                {"resourceName": "c", "rdmaHcaMax": 1,
                 "selectors": {"drivers": ["mlx5_core"], "ifname": ["eth0"]}}]})",
         "configList[2].selectors.ifname: unknown key, ignored (did you mean ifNames?)"},
        {"UnknownKeyWithControlCharacterIsQuoted",
         R"({"a\nb": 1, "configList": [)" + std::string(kGoodEntry) + "]}",
         "\"a\\nb\": unknown key, ignored"},
        {"UnknownSelectorKeyWithoutHint",
         Sel(R"({"ifNames": ["eth0"], "pciAddresses": ["0000:0b:00.0"]})"),
         "configList[0].selectors.pciAddresses: unknown key, ignored"},
        {"RepeatedTopLevelKey",
         R"({"periodicUpdateInterval": 5, "periodicUpdateInterval": 6, "configList": [)" +
             std::string(kGoodEntry) + "]}",
         "periodicUpdateInterval: key repeated in the same object; the last value wins (as in the "
         "Go plugin)"},
        {"RepeatedKeyInSecondEntry",
         R"({"configList": [)" + std::string(kGoodEntry) +
             R"(, {"resourceName": "b", "rdmaHcaMax": 1, "rdmaHcaMax": 2, "devices": ["x"]}]})",
         "configList[1].rdmaHcaMax: key repeated in the same object; the last value wins (as in "
         "the Go plugin)"},
        {"RepeatedKeyInSelectorsAfterNestedArrays",
         R"({"configList": [{"resourceName": "a", "rdmaHcaMax": 1, "devices": ["x", "y"]},
                            {"resourceName": "b", "rdmaHcaMax": 1,
                             "selectors": {"ifNames": ["p", "q"], "vendors": [], "ifNames": ["z"]}}
                           ]})",
         "configList[1].selectors.ifNames: key repeated in the same object; the last value wins "
         "(as in the Go plugin)"},
        {"CaseInsensitiveKey", E(R"({"ResourceName": "r", "rdmaHcaMax": 1, "devices": ["a"]})"),
         "configList[0].ResourceName: key matched field \"resourceName\" case-insensitively "
         "(accepted like the Go plugin does); spell it \"resourceName\""},
        {"DeprecatedDevices", E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": ["ib0"]})"),
         "configList[0].devices: deprecated; use selectors.ifNames (treated as ifNames)"},
        {"DuplicateVendorAfterNormalization", Sel(R"({"vendors": ["15b3", "0x15B3"]})"),
         "configList[0].selectors.vendors[1]: \"15b3\" repeats "
         "configList[0].selectors.vendors[0]; ignored"},
        {"DuplicateIfName", Sel(R"({"ifNames": ["eth0", "eth1", "eth0"]})"),
         "configList[0].selectors.ifNames[2]: \"eth0\" repeats "
         "configList[0].selectors.ifNames[0]; ignored"},
        {"DuplicateDevice",
         E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": ["ib0", "ib0"]})"),
         "configList[0].devices[1]: \"ib0\" repeats configList[0].devices[0]; ignored"},
        {"RdmaHcaMaxMissing", E(R"({"resourceName": "r", "devices": ["a"]})"),
         "configList[0].rdmaHcaMax: not set; defaults to 0 (like the Go plugin): the resource "
         "advertises no units"},
        {"IntervalLongerThanADay",
         R"({"periodicUpdateInterval": 86401, "configList": [)" + std::string(kGoodEntry) + "]}",
         "periodicUpdateInterval: 86401 seconds is more than a day; device changes that raise no "
         "event are noticed that late"},
        {"IntervalClampedToInt",
         R"({"periodicUpdateInterval": 3000000000, "configList": [)" + std::string(kGoodEntry) +
             "]}",
         "periodicUpdateInterval: 3000000000 seconds clamped to 2147483647"},
        {"IfNameTooLong", Sel(R"({"ifNames": ["enp11s0f0np0_long"]})"),
         "configList[0].selectors.ifNames[0]: \"enp11s0f0np0_long\" is not a valid Linux "
         "interface name; it can never match"},
        {"DeviceNameWithSlash", E(R"({"resourceName": "r", "rdmaHcaMax": 1, "devices": ["a/b"]})"),
         "configList[0].devices[0]: \"a/b\" is not a valid Linux interface name; it can never "
         "match"},
    }),
    [](const ::testing::TestParamInfo<WarningCase>& info) { return info.param.name; });

TEST(ParseConfigTest, CleanConfigHasNoWarnings) {
  std::vector<std::string> warnings;
  ASSERT_THAT(ParseConfig(R"({"periodicUpdateInterval": 86400, "configList": [)" +
                              std::string(kGoodEntry) + "]}",
                          &warnings),
              IsOk());
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(ParseConfigTest, WarningsAreAppendedToExistingOnes) {
  std::vector<std::string> warnings = {"earlier"};
  ASSERT_THAT(
      ParseConfig(R"({"x": 1, "configList": [)" + std::string(kGoodEntry) + "]}", &warnings),
      IsOk());
  EXPECT_THAT(warnings, ElementsAre("earlier", "x: unknown key, ignored"));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
