#include "deviceplugin/port_metrics.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/fakenode/fake_node.h"

namespace rdmashare::deviceplugin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRail1[] = R"({resource="x.io/rail1",ibdev="mlx5_0",port="1",netdev="enp11s0f0np0")";

class PortMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = fakenode::FakeNode::Build(fakenode::Walkthrough8Rail(), dir_.Sub("node"));
    ASSERT_TRUE(node.ok()) << node.status();
    node_.emplace(std::move(*node));
    ports_ = {{"x.io/rail1", "mlx5_0", 1, "enp11s0f0np0"},
              {"x.io/both", "mlx5_0", 1, "enp11s0f0np0"},
              {"x.io/both", "mlx5_1", 1, "enp12s0f0np0"}};
    PortMetricsOptions o;
    o.sys_root = node_->sys_root();
    o.min_interval = std::chrono::seconds(1);
    o.now = [this] { return std::chrono::steady_clock::time_point(std::chrono::seconds(now_s_)); };
    collector_ = PortCounterCollector::Register(
        &registry_, [this] { return ports_; }, o);
  }

  std::string Line(const std::string& family, const std::string& labels, const std::string& extra,
                   const std::string& value) {
    return family + labels + "," + extra + "} " + value + "\n";
  }

  rdmashare::testing::TempDir dir_;
  std::optional<fakenode::FakeNode> node_;
  MetricsRegistry registry_;
  std::vector<PortRef> ports_;
  std::atomic<int64_t> now_s_{100};
  std::shared_ptr<PortCounterCollector> collector_;
};

TEST_F(PortMetricsTest, EveryPortOfEveryResourceWithItsLabels) {
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "port_xmit_data", 1000).ok());
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "port_rcv_packets", 5).ok());
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "np_cnp_sent", 9).ok());
  std::string text = registry_.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE rdmashare_rdma_port_data_bytes_total counter\n"));
  EXPECT_THAT(text, HasSubstr(Line("rdmashare_rdma_port_data_bytes_total", kRail1,
                                   "direction=\"tx\"", "4000")));
  EXPECT_THAT(
      text, HasSubstr(Line("rdmashare_rdma_port_packets_total", kRail1, "direction=\"rx\"", "5")));
  EXPECT_THAT(text, HasSubstr(Line("rdmashare_rdma_hw_counter_total", kRail1,
                                   "counter=\"np_cnp_sent\"", "9")));
  // mlx5_0 is in two resources: both series; mlx5_1 only in x.io/both.
  EXPECT_THAT(text, HasSubstr(R"(rdmashare_rdma_hw_counter_total{resource="x.io/both",)"
                              R"(ibdev="mlx5_0",port="1",netdev="enp11s0f0np0",)"
                              R"(counter="np_cnp_sent"} 9)"));
  EXPECT_THAT(text, HasSubstr(R"(resource="x.io/both",ibdev="mlx5_1")"));
  EXPECT_THAT(text, Not(HasSubstr(R"(resource="x.io/rail1",ibdev="mlx5_1")")));
  EXPECT_THAT(text, Not(HasSubstr("lifespan")));
  EXPECT_THAT(text, HasSubstr("rdmashare_rdma_counters_read_seconds "));
}

TEST_F(PortMetricsTest, ReadsAtMostOncePerIntervalAndFollowsTheCounter) {
  registry_.Render();
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "rp_cnp_handled", 42).ok());
  std::string cached = registry_.Render();
  EXPECT_THAT(cached, HasSubstr(Line("rdmashare_rdma_hw_counter_total", kRail1,
                                     "counter=\"rp_cnp_handled\"", "0")));
  now_s_ += 1;
  std::string fresh = registry_.Render();
  EXPECT_THAT(fresh, HasSubstr(Line("rdmashare_rdma_hw_counter_total", kRail1,
                                    "counter=\"rp_cnp_handled\"", "42")));
}

TEST_F(PortMetricsTest, SeriesOfAVanishedHcaOrResourceGo) {
  EXPECT_THAT(registry_.Render(), HasSubstr(R"(ibdev="mlx5_1")"));
  ASSERT_TRUE(node_->RemoveIbDevice("mlx5_1").ok());
  now_s_ += 1;
  EXPECT_THAT(registry_.Render(), Not(HasSubstr(R"(ibdev="mlx5_1")")));
  ports_.resize(1);
  now_s_ += 1;
  EXPECT_THAT(registry_.Render(), Not(HasSubstr(R"(resource="x.io/both")")));
}

TEST_F(PortMetricsTest, AnUnreadableCounterIsLeftOutTheRestStays) {
  ASSERT_TRUE(
      WriteFileAtomic(JoinPath(node_->sys_root(),
                               "class/infiniband/mlx5_0/ports/1/hw_counters/out_of_sequence"),
                      "garbage\n")
          .ok());
  std::string text = registry_.Render();
  EXPECT_THAT(text, Not(HasSubstr(std::string(kRail1) + ",counter=\"out_of_sequence\"")));
  // mlx5_1's own counter of that name is still there.
  EXPECT_THAT(text, HasSubstr("ibdev=\"mlx5_1\",port=\"1\",netdev=\"enp12s0f0np0\","
                              "counter=\"out_of_sequence\"} 0"));
  EXPECT_THAT(text, HasSubstr(Line("rdmashare_rdma_hw_counter_total", kRail1,
                                   "counter=\"packet_seq_err\"", "0")));
}

TEST_F(PortMetricsTest, ScrapesAfterTheCollectorIsGoneSkipIt) {
  registry_.Render();
  collector_.reset();
  ASSERT_TRUE(node_->AddPortCounter("mlx5_0", 1, "np_cnp_sent", 1).ok());
  now_s_ += 5;
  EXPECT_THAT(registry_.Render(), HasSubstr(Line("rdmashare_rdma_hw_counter_total", kRail1,
                                                 "counter=\"np_cnp_sent\"", "0")));
}

TEST_F(PortMetricsTest, ConcurrentScrapesAreSafe) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        now_s_ += 1;
        EXPECT_THAT(registry_.Render(), HasSubstr("rdmashare_rdma_port_packets_total"));
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace
}  // namespace rdmashare::deviceplugin
