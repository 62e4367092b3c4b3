#include "rdma/gid_table.h"

#include <string>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::rdma {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

class GidTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = fakenode::FakeNode::Build(fakenode::Walkthrough8Rail(), dir_.Sub("node"));
    ASSERT_TRUE(node.ok()) << node.status();
    node_.emplace(std::move(*node));
  }
  std::string Port1(const std::string& rel) const {
    return JoinPath(node_->sys_root(), "class/infiniband/mlx5_0/ports/1/" + rel);
  }
  rdmashare::testing::TempDir dir_;
  std::optional<fakenode::FakeNode> node_;
};

TEST_F(GidTableTest, ReadsEntriesInIndexOrderWithTypeAndNetdevOfUsedOnes) {
  ASSERT_OK_AND_ASSIGN(std::vector<GidTableEntry> table,
                       ReadGidTable(node_->sys_root(), "mlx5_0", 1));
  ASSERT_EQ(table.size(), 16u);
  for (size_t i = 0; i < table.size(); ++i) EXPECT_EQ(table[i].index, static_cast<int>(i));
  // The preset populates entries 0 (RoCE v1) and 1 (RoCE v2) of the rail's netdev.
  EXPECT_TRUE(table[0].used());
  EXPECT_EQ(table[0].type, "IB/RoCE v1");
  EXPECT_EQ(table[1].type, "RoCE v2");
  EXPECT_EQ(table[1].netdev, "enp11s0f0np0");
  EXPECT_FALSE(table[2].used());
  EXPECT_EQ(table[2].gid, kZeroGid);
  EXPECT_EQ(table[2].type, "");
}

TEST_F(GidTableTest, NamesThatAreNoIndexAreSkipped) {
  ASSERT_TRUE(WriteFileAtomic(Port1("gids/README"), "x\n").ok());
  ASSERT_OK_AND_ASSIGN(std::vector<GidTableEntry> table,
                       ReadGidTable(node_->sys_root(), "mlx5_0", 1));
  EXPECT_EQ(table.size(), 16u);
}

TEST_F(GidTableTest, MissingPortIsNotFound) {
  EXPECT_THAT(ReadGidTable(node_->sys_root(), "mlx5_0", 9),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("ports/9/gids")));
  EXPECT_EQ(ReadGidRoom(node_->sys_root(), "mlx5_0", 9), (GidRoom{0, 0}));
}

TEST_F(GidTableTest, RoomCountsFourEntriesPerPod) {
  GidRoom room = ReadGidRoom(node_->sys_root(), "mlx5_0", 1);
  EXPECT_EQ(room, (GidRoom{16, 2}));
  EXPECT_EQ(room.free(), 14);
  EXPECT_EQ(room.pods_fit(), 3);
  // A pod's IPv4 (v1 + v2) and IPv6 link-local (v1 + v2) take four more entries.
  for (int i = 2; i < 6; ++i) {
    ASSERT_TRUE(WriteFileAtomic(Port1("gids/" + std::to_string(i)),
                                "fe80:0000:0000:0000:0000:0000:0000:00" + std::to_string(10 + i))
                    .ok());
  }
  room = ReadGidRoom(node_->sys_root(), "mlx5_0", 1);
  EXPECT_EQ(room, (GidRoom{16, 6}));
  EXPECT_EQ(room.pods_fit(), 2);
  EXPECT_EQ(DescribeGidRoom(room),
            "10 of 16 GID entries free (6 used): room for 2 pods (4 entries each: RoCE v1+v2 of "
            "the pod's IPv4 and IPv6 link-local addresses)");
}

TEST(GidRoomTest, NeverNegative) {
  GidRoom over{4, 9};
  EXPECT_EQ(over.free(), 0);
  EXPECT_EQ(over.pods_fit(), 0);
  EXPECT_EQ(GidRoom{}.pods_fit(), 0);
}

}  // namespace
}  // namespace rdmashare::rdma
