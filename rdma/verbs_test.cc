// Tests of the verbs records: the comparison with sysfs (table-driven), the translation of verbs'
// numbers, the sysfs view on a fake node and the fake reader.
#include "rdma/verbs.h"

#include <functional>

#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/device_scanner.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::rdma {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kGid0[] = "fe80:0000:0000:0000:0e42:a1ff:fe00:0001";
constexpr char kGid1[] = "0000:0000:0000:0000:0000:ffff:ac10:0b0a";
constexpr char kGid2[] = "0000:0000:0000:0000:0000:ffff:ac10:0b0b";

// mlx5_0: one RoCE port, 4-entry table, entry 0 a RoCE v1 link-local, entry 1 a RoCE v2 IPv4
// GID on a pod's macvlan (net1, another namespace), entries 2-3 unused. mlx5_1: one InfiniBand
// port, one IB GID without netdev.
SysfsRdmaView BaseSysfs() {
  SysfsRdmaView v;
  RdmaDevice d0;
  d0.ibdev = "mlx5_0";
  RdmaPort p;
  p.number = 1;
  p.state = "ACTIVE";
  p.link_layer = LinkLayer::kEthernet;
  p.gid_table_size = 4;
  d0.ports.push_back(p);
  RdmaDevice d1;
  d1.ibdev = "mlx5_1";
  p.link_layer = LinkLayer::kInfiniBand;
  p.gid_table_size = 2;
  d1.ports.push_back(p);
  v.inventory.devices = {d0, d1};
  v.gid_tables[{"mlx5_0", 1}] = {{0, kGid0, "IB/RoCE v1", "enp11s0f0np0"},
                                 {1, kGid1, "RoCE v2", "net1"},
                                 {2, kZeroGid, "", ""},
                                 {3, kZeroGid, "", ""}};
  v.gid_tables[{"mlx5_1", 1}] = {{0, kGid0, "IB/RoCE v1", ""}, {1, kZeroGid, "", ""}};
  v.netdevs = {"eth0", "enp11s0f0np0", "enp12s0f0np0"};
  return v;
}

std::vector<VerbsDevice> BaseVerbs() {
  VerbsPort roce{1, "ACTIVE", LinkLayer::kEthernet, 4, {}};
  roce.gids = {{0, kGid0, VerbsGidType::kRoceV1, 5, "enp11s0f0np0"},
               // net1's ifindex is the pod's: this namespace has no interface 3.
               {1, kGid1, VerbsGidType::kRoceV2, 3, ""}};
  VerbsPort ib{1, "ACTIVE", LinkLayer::kInfiniBand, 2, {}};
  ib.gids = {{0, kGid0, VerbsGidType::kIb, 0, ""}};
  return {VerbsDevice{"mlx5_0", "", {roce}}, VerbsDevice{"mlx5_1", "", {ib}}};
}

TEST(CompareVerbsWithSysfsTest, AgreeingViewsGiveNothing) {
  EXPECT_THAT(CompareVerbsWithSysfs(BaseVerbs(), BaseSysfs()), IsEmpty());
}

struct CompareCase {
  std::string name;
  std::function<void(SysfsRdmaView&)> sysfs;
  std::function<void(std::vector<VerbsDevice>&)> verbs;
  std::vector<VerbsDisagreement> want;
  // Describe() of the first record.
  std::string text;
};

void PrintTo(const CompareCase& c, std::ostream* os) { *os << c.name; }

class CompareTest : public ::testing::TestWithParam<CompareCase> {};

TEST_P(CompareTest, ReportsExactlyTheDisagreement) {
  const CompareCase& c = GetParam();
  SysfsRdmaView sysfs = BaseSysfs();
  std::vector<VerbsDevice> verbs = BaseVerbs();
  if (c.sysfs) c.sysfs(sysfs);
  if (c.verbs) c.verbs(verbs);
  std::vector<VerbsDisagreement> got = CompareVerbsWithSysfs(verbs, sysfs);
  EXPECT_EQ(got, c.want);
  if (!got.empty()) {
    EXPECT_EQ(got.front().Describe(), c.text);
  } else {
    EXPECT_EQ("", c.text);
  }
}

using K = VerbsDisagreementKind;
using Verbs = std::vector<VerbsDevice>;

INSTANTIATE_TEST_SUITE_P(
    Cases, CompareTest,
    ::testing::Values(
        CompareCase{"DeviceOnlyInSysfs", nullptr, [](Verbs& v) { v.erase(v.begin()); },
                    {{"mlx5_0", 0, -1, K::kDeviceOnlyInSysfs, "present", "absent"}},
                    "in sysfs, not listed by libibverbs"},
        CompareCase{"DeviceOnlyInVerbs",
                    [](SysfsRdmaView& s) {
                      s.inventory.devices.pop_back();
                      s.gid_tables.erase({"mlx5_1", 1});
                    },
                    nullptr,
                    {{"mlx5_1", 0, -1, K::kDeviceOnlyInVerbs, "absent", "present"}},
                    "listed by libibverbs, not in sysfs"},
        CompareCase{"UnreadableVerbsDeviceIsNotCompared", nullptr,
                    [](Verbs& v) {
                      v[0].error = "ibv_open_device: Permission denied";
                      v[0].ports.clear();
                    },
                    {},
                    ""},
        CompareCase{"PortOnlyInSysfs",
                    [](SysfsRdmaView& s) {
                      RdmaPort p2 = s.inventory.devices[0].ports[0];
                      p2.number = 2;
                      s.inventory.devices[0].ports.push_back(p2);
                    },
                    nullptr,
                    {{"mlx5_0", 2, -1, K::kPortOnlyInSysfs, "present", "absent"}},
                    "port 2 in sysfs, not in verbs"},
        CompareCase{"PortOnlyInVerbs", nullptr,
                    [](Verbs& v) {
                      VerbsPort p2 = v[1].ports[0];
                      p2.number = 2;
                      v[1].ports.push_back(p2);
                    },
                    {{"mlx5_1", 2, -1, K::kPortOnlyInVerbs, "absent", "present"}},
                    "port 2 in verbs, not in sysfs"},
        CompareCase{"PortState", nullptr, [](Verbs& v) { v[0].ports[0].state = "DOWN"; },
                    {{"mlx5_0", 1, -1, K::kPortState, "ACTIVE", "DOWN"}},
                    "port 1 state: sysfs ACTIVE, verbs DOWN"},
        CompareCase{"LinkLayer", nullptr,
                    [](Verbs& v) { v[1].ports[0].link_layer = LinkLayer::kEthernet; },
                    {{"mlx5_1", 1, -1, K::kLinkLayer, "InfiniBand", "Ethernet"}},
                    "port 1 link layer: sysfs InfiniBand, verbs Ethernet"},
        CompareCase{"GidTableSize", nullptr, [](Verbs& v) { v[0].ports[0].gid_tbl_len = 255; },
                    {{"mlx5_0", 1, -1, K::kGidTableSize, "4", "255"}},
                    "port 1 GID table size: sysfs 4, verbs 255"},
        CompareCase{"GidValueDiffers", nullptr, [](Verbs& v) { v[0].ports[0].gids[1].gid = kGid2; },
                    {{"mlx5_0", 1, 1, K::kGidValue, kGid1, kGid2}},
                    std::string("port 1 GID 1: sysfs ") + kGid1 + ", verbs " + kGid2},
        CompareCase{"GidOnlyInSysfs", nullptr,
                    [](Verbs& v) { v[0].ports[0].gids.pop_back(); },
                    {{"mlx5_0", 1, 1, K::kGidValue, kGid1, "none"}},
                    std::string("port 1 GID 1: sysfs ") + kGid1 + ", verbs none"},
        CompareCase{"GidOnlyInVerbs", nullptr,
                    [](Verbs& v) {
                      v[0].ports[0].gids.push_back(
                          {3, kGid2, VerbsGidType::kRoceV2, 5, "enp11s0f0np0"});
                    },
                    {{"mlx5_0", 1, 3, K::kGidValue, "unused", kGid2}},
                    std::string("port 1 GID 3: sysfs unused, verbs ") + kGid2},
        CompareCase{"GidType", nullptr,
                    [](Verbs& v) { v[0].ports[0].gids[1].type = VerbsGidType::kRoceV1; },
                    {{"mlx5_0", 1, 1, K::kGidType, "RoCE v2", "RoCE v1"}},
                    "port 1 GID 1 type: sysfs RoCE v2, verbs RoCE v1"},
        CompareCase{"IbRoceV1TextMatchesRoceV1ButNotV2", nullptr,
                    [](Verbs& v) { v[0].ports[0].gids[0].type = VerbsGidType::kRoceV2; },
                    {{"mlx5_0", 1, 0, K::kGidType, "IB/RoCE v1", "RoCE v2"}},
                    "port 1 GID 0 type: sysfs IB/RoCE v1, verbs RoCE v2"},
        CompareCase{"UnreadableSysfsTypeIsNotCompared",
                    [](SysfsRdmaView& s) { s.gid_tables[{"mlx5_0", 1}][1].type = ""; }, nullptr,
                    {},
                    ""},
        CompareCase{"NetdevOfThisNamespaceDiffers", nullptr,
                    [](Verbs& v) {
                      v[0].ports[0].gids[0].ndev_ifindex = 6;
                      v[0].ports[0].gids[0].ndev = "enp12s0f0np0";
                    },
                    {{"mlx5_0", 1, 0, K::kGidNetdev, "enp11s0f0np0", "enp12s0f0np0 (ifindex 6)"}},
                    "port 1 GID 0 netdev: sysfs enp11s0f0np0, verbs enp12s0f0np0 (ifindex 6)"},
        CompareCase{"NetdevMissingInVerbs", nullptr,
                    [](Verbs& v) {
                      v[0].ports[0].gids[1].ndev_ifindex = 0;
                      v[0].ports[0].gids[1].ndev = "";
                    },
                    {{"mlx5_0", 1, 1, K::kGidNetdev, "net1", "none"}},
                    "port 1 GID 1 netdev: sysfs net1, verbs none"},
        CompareCase{"NetdevMissingInSysfs", nullptr,
                    [](Verbs& v) { v[1].ports[0].gids[0].ndev_ifindex = 9; },
                    {{"mlx5_1", 1, 0, K::kGidNetdev, "none", "ifindex 9"}},
                    "port 1 GID 0 netdev: sysfs none, verbs ifindex 9"},
        // A pod's net1 whose ifindex happens to name a host interface: sysfs's name is not a
        // netdev of this namespace, so the names cannot be compared.
        CompareCase{"NetdevOfAnotherNamespaceIsNotCompared", nullptr,
                    [](Verbs& v) { v[0].ports[0].gids[1].ndev = "eth0"; }, {}, ""},
        CompareCase{"PortWithoutSysfsTableSkipsGids",
                    [](SysfsRdmaView& s) { s.gid_tables.erase({"mlx5_0", 1}); },
                    [](Verbs& v) { v[0].ports[0].gids.clear(); }, {}, ""},
        CompareCase{"SeveralInOrder", nullptr,
                    [](Verbs& v) {
                      v[1].ports[0].state = "INIT";
                      v[0].ports[0].gids[1].gid = kGid2;
                      v[0].ports[0].gids[0].type = VerbsGidType::kRoceV2;
                    },
                    {{"mlx5_0", 1, 0, K::kGidType, "IB/RoCE v1", "RoCE v2"},
                     {"mlx5_0", 1, 1, K::kGidValue, kGid1, kGid2},
                     {"mlx5_1", 1, -1, K::kPortState, "ACTIVE", "INIT"}},
                    "port 1 GID 0 type: sysfs IB/RoCE v1, verbs RoCE v2"}),
    [](const ::testing::TestParamInfo<CompareCase>& info) { return info.param.name; });

TEST(VerbsTranslationTest, PortStatesUseTheKernelsSysfsNames) {
  EXPECT_EQ(VerbsPortStateName(0), "NOP");
  EXPECT_EQ(VerbsPortStateName(1), "DOWN");
  EXPECT_EQ(VerbsPortStateName(2), "INIT");
  EXPECT_EQ(VerbsPortStateName(3), "ARMED");
  EXPECT_EQ(VerbsPortStateName(4), "ACTIVE");
  EXPECT_EQ(VerbsPortStateName(5), "ACTIVE_DEFER");
  EXPECT_EQ(VerbsPortStateName(6), "UNKNOWN");
}

TEST(VerbsTranslationTest, LinkLayerUnspecifiedIsUnknown) {
  EXPECT_EQ(VerbsLinkLayer(0), LinkLayer::kUnknown);
  EXPECT_EQ(VerbsLinkLayer(1), LinkLayer::kInfiniBand);
  EXPECT_EQ(VerbsLinkLayer(2), LinkLayer::kEthernet);
  EXPECT_EQ(VerbsLinkLayer(7), LinkLayer::kUnknown);
}

TEST(VerbsTranslationTest, GidTypesAndUnknownValue) {
  EXPECT_EQ(*VerbsGidTypeFromValue(0), VerbsGidType::kIb);
  EXPECT_EQ(*VerbsGidTypeFromValue(1), VerbsGidType::kRoceV1);
  EXPECT_EQ(*VerbsGidTypeFromValue(2), VerbsGidType::kRoceV2);
  EXPECT_THAT(VerbsGidTypeFromValue(3),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown GID type 3"));
  EXPECT_STREQ(VerbsGidTypeName(VerbsGidType::kRoceV2), "RoCE v2");
}

TEST(VerbsTranslationTest, GidTextIsSysfsFormat) {
  const uint8_t raw[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x0e, 0x42, 0xa1, 0xff, 0xfe, 0, 0, 1};
  EXPECT_EQ(GidText(raw), kGid0);
  const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 172, 16, 11, 10};
  EXPECT_EQ(GidText(v4), kGid1);
}

TEST(ReadSysfsRdmaViewTest, ReadsEveryPortsTableAndTheNetdevs) {
  rdmashare::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(fakenode::FakeNode node,
                       fakenode::FakeNode::Build(fakenode::NoRdmaCm(), dir.Sub("node")));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  SysfsRdmaView view = ReadSysfsRdmaView(node.sys_root(), inv);
  EXPECT_EQ(view.inventory, inv);
  EXPECT_THAT(view.netdevs, ElementsAre("enp11s0f0np0", "eth0"));
  ASSERT_EQ(view.gid_tables.count({"mlx5_0", 1}), 1u);
  const std::vector<GidTableEntry>& table = view.gid_tables.at({"mlx5_0", 1});
  ASSERT_EQ(table.size(), 16u);
  EXPECT_EQ(table[1], (GidTableEntry{1, "fe80:0000:0000:0000:0c42:a103:0000:0102", "RoCE v2",
                                     "enp11s0f0np0"}));
}

TEST(ReadSysfsRdmaViewTest, UnreadableTableIsLeftOut) {
  rdmashare::testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(fakenode::FakeNode node,
                       fakenode::FakeNode::Build(fakenode::NoRdmaCm(), dir.Sub("node")));
  SysfsDeviceScanner scanner(node.paths());
  ASSERT_OK_AND_ASSIGN(NodeInventory inv, scanner.Scan());
  inv.devices[0].ports[0].number = 7;  // no ports/7 in the tree
  EXPECT_THAT(ReadSysfsRdmaView(node.sys_root(), inv).gid_tables, IsEmpty());
}

TEST(FakeVerbsReaderTest, AnswersInOrderThenRepeatsTheLast) {
  FakeVerbsReader reader({absl::UnavailableError("busy"), BaseVerbs()});
  EXPECT_THAT(reader.Devices(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(*reader.Devices(), BaseVerbs());
  EXPECT_EQ(*reader.Devices(), BaseVerbs());
  EXPECT_EQ(reader.calls(), 3);
}

}  // namespace
}  // namespace rdmashare::rdma
