// Tests of `rdmashare doctor` (RunDoctorChecks and its output) on fake nodes.
#include <functional>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/device_scanner.h"
#include "rdma/verbs.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::Concat;
using ::rdmashare::cli::testing::TestNode;
using ::testing::HasSubstr;

std::vector<CheckResult> Checks(const HostPaths& paths, rdma::NetnsMode mode,
                                rdma::VerbsReader* verbs = nullptr) {
  rdma::FakeNetnsModeReader reader(mode);
  absl::StatusOr<std::vector<CheckResult>> r = RunDoctorChecks(paths, reader, verbs);
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
  ASSERT_OK_AND_ASSIGN(std::vector<CheckResult> all,
                       RunDoctorChecks(node.paths(), reader, nullptr));
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

// ---------------------------------------------------------------------------------------------
// verbs

// What a healthy libibverbs reports for the node at `paths`: sysfs's ports and used GID entries
// in verbs' terms (ifindexes from class/net).
std::vector<rdma::VerbsDevice> VerbsMirror(const HostPaths& paths) {
  rdma::SysfsDeviceScanner scanner(paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  EXPECT_TRUE(inv.ok()) << inv.status().message();
  if (!inv.ok()) return {};
  rdma::SysfsRdmaView view = rdma::ReadSysfsRdmaView(paths.sys_root, *inv);
  std::vector<rdma::VerbsDevice> out;
  for (const rdma::RdmaDevice& d : view.inventory.devices) {
    rdma::VerbsDevice vd;
    vd.ibdev = d.ibdev;
    for (const rdma::RdmaPort& p : d.ports) {
      rdma::VerbsPort vp{p.number, p.state, p.link_layer, p.gid_table_size, {}};
      for (const rdma::GidTableEntry& e : view.gid_tables.at({d.ibdev, p.number})) {
        if (!e.used()) continue;
        rdma::VerbsGid g;
        g.index = e.index;
        g.gid = e.gid;
        g.type = e.type == "RoCE v2"                          ? rdma::VerbsGidType::kRoceV2
                 : p.link_layer == rdma::LinkLayer::kEthernet ? rdma::VerbsGidType::kRoceV1
                                                              : rdma::VerbsGidType::kIb;
        if (!e.netdev.empty()) {
          absl::StatusOr<int64_t> ifindex =
              ReadIntAttr(JoinPath(paths.sys_root, "class/net/" + e.netdev + "/ifindex"));
          EXPECT_TRUE(ifindex.ok()) << e.netdev;
          g.ndev_ifindex = ifindex.ok() ? static_cast<int>(*ifindex) : 0;
          g.ndev = e.netdev;
        }
        vp.gids.push_back(g);
      }
      vd.ports.push_back(vp);
    }
    out.push_back(vd);
  }
  return out;
}

std::vector<CheckResult> OfCheck(const std::vector<CheckResult>& all, const std::string& check) {
  std::vector<CheckResult> out;
  for (const CheckResult& r : all) {
    if (r.check == check) out.push_back(r);
  }
  return out;
}

const char kVerbsFix[] =
    "sysfs and verbs disagree: reload the driver (modprobe -r mlx5_ib && modprobe mlx5_ib) or "
    "check rdma-core's provider for this device";

TEST(DoctorVerbsTest, AgreeingVerbsIsOkForEveryDevice) {
  TestNode node(fakenode::Walkthrough8Rail());
  rdma::FakeVerbsReader verbs({VerbsMirror(node.paths())});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  std::vector<CheckResult> lines = OfCheck(all, "verbs");
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_EQ(lines[0], (CheckResult{"verbs", "node", CheckLevel::kOk,
                                   "libibverbs (rdma-core) lists 8 devices: their ports and GID "
                                   "tables are compared with sysfs",
                                   ""}));
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(lines[k + 1], (CheckResult{"verbs", "mlx5_" + std::to_string(k), CheckLevel::kOk,
                                         "libibverbs agrees with sysfs: 1 port, 2 GIDs", ""}));
  }
  EXPECT_THAT(WithLevel(all, CheckLevel::kFail), ::testing::IsEmpty());
  EXPECT_EQ(verbs.calls(), 1);
}

TEST(DoctorVerbsTest, DisagreementFailsNamingEachDifferenceWithTheFix) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<rdma::VerbsDevice> seen = VerbsMirror(node.paths());
  seen[3].ports[0].state = "DOWN";
  seen[3].ports[0].gids[1].type = rdma::VerbsGidType::kRoceV1;
  rdma::FakeVerbsReader verbs({seen});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  EXPECT_EQ(*Find(all, "verbs", "mlx5_3"),
            (CheckResult{"verbs", "mlx5_3", CheckLevel::kFail,
                         "port 1 state: sysfs ACTIVE, verbs DOWN; port 1 GID 1 type: sysfs RoCE "
                         "v2, verbs RoCE v1",
                         kVerbsFix}));
  EXPECT_EQ(Find(all, "verbs", "mlx5_2")->level, CheckLevel::kOk);
  EXPECT_EQ(WithLevel(all, CheckLevel::kFail).size(), 1u);
  EXPECT_EQ(DoctorExitCode(all), kExitFailure);
  // Confirmed by a second reading.
  EXPECT_EQ(verbs.calls(), 2);
}

TEST(DoctorVerbsTest, DeviceMissingFromVerbsFails) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<rdma::VerbsDevice> seen = VerbsMirror(node.paths());
  seen.pop_back();
  rdma::FakeVerbsReader verbs({seen});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  EXPECT_EQ(*Find(all, "verbs", "mlx5_7"),
            (CheckResult{"verbs", "mlx5_7", CheckLevel::kFail, "in sysfs, not listed by libibverbs",
                         kVerbsFix}));
}

TEST(DoctorVerbsTest, ManyDisagreementsAreCountedPastFour) {
  TestNode node(fakenode::NoRdmaCm());
  std::vector<rdma::VerbsDevice> seen = VerbsMirror(node.paths());
  rdma::VerbsPort& port = seen[0].ports[0];
  port.state = "INIT";
  port.link_layer = rdma::LinkLayer::kInfiniBand;
  port.gid_tbl_len = 255;
  port.gids[0].gid = "fe80:0000:0000:0000:0000:0000:0000:0001";
  port.gids[1].gid = "fe80:0000:0000:0000:0000:0000:0000:0002";
  rdma::FakeVerbsReader verbs({seen});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  const CheckResult* r = Find(all, "verbs", "mlx5_0");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->level, CheckLevel::kFail);
  EXPECT_THAT(r->detail, ::testing::StartsWith("port 1 state: sysfs ACTIVE, verbs INIT; "));
  EXPECT_THAT(r->detail, ::testing::EndsWith(" (and 1 more)"));
}

TEST(DoctorVerbsTest, DisagreementGoneOnTheSecondReadingIsNotReported) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<rdma::VerbsDevice> agree = VerbsMirror(node.paths());
  std::vector<rdma::VerbsDevice> churn = agree;
  churn[0].ports[0].gids.pop_back();  // a pod's GID removed between the two sides' reads
  rdma::FakeVerbsReader verbs({churn, agree});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  EXPECT_EQ(Find(all, "verbs", "mlx5_0")->level, CheckLevel::kOk);
  EXPECT_EQ(Find(all, "verbs", "mlx5_0")->detail, "libibverbs agrees with sysfs: 1 port, 2 GIDs");
  EXPECT_EQ(verbs.calls(), 2);
}

TEST(DoctorVerbsTest, DeviceVerbsCannotOpenIsAWarning) {
  TestNode node(fakenode::NoRdmaCm());
  std::vector<rdma::VerbsDevice> seen = VerbsMirror(node.paths());
  seen[0].ports.clear();
  seen[0].error = "ibv_open_device: Permission denied";
  rdma::FakeVerbsReader verbs({seen});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  const CheckResult* r = Find(all, "verbs", "mlx5_0");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->level, CheckLevel::kWarn);
  EXPECT_EQ(r->detail, "libibverbs cannot read mlx5_0: ibv_open_device: Permission denied");
  EXPECT_THAT(r->fix, HasSubstr("/dev/infiniband/uverbs*"));
}

TEST(DoctorVerbsTest, NoVerbsDeviceOnANodeWithoutRdmaIsOneOkLine) {
  TestNode node(fakenode::PlainNic());
  rdma::FakeVerbsReader verbs({std::vector<rdma::VerbsDevice>{}});
  std::vector<CheckResult> lines =
      OfCheck(Checks(node.paths(), rdma::NetnsMode::kShared, &verbs), "verbs");
  EXPECT_THAT(lines, ::testing::ElementsAre(CheckResult{
                         "verbs", "node", CheckLevel::kOk,
                         "no verbs devices (libibverbs found none): checks use sysfs only", ""}));
}

TEST(DoctorVerbsTest, NoVerbsDeviceWhileSysfsListsDevicesIsOneWarning) {
  TestNode node(fakenode::Walkthrough8Rail());
  rdma::FakeVerbsReader verbs({std::vector<rdma::VerbsDevice>{}});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  std::vector<CheckResult> lines = OfCheck(all, "verbs");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].subject, "node");
  EXPECT_EQ(lines[0].level, CheckLevel::kWarn);
  EXPECT_EQ(lines[0].detail,
            "no verbs devices (libibverbs found none, sysfs lists 8): checks use sysfs only");
  EXPECT_THAT(lines[0].fix, HasSubstr("modprobe ib_uverbs"));
  EXPECT_EQ(DoctorExitCode(all), kExitOk);
}

TEST(DoctorVerbsTest, ReaderErrorIsAWarning) {
  TestNode node(fakenode::Walkthrough8Rail());
  rdma::FakeVerbsReader verbs(
      {absl::UnavailableError("libibverbs: ibv_get_device_list: Permission denied")});
  std::vector<CheckResult> lines =
      OfCheck(Checks(node.paths(), rdma::NetnsMode::kShared, &verbs), "verbs");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, CheckLevel::kWarn);
  EXPECT_EQ(lines[0].detail,
            "libibverbs: ibv_get_device_list: Permission denied: checks use sysfs only");
}

TEST(DoctorVerbsTest, NoReaderIsOneOkLineNamingTheTree) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<CheckResult> lines = OfCheck(Checks(node.paths(), rdma::NetnsMode::kShared), "verbs");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, CheckLevel::kOk);
  EXPECT_EQ(lines[0].detail,
            "not queried: libibverbs reads the running host, not the sysfs tree "
            "at " +
                node.paths().sys_root + ": checks use sysfs only");
}

// Each kind of disagreement, injected into an otherwise faithful verbs view of the walkthrough
// node, fails one device alone with its own clause. `inject` changes the view and returns the
// clause it expects (built from the view's own GIDs and netdevs).
struct VerbsKindCase {
  std::string name;
  std::string subject;
  std::function<std::string(std::vector<rdma::VerbsDevice>&)> inject;
};

void PrintTo(const VerbsKindCase& c, std::ostream* os) { *os << c.name; }

class DoctorVerbsKindTest : public ::testing::TestWithParam<VerbsKindCase> {};

TEST_P(DoctorVerbsKindTest, FailsTheDeviceWithItsClause) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<rdma::VerbsDevice> seen = VerbsMirror(node.paths());
  ASSERT_EQ(seen.size(), 8u);
  ASSERT_EQ(seen[1].ports.size(), 1u);
  ASSERT_EQ(seen[1].ports[0].gids.size(), 2u);
  std::string detail = GetParam().inject(seen);
  rdma::FakeVerbsReader verbs({seen});
  std::vector<CheckResult> all = Checks(node.paths(), rdma::NetnsMode::kShared, &verbs);
  EXPECT_EQ(WithLevel(all, CheckLevel::kFail),
            (std::vector<CheckResult>{
                {"verbs", GetParam().subject, CheckLevel::kFail, detail, kVerbsFix}}));
  EXPECT_EQ(DoctorExitCode(all), kExitFailure);
  // Confirmed by a second reading of both sides.
  EXPECT_EQ(verbs.calls(), 2);
}

constexpr char kOtherGid[] = "fe80:0000:0000:0000:0000:0000:0000:00aa";
using Seen = std::vector<rdma::VerbsDevice>;

INSTANTIATE_TEST_SUITE_P(
    Kinds, DoctorVerbsKindTest,
    ::testing::Values(
        VerbsKindCase{"DeviceOnlyInVerbs", "mlx5_8",
                      [](Seen& v) {
                        rdma::VerbsDevice extra = v[7];
                        extra.ibdev = "mlx5_8";
                        v.push_back(extra);
                        return std::string("listed by libibverbs, not in sysfs");
                      }},
        VerbsKindCase{"DeviceOnlyInSysfs", "mlx5_1",
                      [](Seen& v) {
                        v.erase(v.begin() + 1);
                        return std::string("in sysfs, not listed by libibverbs");
                      }},
        VerbsKindCase{"PortOnlyInSysfs", "mlx5_1",
                      [](Seen& v) {
                        v[1].ports.clear();
                        return std::string("port 1 in sysfs, not in verbs");
                      }},
        VerbsKindCase{"PortOnlyInVerbs", "mlx5_1",
                      [](Seen& v) {
                        v[1].ports.push_back(v[1].ports[0]);
                        v[1].ports[1].number = 2;
                        return std::string("port 2 in verbs, not in sysfs");
                      }},
        VerbsKindCase{"PortState", "mlx5_1",
                      [](Seen& v) {
                        v[1].ports[0].state = "ARMED";
                        return std::string("port 1 state: sysfs ACTIVE, verbs ARMED");
                      }},
        VerbsKindCase{"LinkLayer", "mlx5_1",
                      [](Seen& v) {
                        v[1].ports[0].link_layer = rdma::LinkLayer::kInfiniBand;
                        return std::string("port 1 link layer: sysfs Ethernet, verbs InfiniBand");
                      }},
        VerbsKindCase{"GidTableSize", "mlx5_1",
                      [](Seen& v) {
                        v[1].ports[0].gid_tbl_len = 128;
                        return std::string("port 1 GID table size: sysfs 16, verbs 128");
                      }},
        VerbsKindCase{"GidValue", "mlx5_1",
                      [](Seen& v) {
                        std::string was = v[1].ports[0].gids[0].gid;
                        v[1].ports[0].gids[0].gid = kOtherGid;
                        return fmt::format("port 1 GID 0: sysfs {}, verbs {}", was, kOtherGid);
                      }},
        VerbsKindCase{"GidOnlyInSysfs", "mlx5_1",
                      [](Seen& v) {
                        std::string was = v[1].ports[0].gids[1].gid;
                        v[1].ports[0].gids.pop_back();
                        return fmt::format("port 1 GID 1: sysfs {}, verbs none", was);
                      }},
        VerbsKindCase{"GidOnlyInVerbs", "mlx5_1",
                      [](Seen& v) {
                        rdma::VerbsGid extra = v[1].ports[0].gids[0];
                        extra.index = 9;
                        extra.gid = kOtherGid;
                        v[1].ports[0].gids.push_back(extra);
                        return fmt::format("port 1 GID 9: sysfs unused, verbs {}", kOtherGid);
                      }},
        VerbsKindCase{"GidType", "mlx5_1",
                      [](Seen& v) {
                        v[1].ports[0].gids[1].type = rdma::VerbsGidType::kIb;
                        return std::string("port 1 GID 1 type: sysfs RoCE v2, verbs IB");
                      }},
        VerbsKindCase{"GidNetdev", "mlx5_1",
                      [](Seen& v) {
                        rdma::VerbsGid& g = v[1].ports[0].gids[1];
                        const rdma::VerbsGid& other = v[2].ports[0].gids[1];
                        std::string was = g.ndev;
                        g.ndev = other.ndev;
                        g.ndev_ifindex = other.ndev_ifindex;
                        return fmt::format("port 1 GID 1 netdev: sysfs {}, verbs {} (ifindex {})",
                                           was, other.ndev, other.ndev_ifindex);
                      }},
        VerbsKindCase{"GidNetdevMissingInVerbs", "mlx5_1",
                      [](Seen& v) {
                        rdma::VerbsGid& g = v[1].ports[0].gids[0];
                        std::string was = g.ndev;
                        g.ndev = "";
                        g.ndev_ifindex = 0;
                        return fmt::format("port 1 GID 0 netdev: sysfs {}, verbs none", was);
                      }}),
    [](const ::testing::TestParamInfo<VerbsKindCase>& info) { return info.param.name; });

TEST(DoctorVerbsTest, JsonCarriesTheSourceAndEachDisagreement) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::vector<rdma::VerbsDevice> seen = VerbsMirror(node.paths());
  seen[5].ports[0].state = "DOWN";
  rdma::FakeNetnsModeReader netns(rdma::NetnsMode::kShared);
  rdma::FakeVerbsReader verbs({seen});
  Environment env;
  env.paths = node.paths();
  env.netns_reader = &netns;
  env.verbs_reader = &verbs;
  testing::CliRun run = testing::RunInProcess(Concat({"doctor", "--json"}, node.RootFlags()), env);
  EXPECT_EQ(run.code, kExitFailure) << run.err;
  nlohmann::json j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  EXPECT_EQ(j["ok"], false);
  std::vector<nlohmann::json> lines;
  for (const nlohmann::json& c : j["checks"]) {
    if (c["check"] == "verbs" && (c["subject"] == "node" || c["level"] != "ok")) {
      lines.push_back(c);
    }
  }
  ASSERT_EQ(lines.size(), 2u) << run.out;
  EXPECT_EQ(lines[0]["level"], "ok");
  EXPECT_THAT(lines[0]["detail"].get<std::string>(),
              HasSubstr("libibverbs (rdma-core) lists 8 devices"));
  EXPECT_EQ(lines[1], (nlohmann::json{{"check", "verbs"},
                                      {"subject", "mlx5_5"},
                                      {"level", "fail"},
                                      {"detail", "port 1 state: sysfs ACTIVE, verbs DOWN"},
                                      {"fix", kVerbsFix}}));
}

TEST(DoctorVerbsTest, CliQueriesVerbsOnlyForTheEnvironmentsOwnSysfs) {
  TestNode node(fakenode::Walkthrough8Rail());
  rdma::FakeNetnsModeReader netns(rdma::NetnsMode::kShared);
  rdma::FakeVerbsReader verbs({VerbsMirror(node.paths())});
  Environment env;
  env.paths = node.paths();
  env.netns_reader = &netns;
  env.verbs_reader = &verbs;
  testing::CliRun own = testing::RunInProcess(Concat({"doctor"}, node.RootFlags()), env);
  EXPECT_THAT(own.out, HasSubstr("agrees with sysfs: 1 port, 2 GIDs"));
  EXPECT_EQ(verbs.calls(), 1);

  // The same reader against another tree (a capture, another node's fixture) stays unused.
  TestNode other(fakenode::Walkthrough8Rail());
  testing::CliRun elsewhere = testing::RunInProcess(Concat({"doctor"}, other.RootFlags()), env);
  EXPECT_THAT(elsewhere.out, HasSubstr("not queried: libibverbs reads the running host"));
  EXPECT_EQ(verbs.calls(), 1);
}

}  // namespace
}  // namespace rdmashare::cli
