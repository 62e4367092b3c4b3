// Tests of `rdmashare doctor` (RunDoctorChecks and its output) on fake nodes.
#include <functional>

#include "common/testing/status_matchers.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::TestNode;
using ::testing::HasSubstr;

std::vector<CheckResult> Checks(const HostPaths& paths, rdma::NetnsMode mode) {
  rdma::FakeNetnsModeReader reader(mode);
  absl::StatusOr<std::vector<CheckResult>> r = RunDoctorChecks(paths, reader);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : std::vector<CheckResult>{};
}

std::vector<CheckResult> WithLevel(const std::vector<CheckResult>& all, CheckLevel level) {
  std::vector<CheckResult> out;
  for (const CheckResult& r : all) {
    if (r.level == level) out.push_back(r);
  }
  return out;
}

const CheckResult* Find(const std::vector<CheckResult>& all, const std::string& check,
                        const std::string& subject) {
  for (const CheckResult& r : all) {
    if (r.check == check && r.subject == subject) return &r;
  }
  return nullptr;
}

TEST(DoctorTest, WalkthroughNodeHasNoFailuresAndWarnsAboutNetnsAndPeermem) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kUnavailable);
  EXPECT_THAT(WithLevel(all, CheckLevel::kFail), ::testing::IsEmpty());
  std::vector<CheckResult> warns = WithLevel(all, CheckLevel::kWarn);
  ASSERT_EQ(warns.size(), 2u);
  EXPECT_EQ(warns[0].check, "netns-mode");
  EXPECT_THAT(warns[0].detail, HasSubstr("unknown"));
  EXPECT_EQ(warns[1].check, "gpudirect");
  EXPECT_THAT(warns[1].fix, HasSubstr("modprobe nvidia_peermem"));
  EXPECT_EQ(DoctorExitCode(all), kExitOk);
}

TEST(DoctorTest, WalkthroughNodeChecksEveryRail) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared);
  for (int k = 0; k < 8; ++k) {
    std::string port = "mlx5_" + std::to_string(k) + "/1";
    ASSERT_NE(Find(all, "port-state", port), nullptr) << port;
    EXPECT_EQ(Find(all, "port-state", port)->detail, "ACTIVE (LinkUp)");
    EXPECT_EQ(Find(all, "link-layer", port)->detail, "Ethernet (RoCE)");
    // The preset populates 2 of 16 GID entries.
    EXPECT_THAT(Find(all, "gid-room", port)->detail,
                HasSubstr("14 of 16 GID entries free (2 used): room for 3 pods (4 entries each"));
    std::string ifname = "enp" + std::to_string(11 + k) + "s0f0np0";
    ASSERT_NE(Find(all, "netdev", ifname), nullptr) << ifname;
    EXPECT_EQ(Find(all, "netdev", ifname)->detail, "up mtu 1500");
  }
  EXPECT_EQ(Find(all, "rdma-devices", "node")->detail, "8 RDMA devices");
}

TEST(DoctorTest, PeermemLoadedAndSharedModeGiveAllGreen) {
  TestNode node(fakenode::Walkthrough8Rail());
  rdmashare::testing::WriteTestFile(
      JoinPath(node.paths().proc_root, "modules"),
      "nvidia_peermem 16384 0 - Live 0x0\nnvidia 56086528 2 nvidia_peermem, Live 0x0\n");
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared);
  EXPECT_THAT(WithLevel(all, CheckLevel::kWarn), ::testing::IsEmpty());
  EXPECT_THAT(WithLevel(all, CheckLevel::kFail), ::testing::IsEmpty());
  EXPECT_EQ(Find(all, "gpudirect", "node")->detail, "nvidia_peermem loaded");
  EXPECT_EQ(Find(all, "netns-mode", "node")->detail, "shared");
}

TEST(DoctorTest, NetnsReadErrorIsAWarning) {
  TestNode node(fakenode::Walkthrough8Rail());
  rdma::FakeNetnsModeReader reader(absl::UnavailableError("timeout"));
  ASSERT_OK_AND_ASSIGN(std::vector<CheckResult> all, RunDoctorChecks(node.paths(), reader));
  const CheckResult* r = Find(all, "netns-mode", "node");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->level, CheckLevel::kWarn);
  EXPECT_THAT(r->detail, HasSubstr("timeout"));
}

struct FailCase {
  std::string name;
  std::function<fakenode::NodeSpec()> spec;
  std::function<void(TestNode&)> mutate;
  rdma::NetnsMode mode;
  std::string check;
  std::string subject;
  std::string detail;
  std::string fix;
};

void PrintTo(const FailCase& c, std::ostream* os) { *os << c.name; }

class DoctorFailTest : public ::testing::TestWithParam<FailCase> {};

TEST_P(DoctorFailTest, FlagsTheProblemWithAFix) {
  const FailCase& c = GetParam();
  TestNode node(c.spec(),
                c.name.rfind("NoKubelet", 0) != 0 && c.name != "KubeletSockIsARegularFile");
  if (c.mutate) c.mutate(node);
  std::vector<CheckResult> all = Checks(node.paths(), c.mode);
  const CheckResult* r = Find(all, c.check, c.subject);
  ASSERT_NE(r, nullptr) << c.check << " " << c.subject;
  EXPECT_EQ(r->level, CheckLevel::kFail);
  EXPECT_THAT(r->detail, HasSubstr(c.detail));
  EXPECT_THAT(r->fix, HasSubstr(c.fix));
  EXPECT_EQ(DoctorExitCode(all), kExitFailure);
}

void NoOp(TestNode&) {}

INSTANTIATE_TEST_SUITE_P(
    Cases, DoctorFailTest,
    ::testing::Values(
        FailCase{"InfiniBandPort1", fakenode::DualPortIb, NoOp, rdma::NetnsMode::kShared,
                 "link-layer", "mlx5_0/1", "InfiniBand", "LINK_TYPE_P1=2"},
        FailCase{"InfiniBandPort2", fakenode::DualPortIb, NoOp, rdma::NetnsMode::kShared,
                 "link-layer", "mlx5_0/2", "macvlan cannot use", "LINK_TYPE_P2=2"},
        FailCase{"NoRdmaCm", fakenode::NoRdmaCm, NoOp, rdma::NetnsMode::kShared, "rdma-cm", "node",
                 "no rdma_cm", "modprobe rdma_ucm"},
        FailCase{"PortDown", fakenode::Walkthrough8Rail,
                 [](TestNode& n) {
                   ASSERT_OK(n.node().SetPortState("mlx5_3", 1, "1: DOWN", "3: Disabled"));
                 },
                 rdma::NetnsMode::kShared, "port-state", "mlx5_3/1", "DOWN (Disabled)",
                 "ip link set enp14s0f0np0 up"},
        FailCase{"UnusableDevice", fakenode::Walkthrough8Rail,
                 [](TestNode& n) { ASSERT_OK(n.node().RemoveDevNode("uverbs2")); },
                 rdma::NetnsMode::kShared, "rdma-devices", "mlx5_2", "missing",
                 "modprobe ib_uverbs"},
        FailCase{"NetdevDown", fakenode::Walkthrough8Rail,
                 [](TestNode& n) { ASSERT_OK(n.node().SetNetdevState("enp12s0f0np0", "down", 0)); },
                 rdma::NetnsMode::kShared, "netdev", "enp12s0f0np0", "down mtu 1500",
                 "ip link set enp12s0f0np0 up"},
        FailCase{"ExclusiveNetns", fakenode::Walkthrough8Rail, NoOp, rdma::NetnsMode::kExclusive,
                 "netns-mode", "node", "exclusive", "rdma system set netns shared"},
        FailCase{"NoRdmaAtAll", fakenode::PlainNic, NoOp, rdma::NetnsMode::kShared, "rdma-devices",
                 "node", "no RDMA devices", "modprobe mlx5_ib"},
        FailCase{"NoKubeletDir", fakenode::Walkthrough8Rail, NoOp, rdma::NetnsMode::kShared,
                 "kubelet", "node", "device-plugins missing", "--kubelet-dir"},
        FailCase{"NoKubeletSocketNorRegistry", fakenode::Walkthrough8Rail,
                 [](TestNode& n) {
                   ASSERT_TRUE(MakeDirs(JoinPath(n.paths().kubelet_dir, "device-plugins")).ok());
                 },
                 rdma::NetnsMode::kShared, "kubelet", "node", "no kubelet.sock socket in",
                 "kubelet running"},
        FailCase{"KubeletSockIsARegularFile", fakenode::Walkthrough8Rail,
                 [](TestNode& n) {
                   rdmashare::testing::WriteTestFile(
                       JoinPath(n.paths().kubelet_dir, "device-plugins/kubelet.sock"), "");
                 },
                 rdma::NetnsMode::kShared, "kubelet", "node", "kubelet is not running here",
                 "--kubelet-dir"},
        FailCase{"GidTableFull", fakenode::NoRdmaCm,
                 [](TestNode& n) {
                   for (int i = 0; i < 16; ++i) {
                     n.WriteSys("class/infiniband/mlx5_0/ports/1/gids/" + std::to_string(i),
                                fmt::format("fe80:0000:0000:0000:0000:0000:0000:{:04x}", i + 1));
                   }
                 },
                 rdma::NetnsMode::kShared, "gid-room", "mlx5_0/1", "0 of 16 GID entries free",
                 "GID table full"}),
    [](const ::testing::TestParamInfo<FailCase>& info) { return info.param.name; });

TEST(DoctorTest, KubeletIsFoundByItsSocketOrItsPluginRegistry) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<CheckResult> sock_checks = Checks(node.paths(), rdma::NetnsMode::kShared);
  const CheckResult* r = Find(sock_checks, "kubelet", "node");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->level, CheckLevel::kOk);
  EXPECT_THAT(r->detail, HasSubstr("kubelet.sock present: rdmashare-dp registers there"));

  TestNode watcher(fakenode::Walkthrough8Rail(), /*kubelet=*/false);
  ASSERT_TRUE(MakeDirs(JoinPath(watcher.paths().kubelet_dir, "device-plugins")).ok());
  ASSERT_TRUE(MakeDirs(JoinPath(watcher.paths().kubelet_dir, "plugins_registry")).ok());
  std::vector<CheckResult> all = Checks(watcher.paths(), rdma::NetnsMode::kShared);
  r = Find(all, "kubelet", "node");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->level, CheckLevel::kOk);
  EXPECT_THAT(r->detail, HasSubstr("plugins_registry present: rdmashare-dp registers through"));
}

TEST(DoctorTest, TablePrintsFixUnderEachFailureAndASummary) {
  std::vector<CheckResult> results = {
      {"rdma-cm", "node", CheckLevel::kFail, "no rdma_cm device", "modprobe rdma_ucm"},
      {"gpudirect", "node", CheckLevel::kWarn, "nvidia_peermem missing", "modprobe x"},
      {"kubelet", "node", CheckLevel::kOk, "/var/lib/kubelet/device-plugins", ""}};
  std::ostringstream out;
  PrintDoctorTable(results, out);
  std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("FAIL  rdma-cm"));
  EXPECT_THAT(text, HasSubstr("fix: modprobe rdma_ucm"));
  EXPECT_THAT(text, HasSubstr("warn  gpudirect"));
  EXPECT_THAT(text, HasSubstr("3 checks: 1 failed, 1 warnings"));
}

TEST(DoctorTest, JsonCarriesLevelsAndOverallResult) {
  std::vector<CheckResult> results = {
      {"rdma-cm", "node", CheckLevel::kFail, "no rdma_cm device", "modprobe rdma_ucm"},
      {"kubelet", "node", CheckLevel::kOk, "dir", ""}};
  nlohmann::json j = DoctorJson(results);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["checks"].size(), 2u);
  EXPECT_EQ(j["checks"][0]["level"], "fail");
  EXPECT_EQ(j["checks"][0]["fix"], "modprobe rdma_ucm");
  EXPECT_EQ(j["checks"][1]["level"], "ok");
  EXPECT_EQ(DoctorJson({results[1]})["ok"], true);
}

}  // namespace
}  // namespace rdmashare::cli
