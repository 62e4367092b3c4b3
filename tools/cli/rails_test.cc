// Tests of `rdmashare rails`: templates, GPU/NIC pairing, the generated config (checked by the
// real rdmashare-dp --validate) and networks (checked by rdmashare-macvlan's parsers).
#include <fstream>

#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "deviceplugin/config.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/device_scanner.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"
#ifdef RS_HAVE_MACVLAN
#include "cni/ipam/config.h"
#include "cni/macvlan/config.h"
#include "cni/protocol/netconf.h"
#endif

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::Concat;
using ::rdmashare::cli::testing::RunInProcess;
using ::rdmashare::cli::testing::TestNode;
using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

rdma::NodeInventory Scan(const HostPaths& paths) {
  rdma::SysfsDeviceScanner scanner(paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  EXPECT_TRUE(inv.ok()) << inv.status().message();
  return inv.ok() ? *inv : rdma::NodeInventory{};
}

RailPlan Plan(const HostPaths& paths) {
  absl::StatusOr<RailPlan> plan = PlanRails(paths, Scan(paths));
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  return plan.ok() ? *plan : RailPlan{};
}

struct TemplateCase {
  std::string tmpl;
  int n;
  std::string want;  // empty = error
  std::string error;
};

TEST(RailsTest, ExpandTemplateTable) {
  std::vector<TemplateCase> cases = {
      {"shared_cx5_gpu{n}", 3, "shared_cx5_gpu3", ""},
      {"172.16.{10+n}.0/24", 1, "172.16.11.0/24", ""},
      {"172.16.{n+20}.0/24", 2, "172.16.22.0/24", ""},
      {"{n}-{n}", 7, "7-7", ""},
      {"fixed", 5, "fixed", ""},
      {"gpu{m}", 1, "", "unsupported expression {m}"},
      {"gpu{10-n}", 1, "", "unsupported expression {10-n}"},
      {"gpu{+n}", 1, "", "unsupported expression {+n}"},
      {"gpu{n", 1, "", "unmatched '{'"},
      {"gpu}n", 1, "", "unmatched '}'"},
      {"gpu{}", 1, "", "unsupported expression {}"},
  };
  for (const TemplateCase& c : cases) {
    absl::StatusOr<std::string> got = ExpandTemplate(c.tmpl, c.n);
    if (c.want.empty()) {
      EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error))) << c.tmpl;
    } else {
      ASSERT_TRUE(got.ok()) << c.tmpl << ": " << got.status().message();
      EXPECT_EQ(*got, c.want) << c.tmpl;
    }
  }
}

TEST(RailsTest, WalkthroughNodePairsRailKWithGpuKUnderItsSwitch) {
  TestNode node(fakenode::Walkthrough8Rail());
  RailPlan plan = Plan(node.paths());
  ASSERT_EQ(plan.rails.size(), 8u);
  for (int k = 1; k <= 8; ++k) {
    const Rail& r = plan.rails[k - 1];
    EXPECT_EQ(r.number, k);
    EXPECT_EQ(r.gpu_pci, fmt::format("0000:{:02x}:00.0", 0x1a + k));
    EXPECT_EQ(r.nic_pci, fmt::format("0000:{:02x}:00.0", 0x0a + k));
    EXPECT_EQ(r.ibdev, fmt::format("mlx5_{}", k - 1));
    EXPECT_EQ(r.netdev, fmt::format("enp{}s0f0np0", 10 + k));
    EXPECT_EQ(r.affinity, "pcie");
    EXPECT_EQ(r.shared_bridges, 2);
  }
  EXPECT_TRUE(plan.unpaired_gpus.empty());
  EXPECT_TRUE(plan.unpaired_nics.empty());
}

fakenode::PciFunctionSpec Bridge(const std::string& addr, const std::string& parent,
                                 const std::string& numa) {
  fakenode::PciFunctionSpec b;
  b.address = addr;
  b.parent = parent;
  b.vendor = "0x8086";
  b.device = "0x347a";
  b.pci_class = "0x060400";
  b.numa_node = numa;
  b.driver = "pcieport";
  return b;
}

void AddGpu(fakenode::NodeSpec& spec, const std::string& addr, const std::string& parent,
            const std::string& numa) {
  fakenode::PciFunctionSpec gpu;
  gpu.address = addr;
  gpu.parent = parent;
  gpu.vendor = "0x10de";
  gpu.device = "0x20b5";
  gpu.pci_class = "0x030200";
  gpu.numa_node = numa;
  gpu.driver = "nvidia";
  spec.pci.push_back(gpu);
}

void AddNic(fakenode::NodeSpec& spec, const std::string& addr, const std::string& parent,
            const std::string& numa, const std::string& ibdev, const std::string& ifname,
            int ifindex) {
  fakenode::PciFunctionSpec nic;
  nic.address = addr;
  nic.parent = parent;
  nic.numa_node = numa;
  nic.driver = "mlx5_core";
  nic.netdevs.push_back(fakenode::NetdevSpec{ifname, fmt::format("0c:42:a1:00:01:{:02x}", ifindex),
                                             1, 1500, ifindex, "up", 1});
  spec.pci.push_back(nic);
  fakenode::IbDeviceSpec ib;
  ib.ibdev = ibdev;
  ib.pci_address = addr;
  fakenode::IbPortSpec port;
  port.gid_ndevs = {ifname, ifname};
  ib.ports.push_back(port);
  spec.ib_devices.push_back(ib);
}

TEST(RailsTest, NumaNodeIsTheFallbackWithoutASharedBridge) {
  fakenode::NodeSpec spec;
  spec.pci.push_back(Bridge("0000:00:01.0", "", "0"));
  spec.pci.push_back(Bridge("0000:00:02.0", "", "1"));
  spec.pci.push_back(Bridge("0000:00:03.0", "", "1"));
  spec.pci.push_back(Bridge("0000:00:04.0", "", "0"));
  AddNic(spec, "0000:0b:00.0", "0000:00:01.0", "0", "mlx5_0", "enp11s0f0np0", 3);
  AddNic(spec, "0000:0c:00.0", "0000:00:02.0", "1", "mlx5_1", "enp12s0f0np0", 4);
  AddGpu(spec, "0000:1b:00.0", "0000:00:03.0", "1");
  AddGpu(spec, "0000:1c:00.0", "0000:00:04.0", "0");
  TestNode node(spec);
  RailPlan plan = Plan(node.paths());
  ASSERT_EQ(plan.rails.size(), 2u);
  EXPECT_EQ(plan.rails[0].gpu_pci, "0000:1b:00.0");
  EXPECT_EQ(plan.rails[0].ibdev, "mlx5_1");
  EXPECT_EQ(plan.rails[0].affinity, "numa");
  EXPECT_EQ(plan.rails[1].gpu_pci, "0000:1c:00.0");
  EXPECT_EQ(plan.rails[1].ibdev, "mlx5_0");
  EXPECT_EQ(plan.rails[1].affinity, "numa");
}

TEST(RailsTest, TiesUnderOneSwitchPairInAddressOrder) {
  fakenode::NodeSpec spec;
  spec.pci.push_back(Bridge("0000:00:01.0", "", "0"));
  spec.pci.push_back(Bridge("0000:30:00.0", "0000:00:01.0", "0"));
  for (int i = 0; i < 4; ++i) {
    spec.pci.push_back(Bridge(fmt::format("0000:31:0{}.0", i), "0000:30:00.0", "0"));
  }
  AddNic(spec, "0000:33:00.0", "0000:31:01.0", "0", "mlx5_0", "enp51s0f0np0", 3);
  AddNic(spec, "0000:32:00.0", "0000:31:00.0", "0", "mlx5_1", "enp50s0f0np0", 4);
  AddGpu(spec, "0000:35:00.0", "0000:31:03.0", "0");
  AddGpu(spec, "0000:34:00.0", "0000:31:02.0", "0");
  TestNode node(spec);
  RailPlan plan = Plan(node.paths());
  ASSERT_EQ(plan.rails.size(), 2u);
  EXPECT_EQ(plan.rails[0].gpu_pci, "0000:34:00.0");
  EXPECT_EQ(plan.rails[0].nic_pci, "0000:32:00.0");
  EXPECT_EQ(plan.rails[1].gpu_pci, "0000:35:00.0");
  EXPECT_EQ(plan.rails[1].nic_pci, "0000:33:00.0");
  EXPECT_EQ(plan.rails[0].shared_bridges, 2);
}

TEST(RailsTest, MoreGpusThanNicsLeavesGpusUnpaired) {
  fakenode::NodeSpec spec = fakenode::NoRdmaCm();
  spec.pci.push_back(Bridge("0000:00:03.0", "", "0"));
  AddGpu(spec, "0000:1b:00.0", "0000:00:03.0", "0");
  AddGpu(spec, "0000:1c:00.0", "0000:00:03.0", "0");
  TestNode node(spec);
  RailPlan plan = Plan(node.paths());
  ASSERT_EQ(plan.rails.size(), 1u);
  EXPECT_EQ(plan.rails[0].gpu_pci, "0000:1b:00.0");
  EXPECT_THAT(plan.unpaired_gpus, ::testing::ElementsAre("0000:1c:00.0"));
}

TEST(RailsTest, NodeWithoutGpusIsFailedPrecondition) {
  TestNode node(fakenode::NoRdmaCm());
  EXPECT_THAT(PlanRails(node.paths(), Scan(node.paths())),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no NVIDIA GPU")));
  auto r = RunInProcess(Concat({"rails"}, node.RootFlags()), {});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("no NVIDIA GPU"));
}

TEST(RailsTest, InfiniBandNicsAreNotRails) {
  fakenode::NodeSpec spec = fakenode::DualPortIb();
  spec.pci.push_back(Bridge("0000:00:03.0", "", "0"));
  AddGpu(spec, "0000:1b:00.0", "0000:00:03.0", "0");
  TestNode node(spec);
  EXPECT_THAT(PlanRails(node.paths(), Scan(node.paths())),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no RoCE RDMA NIC")));
}

TEST(RailsTest, DpConfigIsTheWalkthroughConfig) {
  TestNode node(fakenode::Walkthrough8Rail());
  ASSERT_OK_AND_ASSIGN(nlohmann::ordered_json j, RailsDpConfig(Plan(node.paths()), {}));
  ASSERT_OK_AND_ASSIGN(deviceplugin::PluginConfig got,
                       deviceplugin::ParseConfig(j.dump(), nullptr));
  deviceplugin::PluginConfig want;
  want.periodic_update_interval_s = 300;
  for (int k = 1; k <= 8; ++k) {
    deviceplugin::ResourceConfig rc;
    rc.resource_prefix = "spidernet.io";
    rc.resource_name = fmt::format("shared_cx5_gpu{}", k);
    rc.rdma_hca_max = 100;
    rc.selectors.if_names = {fmt::format("enp{}s0f0np0", 10 + k)};
    want.resources.push_back(rc);
  }
  EXPECT_EQ(got, want);
}

TEST(RailsTest, SameResourceNameForEveryRailIsAnError) {
  TestNode node(fakenode::Walkthrough8Rail());
  RailsOptions o;
  o.resource_template = "shared";
  EXPECT_THAT(RailsDpConfig(Plan(node.paths()), o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("same value \"shared\"")));
}

#ifdef RS_DP_BIN
TEST(RailsTest, GeneratedConfigIsAcceptedByRdmashareDpValidate) {
  TestNode node(fakenode::Walkthrough8Rail());
  auto r = RunInProcess(
      Concat({"rails", "--output", "dp-config", "--format", "json"}, node.RootFlags()), {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::string path = node.dir().Sub("config.json");
  rdmashare::testing::WriteTestFile(path, r.out);
  rdmashare::testing::Subprocess::Options opts;
  opts.argv = {RS_DP_BIN,      "--validate",          "--config",   path,
               "--sysfs-root", node.paths().sys_root, "--dev-root", node.paths().dev_root};
  opts.work_dir = node.dir().path();
  rdmashare::testing::RunResult run = rdmashare::testing::RunProgram(opts);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("8 resources"));
  for (int k = 1; k <= 8; ++k) {
    EXPECT_THAT(run.out, HasSubstr(fmt::format("spidernet.io/shared_cx5_gpu{}: 100 units", k)));
  }
  EXPECT_THAT(run.out, ::testing::Not(HasSubstr("matches no RDMA device")));
}
#endif

#ifdef RS_HAVE_MACVLAN
TEST(RailsTest, EachNetworkIsAcceptedByTheMacvlanAndIpamParsers) {
  TestNode node(fakenode::Walkthrough8Rail());
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::ordered_json> nets,
                       RailsNetworks(Plan(node.paths()), {}));
  ASSERT_EQ(nets.size(), 8u);
  for (int k = 1; k <= 8; ++k) {
    const nlohmann::ordered_json& nad = nets[k - 1];
    EXPECT_EQ(nad["kind"], "NetworkAttachmentDefinition");
    EXPECT_EQ(nad["metadata"]["name"], fmt::format("gpu{}-net{}", k, 10 + k));
    EXPECT_EQ(nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"],
              fmt::format("spidernet.io/shared_cx5_gpu{}", k));
    std::string config = nad["spec"]["config"];
    ASSERT_OK_AND_ASSIGN(cni::NetConf conf, cni::ParseNetConf(config));
    EXPECT_EQ(conf.type, "rdmashare-macvlan");
    ASSERT_OK_AND_ASSIGN(cni::macvlan::MacvlanConfig mc,
                         cni::macvlan::ParseMacvlanConfig(conf, {}, "/sys"));
    EXPECT_EQ(mc.master, fmt::format("enp{}s0f0np0", 10 + k));
    EXPECT_EQ(mc.route_table, static_cast<uint32_t>(100 + k - 1));
    EXPECT_EQ(mc.ipam_type, "rdmashare-ipam");
    ASSERT_OK_AND_ASSIGN(cni::ipam::IpamConfig ipam, cni::ipam::ParseIpamConfig(conf.ipam));
    ASSERT_EQ(ipam.pools.size(), 1u);
    EXPECT_EQ(ipam.pools[0].ToString(),
              fmt::format("172.16.{0}.0/24 172.16.{0}.1-172.16.{0}.200", 10 + k));
    ASSERT_EQ(ipam.pools[0].ranges.size(), 1u);
    EXPECT_EQ(ipam.pools[0].ranges[0].gateway.ToString(), fmt::format("172.16.{}.254", 10 + k));
  }
}
#endif

struct UsageCase {
  std::vector<std::string> flags;
  std::string error;
};

TEST(RailsTest, BadFlagValuesAreUsageErrors) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<UsageCase> cases = {
      {{"--resource-template", "gpu{k}"}, "unsupported expression {k}"},
      {{"--subnet-template", "172.16.{10+n.0/24"}, "unmatched '{'"},
      {{"--resource-template", "shared"}, "same value \"shared\""},
      {{"--subnet-template", "172.16.{250+n}.0/24"}, "172.16.256.0/24' is not a CIDR: bad address"},
      {{"--subnet-template", "172.16.{n}.1/24"}, "host bits set"},
      {{"--network-template", "GPU{n}"}, "not a DNS-1123 label"},
      {{"--range", "200-1"}, "want FIRST-LAST"},
      {{"--range", "1-300"}, "outside 172.16.11.0/24"},
      {{"--gateway-host", "x"}, "want an integer"},
      {{"--table-base", "300"}, "want an integer 1-250"},
      {{"--rdma-hca-max", "0"}, "want an integer 1-10000"},
      {{"--format", "xml"}, "want yaml or json"},
      {{"--output", "pods"}, "want dp-config, networks or all"},
  };
  for (const UsageCase& c : cases) {
    auto r = RunInProcess(Concat(Concat({"rails"}, c.flags), node.RootFlags()), {});
    EXPECT_EQ(r.code, kExitUsage) << c.flags[0] << " " << c.flags[1] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.error)) << c.flags[0] << " " << c.flags[1];
  }
}

TEST(RailsTest, JsonNetworksAreAListOfEightDefinitions) {
  TestNode node(fakenode::Walkthrough8Rail());
  auto r = RunInProcess(
      Concat({"rails", "--output", "networks", "--format=json", "--namespace", "rdmashare"},
             node.RootFlags()),
      {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["kind"], "List");
  ASSERT_EQ(j["items"].size(), 8u);
  EXPECT_EQ(j["items"][7]["metadata"]["namespace"], "rdmashare");
  EXPECT_THAT(r.err, HasSubstr("rail 8: GPU 0000:22:00.0 <-> mlx5_7"));
}

TEST(RailsTest, YamlOutputPassesYamllintAndHoldsConfigMapAndNetworks) {
  TestNode node(fakenode::Walkthrough8Rail());
  auto r = RunInProcess(Concat({"rails", "--namespace", "rdmashare"}, node.RootFlags()), {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("kind: ConfigMap"));
  EXPECT_THAT(r.out, HasSubstr("name: rdmashare-dp-config"));
  EXPECT_THAT(r.out, HasSubstr("  config.json: |-\n    {\n"));
  EXPECT_THAT(r.out, HasSubstr("k8s.v1.cni.cncf.io/resourceName: spidernet.io/shared_cx5_gpu8"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '-') > 0, true);
  size_t docs = 0;
  for (size_t pos = 0; (pos = r.out.find("---\n", pos)) != std::string::npos; pos += 4) ++docs;
  EXPECT_EQ(docs, 9u);
  if (!PathExists("/usr/bin/yamllint")) GTEST_SKIP() << "yamllint not installed";
  std::string path = node.dir().Sub("rails.yaml");
  rdmashare::testing::WriteTestFile(path, r.out);
  rdmashare::testing::Subprocess::Options opts;
  opts.argv = {"/usr/bin/yamllint", "-d",
               "{extends: default, rules: {line-length: {max: 120}, document-start: enable}}",
               path};
  opts.work_dir = node.dir().path();
  rdmashare::testing::RunResult lint = rdmashare::testing::RunProgram(opts);
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err << r.out;
}

TEST(RailsTest, ObjectsLandInTheManifestsNamespaceByDefault) {
  TestNode node(fakenode::Walkthrough8Rail());
  auto r = RunInProcess(Concat({"rails", "--format=json"}, node.RootFlags()), {});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_EQ(j["items"].size(), 9u);
  for (const nlohmann::json& item : j["items"]) {
    EXPECT_EQ(item["metadata"]["namespace"], "rdmashare") << item["metadata"]["name"];
  }
  auto none =
      RunInProcess(Concat({"rails", "--format=json", "--namespace="}, node.RootFlags()), {});
  ASSERT_EQ(none.code, kExitOk) << none.err;
  nlohmann::json k = nlohmann::json::parse(none.out, nullptr, false);
  EXPECT_FALSE(k["items"][0]["metadata"].contains("namespace"));
}

TEST(RailsTest, MountCliSetsItOnEveryResource) {
  TestNode node(fakenode::Walkthrough8Rail());
  for (bool mount : {false, true}) {
    std::vector<std::string> args = {"rails", "--output", "dp-config", "--format", "json"};
    if (mount) args.push_back("--mount-cli");
    auto r = RunInProcess(Concat(args, node.RootFlags()), {});
    ASSERT_EQ(r.code, kExitOk) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_EQ(j["configList"].size(), 8u);
    for (const nlohmann::json& e : j["configList"]) {
      EXPECT_EQ(e.contains("mountCli"), mount) << e.dump();
      if (mount) {
        EXPECT_EQ(e["mountCli"], true);
      }
    }
  }
  auto bad = RunInProcess(Concat({"rails", "--mount-cli=yes"}, node.RootFlags()), {});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_THAT(bad.err, HasSubstr("flag --mount-cli takes no value"));
}

TEST(RailsTest, ToYamlQuotesWhatPlainScalarsCannotHold) {
  nlohmann::ordered_json j = {{"a", "yes"},      {"b", "1.0.0"},
                              {"c", "x: y"},     {"d", nullptr},
                              {"e", 3},          {"f", nlohmann::ordered_json::array()},
                              {"g", {"p", "q"}}, {"h", "plain-ok/x.y"}};
  EXPECT_EQ(ToYaml(j),
            "a: \"yes\"\nb: \"1.0.0\"\nc: \"x: y\"\nd: null\ne: 3\nf: []\ng:\n  - p\n  - q\n"
            "h: plain-ok/x.y\n");
}

}  // namespace
}  // namespace rdmashare::cli
