// Tests of `rdmashare devices`: inventory output and the config dry run.
#include "common/testing/status_matchers.h"
#include "deviceplugin/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/device_scanner.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::Concat;
using ::rdmashare::cli::testing::RunInProcess;
using ::rdmashare::cli::testing::TestNode;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kWalkthroughConfig[] = R"({"periodicUpdateInterval": 300, "configList": [
  {"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu1", "rdmaHcaMax": 100,
   "selectors": {"ifNames": ["enp11s0f0np0"]}},
  {"resourcePrefix": "spidernet.io", "resourceName": "shared_cx5_gpu2", "rdmaHcaMax": 100,
   "selectors": {"ifNames": ["enp12s0f0np0"]}}]})";

rdma::NodeInventory Scan(const HostPaths& paths) {
  rdma::SysfsDeviceScanner scanner(paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  EXPECT_TRUE(inv.ok()) << inv.status().message();
  return inv.ok() ? *inv : rdma::NodeInventory{};
}

TEST(DevicesTest, TableListsEveryRailWithPciNetdevNumaAndCharDevices) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::ostringstream out;
  PrintDevicesTable(Scan(node.paths()), out);
  std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("mlx5_0"));
  EXPECT_THAT(text, HasSubstr("0000:0b:00.0"));
  EXPECT_THAT(text, HasSubstr("15b3:1017"));
  EXPECT_THAT(text, HasSubstr("enp18s0f0np0"));
  EXPECT_THAT(text, HasSubstr("1:ACTIVE/Ethernet"));
  EXPECT_THAT(text, HasSubstr("uverbs7"));
  EXPECT_THAT(text, HasSubstr("rdma_cm: "));
  // Header + 8 devices + rdma_cm line.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 10);
}

TEST(DevicesTest, JsonHoldsDeviceFieldsAndPorts) {
  TestNode node(fakenode::DualPortIb());
  nlohmann::json j = DevicesJson(Scan(node.paths()));
  ASSERT_EQ(j["devices"].size(), 1u);
  const nlohmann::json& d = j["devices"][0];
  EXPECT_EQ(d["ibdev"], "mlx5_0");
  EXPECT_EQ(d["pci"], "0000:5e:00.0");
  EXPECT_EQ(d["numa_node"], 0);
  EXPECT_EQ(d["netdevs"], nlohmann::json({"ib0", "ib1"}));
  ASSERT_EQ(d["ports"].size(), 2u);
  EXPECT_EQ(d["ports"][1]["link_layer"], "InfiniBand");
  EXPECT_EQ(d["ports"][1]["umad"]["name"], "umad1");
  EXPECT_EQ(d["usable"], true);
  EXPECT_EQ(j["rdma_cm"]["dev"], "10:58");
}

TEST(DevicesTest, EmptyNodeSaysSo) {
  TestNode node(fakenode::PlainNic());
  std::ostringstream out;
  PrintDevicesTable(Scan(node.paths()), out);
  EXPECT_THAT(out.str(), HasSubstr("(no RDMA devices)"));
}

TEST(DevicesTest, MatchResourcesNamesSelectedDevicesAndDeadSelectors) {
  TestNode node(fakenode::Walkthrough8Rail());
  ASSERT_OK_AND_ASSIGN(deviceplugin::PluginConfig config,
                       deviceplugin::ParseConfig(R"({"configList": [
    {"resourceName": "rail1", "selectors": {"ifNames": ["enp11s0f0np0", "enp99s0"]}},
    {"resourceName": "cx5", "selectors": {"vendors": ["15b3"], "deviceIDs": ["1017"]}},
    {"resourceName": "ib", "selectors": {"linkTypes": ["infiniband"], "drivers": ["mlx5_core"]}}
  ]})",
                                                 nullptr));
  std::vector<ResourceMatch> m = MatchResources(config, Scan(node.paths()));
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].full_name, "rdma/rail1");
  EXPECT_THAT(m[0].ibdevs, ElementsAre("mlx5_0"));
  EXPECT_THAT(m[0].dead_selectors, ElementsAre("ifNames=enp99s0"));
  EXPECT_EQ(m[1].ibdevs.size(), 8u);
  EXPECT_THAT(m[1].dead_selectors, IsEmpty());
  EXPECT_THAT(m[2].ibdevs, IsEmpty());
  EXPECT_THAT(m[2].dead_selectors, ElementsAre("linkTypes=infiniband"));
}

TEST(DevicesTest, CommandWithMatchingConfigExitsZero) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string path = node.dir().Sub("config.json");
  rdmashare::testing::WriteTestFile(path, kWalkthroughConfig);
  auto r = RunInProcess(Concat({"devices", "--config", path}, node.RootFlags()), {});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 resources"));
  EXPECT_THAT(r.out, HasSubstr("spidernet.io/shared_cx5_gpu1: mlx5_0 (Healthy)"));
  EXPECT_THAT(r.out, HasSubstr("spidernet.io/shared_cx5_gpu2: mlx5_1 (Healthy)"));
}

TEST(DevicesTest, ConfigDryRunShowsHealthByTheResourcesPolicy) {
  TestNode node(fakenode::Walkthrough8Rail());
  ASSERT_TRUE(node.node().SetPortState("mlx5_0", 1, "1: DOWN", "3: Disabled").ok());
  std::string path = node.dir().Sub("config.json");
  // Rails 1+2 together: "any" stays Healthy with rail 1 down, "all" does not.
  rdmashare::testing::WriteTestFile(path, R"({"configList": [
      {"resourceName": "any", "selectors": {"ifNames": ["enp11s0f0np0", "enp12s0f0np0"]}},
      {"resourceName": "all", "healthPolicy": "all",
       "selectors": {"ifNames": ["enp11s0f0np0", "enp12s0f0np0"]}}]})");
  auto r = RunInProcess(Concat({"devices", "--config", path}, node.RootFlags()), {});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rdma/any: mlx5_0,mlx5_1 (Healthy)"));
  EXPECT_THAT(r.out, HasSubstr("rdma/all: mlx5_0,mlx5_1 (Unhealthy: mlx5_0: "));
  auto j = RunInProcess(Concat({"devices", "--json", "--config", path}, node.RootFlags()), {});
  nlohmann::json doc = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_EQ(doc["resources"].size(), 2u) << j.out;
  EXPECT_EQ(doc["resources"][0]["healthy"], true);
  EXPECT_FALSE(doc["resources"][0].contains("health_cause"));
  EXPECT_EQ(doc["resources"][1]["healthy"], false);
  EXPECT_THAT(doc["resources"][1]["health_cause"].get<std::string>(), HasSubstr("mlx5_0: port"));
}

TEST(DevicesTest, CommandWithResourceSelectingNothingExitsOne) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string path = node.dir().Sub("config.json");
  rdmashare::testing::WriteTestFile(
      path, R"({"configList": [{"resourceName": "gone", "selectors": {"ifNames": ["ib0"]}}]})");
  auto r = RunInProcess(Concat({"devices", "--config", path}, node.RootFlags()), {});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.out, HasSubstr("rdma/gone: selects NO device on this node"));
  EXPECT_THAT(r.out, HasSubstr("selector ifNames=ib0 matches nothing"));
}

TEST(DevicesTest, CommandWithInvalidConfigExitsOneWithParserMessage) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string path = node.dir().Sub("config.json");
  rdmashare::testing::WriteTestFile(path, R"({"configList": [{"resourceName": "r", "rdmaHcaMax": -4,
                                "selectors": {"ifNames": ["eth0"]}}]})");
  auto r = RunInProcess(Concat({"devices", "--config", path}, node.RootFlags()), {});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("config " + path));
  EXPECT_THAT(r.err, HasSubstr("rdmaHcaMax"));
}

TEST(DevicesTest, CommandWithMissingConfigFileExitsOne) {
  TestNode node(fakenode::Walkthrough8Rail());
  auto r = RunInProcess(
      Concat({"devices", "--config", node.dir().Sub("absent.json")}, node.RootFlags()), {});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("absent.json"));
}

TEST(DevicesTest, JsonCommandIncludesResources) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string path = node.dir().Sub("config.json");
  rdmashare::testing::WriteTestFile(path, kWalkthroughConfig);
  auto r = RunInProcess(Concat({"devices", "--json", "--config", path}, node.RootFlags()), {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["devices"].size(), 8u);
  ASSERT_EQ(j["resources"].size(), 2u);
  EXPECT_EQ(j["resources"][1]["ibdevs"], nlohmann::json({"mlx5_1"}));
}

}  // namespace
}  // namespace rdmashare::cli
