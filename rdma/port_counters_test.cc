#include "rdma/port_counters.h"

#include <filesystem>
#include <string>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::rdma {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

class PortCountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = fakenode::FakeNode::Build(fakenode::Walkthrough8Rail(), dir_.Sub("node"));
    ASSERT_TRUE(node.ok()) << node.status();
    node_.emplace(std::move(*node));
  }
  std::string PortFile(const std::string& rel) const {
    return JoinPath(node_->sys_root(), "class/infiniband/mlx5_0/ports/1/" + rel);
  }
  rdmashare::testing::TempDir dir_;
  std::optional<fakenode::FakeNode> node_;
};

TEST_F(PortCountersTest, ReadsPortAndHardwareCounters) {
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "port_xmit_data", 250).ok());
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "port_rcv_packets", 7).ok());
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "np_cnp_sent", 3).ok());
  ASSERT_OK_AND_ASSIGN(PortCounters c, ReadPortCounters(node_->sys_root(), "mlx5_0", 1));
  EXPECT_TRUE(c.has_port_counters);
  EXPECT_EQ(c.xmit_data, 250u);
  EXPECT_EQ(c.xmit_bytes(), 1000u);  // 4-octet words
  EXPECT_EQ(c.rcv_packets, 7u);
  EXPECT_THAT(c.hw, Contains(Pair("np_cnp_sent", 3u)));
  EXPECT_THAT(c.hw, Contains(Pair("local_ack_timeout_err", 0u)));
  // lifespan is a setting (ms), not a counter.
  for (const auto& [name, v] : c.hw) EXPECT_NE(name, "lifespan");
  EXPECT_TRUE(c.problems.empty());
}

TEST_F(PortCountersTest, MissingPortIsNotFoundAndMissingDirectoriesGiveNothing) {
  EXPECT_THAT(ReadPortCounters(node_->sys_root(), "mlx5_0", 2),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such RDMA port")));
  std::filesystem::remove_all(PortFile("counters"));
  std::filesystem::remove_all(PortFile("hw_counters"));
  ASSERT_OK_AND_ASSIGN(PortCounters c, ReadPortCounters(node_->sys_root(), "mlx5_0", 1));
  EXPECT_FALSE(c.has_port_counters);
  EXPECT_TRUE(c.hw.empty());
}

TEST_F(PortCountersTest, GarbageValuesAreNamedAndLeftOut) {
  struct Case {
    std::string file, content, problem;
  };
  for (const Case& k : std::vector<Case>{
           {"hw_counters/out_of_sequence", "-1", "'-1' is not a counter"},
           {"hw_counters/packet_seq_err", "12abc", "'12abc' is not a counter"},
           {"hw_counters/rp_cnp_handled", "99999999999999999999", "overflows 64 bits"},
           {"counters/port_rcv_data", "", "'' is not a counter"},
       }) {
    ASSERT_TRUE(WriteFileAtomic(PortFile(k.file), k.content + "\n").ok());
    ASSERT_OK_AND_ASSIGN(PortCounters c, ReadPortCounters(node_->sys_root(), "mlx5_0", 1));
    EXPECT_THAT(c.problems, Contains(HasSubstr(k.problem))) << k.file;
    std::string name = k.file.substr(k.file.find('/') + 1);
    for (const auto& [n, v] : c.hw) EXPECT_NE(n, name) << k.file;
    ASSERT_TRUE(WriteFileAtomic(PortFile(k.file), "0\n").ok());
  }
}

TEST_F(PortCountersTest, HardwareCountersAreCappedAndOddNamesSkipped) {
  for (size_t i = 0; i < kMaxHwCounters + 20; ++i) {
    ASSERT_TRUE(WriteFileAtomic(PortFile(fmt::format("hw_counters/extra_{:04}", i)), "1\n").ok());
  }
  ASSERT_TRUE(WriteFileAtomic(PortFile("hw_counters/Bad-Name"), "1\n").ok());
  ASSERT_OK_AND_ASSIGN(PortCounters c, ReadPortCounters(node_->sys_root(), "mlx5_0", 1));
  EXPECT_EQ(c.hw.size(), kMaxHwCounters);
  EXPECT_THAT(c.problems, Contains(HasSubstr("more than 128 counters, rest ignored")));
  EXPECT_THAT(c.hw, Not(Contains(Pair("Bad-Name", 1u))));
}

}  // namespace
}  // namespace rdmashare::rdma
