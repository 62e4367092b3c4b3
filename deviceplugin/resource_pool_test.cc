#include "deviceplugin/resource_pool.h"

#include <atomic>
#include <thread>

#include "common/testing/status_matchers.h"
#include "deviceplugin/test_inventory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::deviceplugin::testing::TestHca;
using ::rdmashare::deviceplugin::testing::TestRdmaCm;
using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ResourceConfig Rail(const std::string& name, const std::string& ifname, int max = 100) {
  ResourceConfig rc;
  rc.resource_prefix = "spidernet.io";
  rc.resource_name = name;
  rc.rdma_hca_max = max;
  rc.selectors.if_names = {ifname};
  return rc;
}

rdma::NodeInventory TwoRails() {
  rdma::NodeInventory inv;
  inv.devices = {TestHca(0, "enp11s0f0np0", 0), TestHca(1, "enp12s0f0np0", 1)};
  inv.rdma_cm = TestRdmaCm();
  return inv;
}

TEST(ResourcePoolTest, AdvertisesRdmaHcaMaxUnitsWithIdsZeroToNMinusOne) {
  ResourcePool pool(Rail("shared_cx5_gpu1", "enp11s0f0np0", 3), "/dev", "/dev");
  EXPECT_TRUE(pool.Update(TwoRails()));
  auto snap = pool.Current();
  EXPECT_EQ(snap->version, 1u);
  EXPECT_THAT(snap->ids, ElementsAre("0", "1", "2"));
  EXPECT_TRUE(snap->healthy);
  ASSERT_EQ(snap->devices.size(), 1u);
  EXPECT_EQ(snap->devices[0].ibdev, "mlx5_0");
}

TEST(ResourcePoolTest, SelectorsMatchingNothingAdvertiseNoUnits) {
  ResourcePool pool(Rail("r", "enp99s0"), "/dev", "/dev");
  pool.Update(TwoRails());
  auto snap = pool.Current();
  EXPECT_TRUE(snap->ids.empty());
  EXPECT_TRUE(snap->devices.empty());
  EXPECT_TRUE(snap->nodes.empty());
}

TEST(ResourcePoolTest, RdmaHcaMaxZeroRegistersWithNoUnits) {
  ResourcePool pool(Rail("r", "enp11s0f0np0", 0), "/dev", "/dev");
  pool.Update(TwoRails());
  EXPECT_TRUE(pool.Current()->ids.empty());
  EXPECT_EQ(pool.Current()->devices.size(), 1u);
}

TEST(ResourcePoolTest, UnchangedInventoryPublishesNoNewSnapshot) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  EXPECT_TRUE(pool.Update(TwoRails()));
  EXPECT_FALSE(pool.Update(TwoRails()));
  EXPECT_EQ(pool.Current()->version, 1u);
}

TEST(ResourcePoolTest, ChangedInventoryPublishesHigherVersion) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  pool.Update(TwoRails());
  rdma::NodeInventory inv = TwoRails();
  inv.devices[0].ports[0].state = "DOWN";
  EXPECT_TRUE(pool.Update(inv));
  EXPECT_EQ(pool.Current()->version, 2u);
}

TEST(ResourcePoolTest, NodesAreUverbsAndUmadOfEachHcaPlusRdmaCmOnce) {
  ResourceConfig rc = Rail("both", "enp11s0f0np0");
  rc.selectors.if_names.push_back("enp12s0f0np0");
  ResourcePool pool(rc, "/dev", "/dev");
  pool.Update(TwoRails());
  std::vector<std::string> paths;
  for (const DeviceNode& n : pool.Current()->nodes) {
    paths.push_back(n.container_path);
    EXPECT_EQ(n.permissions, "rw");
  }
  EXPECT_THAT(paths, ElementsAre("/dev/infiniband/uverbs0", "/dev/infiniband/umad0",
                                 "/dev/infiniband/uverbs1", "/dev/infiniband/umad1",
                                 "/dev/infiniband/rdma_cm"));
}

TEST(ResourcePoolTest, IssmIsInjectedOnlyWhenConfigured) {
  ResourceConfig rc = Rail("r", "enp11s0f0np0");
  rc.include_issm = true;
  ResourcePool pool(rc, "/dev", "/dev");
  pool.Update(TwoRails());
  std::vector<std::string> paths;
  for (const DeviceNode& n : pool.Current()->nodes) paths.push_back(n.container_path);
  EXPECT_THAT(paths, ElementsAre("/dev/infiniband/uverbs0", "/dev/infiniband/umad0",
                                 "/dev/infiniband/issm0", "/dev/infiniband/rdma_cm"));
}

TEST(ResourcePoolTest, MountCliPublishesTheCliHostPathOnlyWhenConfigured) {
  ResourceConfig rc = Rail("r", "enp11s0f0np0");
  ResourcePool plain(rc, "/dev", "/dev", "/opt/cni/bin/rdmashare");
  plain.Update(TwoRails());
  EXPECT_EQ(plain.Current()->cli_host_path, "");
  rc.mount_cli = true;
  ResourcePool with(rc, "/dev", "/dev", "/opt/cni/bin/rdmashare");
  with.Update(TwoRails());
  EXPECT_EQ(with.Current()->cli_host_path, "/opt/cni/bin/rdmashare");
}

TEST(ResourcePoolTest, HostPathsAreBuiltFromHostDevRoot) {
  rdma::NodeInventory inv;
  inv.devices = {TestHca(0, "enp11s0f0np0", 0, "/host/dev")};
  inv.rdma_cm = TestRdmaCm("/host/dev");
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/host/dev/", "/dev");
  pool.Update(inv);
  const auto& nodes = pool.Current()->nodes;
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].host_path, "/dev/infiniband/uverbs0");
  EXPECT_EQ(nodes[0].container_path, "/dev/infiniband/uverbs0");
  EXPECT_EQ(nodes[2].host_path, "/dev/infiniband/rdma_cm");
}

TEST(ResourcePoolTest, MissingUmadAndRdmaCmAreLeftOutButDeviceStays) {
  rdma::NodeInventory inv;
  inv.devices = {TestHca(0, "enp11s0f0np0", 0)};
  inv.devices[0].ports[0].umad.reset();
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  pool.Update(inv);
  auto snap = pool.Current();
  EXPECT_TRUE(snap->healthy);
  ASSERT_EQ(snap->nodes.size(), 1u);
  EXPECT_EQ(snap->nodes[0].container_path, "/dev/infiniband/uverbs0");
}

TEST(ResourcePoolTest, HcaWithoutUverbsNodeMakesUnitsUnhealthy) {
  rdma::NodeInventory inv = TwoRails();
  inv.devices[0].uverbs->present = false;
  ResourcePool pool(Rail("r", "enp11s0f0np0", 2), "/dev", "/dev");
  pool.Update(inv);
  auto snap = pool.Current();
  EXPECT_THAT(snap->ids, ElementsAre("0", "1"));
  EXPECT_FALSE(snap->healthy);
  EXPECT_TRUE(snap->nodes.empty());
}

TEST(ResourcePoolTest, NumaNodesAreDistinctSortedAndSkipUnknown) {
  rdma::NodeInventory inv;
  inv.devices = {TestHca(0, "a", 1), TestHca(1, "b", 0), TestHca(2, "c", 1), TestHca(3, "d", -1)};
  ResourceConfig rc = Rail("r", "a");
  rc.selectors.if_names = {"a", "b", "c", "d"};
  ResourcePool pool(rc, "/dev", "/dev");
  pool.Update(inv);
  EXPECT_THAT(pool.Current()->numa_nodes, ElementsAre(0, 1));
}

TEST(ResourcePoolTest, WaitForNewerReturnsTheNewSnapshotAfterUpdate) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  pool.Update(TwoRails());
  std::shared_ptr<const PoolSnapshot> got;
  std::thread waiter([&] { got = pool.WaitForNewer(1, std::chrono::seconds(10)); });
  rdma::NodeInventory inv = TwoRails();
  inv.devices[0].numa_node = 1;
  pool.Update(inv);
  waiter.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->version, 2u);
}

TEST(ResourcePoolTest, WaitForNewerTimesOutWithoutChange) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  pool.Update(TwoRails());
  EXPECT_EQ(pool.WaitForNewer(1, std::chrono::milliseconds(20)), nullptr);
}

TEST(ResourcePoolTest, ShutdownWakesWaiters) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  pool.Update(TwoRails());
  std::shared_ptr<const PoolSnapshot> got = std::make_shared<PoolSnapshot>();
  std::thread waiter([&] { got = pool.WaitForNewer(1, std::chrono::seconds(30)); });
  pool.Shutdown();
  waiter.join();
  EXPECT_EQ(got, nullptr);
  EXPECT_TRUE(pool.is_shut_down());
}

TEST(ResourcePoolTest, CheckIdsRejectsUnknownIdNamingIt) {
  ResourcePool pool(Rail("r", "enp11s0f0np0", 2), "/dev", "/dev");
  pool.Update(TwoRails());
  EXPECT_THAT(ResourcePool::CheckIds(*pool.Current(), {"0", "1"}, "spidernet.io/r"), IsOk());
  EXPECT_THAT(ResourcePool::CheckIds(*pool.Current(), {"0", "7"}, "spidernet.io/r"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("spidernet.io/r: unknown device ID \"7\"")));
}

ResourceConfig BothRails(HealthPolicy policy) {
  ResourceConfig rc = Rail("both", "enp11s0f0np0", 2);
  rc.selectors.if_names.push_back("enp12s0f0np0");
  rc.health_policy = policy;
  return rc;
}

struct PolicyCase {
  std::string name;
  HealthPolicy policy;
  int down;  // HCAs with their port DOWN (of 2)
  bool healthy;
};

class HealthPolicyTest : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(HealthPolicyTest, UnitsFollowThePolicy) {
  const PolicyCase& c = GetParam();
  ResourcePool pool(BothRails(c.policy), "/dev", "/dev");
  rdma::NodeInventory inv = TwoRails();
  for (int i = 0; i < c.down; ++i) inv.devices[i].ports[0].state = "DOWN";
  pool.Update(inv);
  auto snap = pool.Current();
  EXPECT_EQ(snap->ids.size(), 2u);
  EXPECT_EQ(snap->healthy, c.healthy);
  if (c.healthy) {
    EXPECT_EQ(snap->health_cause, "");
  } else {
    EXPECT_THAT(snap->health_cause, HasSubstr("mlx5_0: port 1 DOWN"));
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, HealthPolicyTest,
                         ::testing::Values(PolicyCase{"AnyAllUp", HealthPolicy::kAny, 0, true},
                                           PolicyCase{"AnyOneDown", HealthPolicy::kAny, 1, true},
                                           PolicyCase{"AnyBothDown", HealthPolicy::kAny, 2, false},
                                           PolicyCase{"AllAllUp", HealthPolicy::kAll, 0, true},
                                           PolicyCase{"AllOneDown", HealthPolicy::kAll, 1, false},
                                           PolicyCase{"AllBothDown", HealthPolicy::kAll, 2, false}),
                         [](const ::testing::TestParamInfo<PolicyCase>& info) {
                           return info.param.name;
                         });

TEST(ResourcePoolTest, LosingEveryHcaKeepsTheUnitsUnhealthyAndTheyRecover) {
  ResourcePool pool(Rail("r", "enp11s0f0np0", 3), "/dev", "/dev");
  pool.Update(TwoRails());
  rdma::NodeInventory gone = TwoRails();
  gone.devices.erase(gone.devices.begin());
  EXPECT_TRUE(pool.Update(gone));
  auto snap = pool.Current();
  EXPECT_THAT(snap->ids, ElementsAre("0", "1", "2"));
  EXPECT_FALSE(snap->healthy);
  EXPECT_EQ(snap->health_cause, "all selected HCAs are gone");
  EXPECT_TRUE(snap->nodes.empty());
  EXPECT_TRUE(pool.Update(TwoRails()));
  EXPECT_TRUE(pool.Current()->healthy);
  EXPECT_EQ(pool.Current()->ids.size(), 3u);
}

TEST(ResourcePoolTest, TopologyFalseAdvertisesNoNumaNodes) {
  ResourceConfig rc = BothRails(HealthPolicy::kAny);
  ResourcePool with(rc, "/dev", "/dev");
  with.Update(TwoRails());
  EXPECT_THAT(with.Current()->numa_nodes, ElementsAre(0, 1));
  rc.topology = false;
  ResourcePool without(rc, "/dev", "/dev");
  without.Update(TwoRails());
  EXPECT_TRUE(without.Current()->numa_nodes.empty());
}

TEST(ResourcePoolTest, NumaNodeMinusOneGivesNoTopology) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  rdma::NodeInventory inv = TwoRails();
  inv.devices[0].numa_node = -1;
  pool.Update(inv);
  EXPECT_TRUE(pool.Current()->numa_nodes.empty());
}

TEST(ResourcePoolTest, EnvNamesTheUsableHcasAndTheirNetdevs) {
  ResourceConfig rc = BothRails(HealthPolicy::kAny);
  rc.resource_name = "shared-cx5.gpu1";
  ResourcePool pool(rc, "/dev", "/dev");
  rdma::NodeInventory inv = TwoRails();
  pool.Update(inv);
  using Env = std::pair<std::string, std::string>;
  EXPECT_THAT(pool.Current()->envs,
              ElementsAre(Env{"RDMASHARE_SHARED_CX5_GPU1_IBDEVS", "mlx5_0,mlx5_1"},
                          Env{"RDMASHARE_SHARED_CX5_GPU1_NETDEVS", "enp11s0f0np0,enp12s0f0np0"}));
  inv.devices[1].uverbs->present = false;
  pool.Update(inv);
  EXPECT_THAT(pool.Current()->envs,
              ElementsAre(Env{"RDMASHARE_SHARED_CX5_GPU1_IBDEVS", "mlx5_0"},
                          Env{"RDMASHARE_SHARED_CX5_GPU1_NETDEVS", "enp11s0f0np0"}));
}

TEST(ResourcePoolTest, KickWakesAWaiterWithoutANewSnapshot) {
  ResourcePool pool(Rail("r", "enp11s0f0np0"), "/dev", "/dev");
  pool.Update(TwoRails());
  std::shared_ptr<const PoolSnapshot> got = pool.Current();
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    got = pool.WaitForNewer(1, std::chrono::hours(1));
    done = true;
  });
  while (!done) {
    pool.Kick();
    std::this_thread::yield();
  }
  waiter.join();
  EXPECT_EQ(got, nullptr);
  EXPECT_EQ(pool.Current()->version, 1u);
}

TEST(EnvPrefixForTest, UpperCasesAndReplacesNonAlphanumerics) {
  EXPECT_EQ(EnvPrefixFor("shared_cx5_gpu1"), "RDMASHARE_SHARED_CX5_GPU1_");
  EXPECT_EQ(EnvPrefixFor("a-b.c"), "RDMASHARE_A_B_C_");
  EXPECT_EQ(EnvPrefixFor("Rail9"), "RDMASHARE_RAIL9_");
}

}  // namespace
}  // namespace rdmashare::deviceplugin
