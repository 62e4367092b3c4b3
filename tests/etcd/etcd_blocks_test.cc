// Per-node address blocks of the etcd store, against a real etcd on loopback: claiming, filling
// and releasing blocks, nodes racing for the last block, a node killed mid-claim, etcd dying
// between a claim and the reservation, records from before the index, nodes without blocks in
// the same pool, and what `rdmashare pool` reports.
#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cni/ipam/allocator.h"
#include "cni/ipam/blocks.h"
#include "cni/ipam/etcd_client.h"
#include "cni/ipam/etcd_store.h"
#include "cni/ipam/ipam.h"
#include "cni/protocol/delegate.h"
#include "cni/protocol/error.h"
#include "common/failpoint.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::EtcdCluster;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kPrefix[] = "/blk";
constexpr char kPool[] = "rail1";

class EtcdBlocksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd_.ok()) << "etcd did not start";
    EtcdOptions o;
    o.endpoints = etcd_.Endpoints();
    o.request_timeout = std::chrono::milliseconds(3000);
    auto c = EtcdClient::Create(o);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  // The ipam config of `node`: pool `ips` of 10.30.0.0/24, blocks of `block_size`.
  json Ipam(const std::string& node, const std::string& ips, int block_size = 16,
            int release_seconds = 300) {
    json store = {{"type", "etcd"},
                  {"endpoints", etcd_.Endpoints()},
                  {"prefix", kPrefix},
                  {"dialTimeoutMs", 300},
                  {"requestTimeoutMs", 3000},
                  {"blockSize", block_size},
                  {"blockReleaseSeconds", release_seconds}};
    return {{"type", "rdmashare-ipam"},
            {"subnet", "10.30.0.0/24"},
            {"ips", json::array({ips})},
            {"dataDir", dir_.Sub("node-" + node)},
            {"nodeName", node},
            {"pool", kPool},
            {"store", store}};
  }

  static IpamArgs Args(const json& ipam, const std::string& id) {
    IpamArgs a;
    a.container_id = id;
    a.ifname = "net1";
    a.network_name = "gpu1-net11";
    a.netns = "/var/run/netns/" + id;
    a.ipam_conf = ipam;
    return a;
  }

  std::string Add(const json& ipam, const std::string& id) {
    auto r = IpamAdd(Args(ipam, id));
    EXPECT_TRUE(r.ok()) << id << ": " << r.status();
    if (!r.ok() || r->ips.empty()) return "";
    std::string a = r->ips[0].address.ToString();
    return a.substr(0, a.find('/'));
  }

  // block cidr -> claim value, as stored.
  std::map<std::string, json> Blocks() {
    std::map<std::string, json> out;
    std::string prefix = fmt::format("{}/pools/{}/blocks/", kPrefix, kPool);
    auto kvs = client_->RangePrefix(prefix);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    for (const KeyValue& kv : kvs.value_or(std::vector<KeyValue>())) {
      out[kv.key.substr(prefix.size())] = json::parse(kv.value, nullptr, false);
    }
    return out;
  }

  std::map<std::string, json> Records() {
    std::map<std::string, json> out;
    std::string prefix = fmt::format("{}/pools/{}/ips/", kPrefix, kPool);
    auto kvs = client_->RangePrefix(prefix);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    for (const KeyValue& kv : kvs.value_or(std::vector<KeyValue>())) {
      out[kv.key.substr(prefix.size())] = json::parse(kv.value, nullptr, false);
    }
    return out;
  }

  std::set<std::string> IndexOf(const std::string& node) {
    std::set<std::string> out;
    std::string prefix = fmt::format("{}/pools/{}/nodes/{}/ips/", kPrefix, kPool, node);
    auto kvs = client_->RangePrefix(prefix);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    for (const KeyValue& kv : kvs.value_or(std::vector<KeyValue>())) {
      out.insert(kv.key.substr(prefix.size()));
    }
    return out;
  }

  EtcdCluster etcd_{1};
  TempDir dir_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdBlocksTest, ANodeClaimsABlockAndAllocatesInsideIt) {
  json a = Ipam("a", "10.30.0.1-10.30.0.200");
  json b = Ipam("b", "10.30.0.1-10.30.0.200");
  EXPECT_EQ(Add(a, "a1"), "10.30.0.1");
  EXPECT_EQ(Add(b, "b1"), "10.30.0.16");  // b's own block, not a's next address
  EXPECT_EQ(Add(a, "a2"), "10.30.0.2");
  EXPECT_EQ(Add(b, "b2"), "10.30.0.17");
  std::map<std::string, json> blocks = Blocks();
  ASSERT_THAT(blocks, SizeIs(2));
  EXPECT_EQ(blocks["10.30.0.0_28"]["node"], "a");
  EXPECT_EQ(blocks["10.30.0.16_28"]["node"], "b");
  EXPECT_EQ(blocks["10.30.0.0_28"]["emptySince"], 0);
  // Each record has its copy in its node's index.
  EXPECT_EQ(IndexOf("a"), (std::set<std::string>{"10.30.0.1", "10.30.0.2"}));
  EXPECT_EQ(IndexOf("b"), (std::set<std::string>{"10.30.0.16", "10.30.0.17"}));
  // A repeated ADD returns the held address (found through the index) and claims nothing.
  EXPECT_EQ(Add(a, "a1"), "10.30.0.1");
  EXPECT_THAT(Blocks(), SizeIs(2));
}

TEST_F(EtcdBlocksTest, AFullBlockMakesTheNodeClaimTheNextFreeOne) {
  json a = Ipam("a", "10.30.0.1-10.30.0.40", /*block_size=*/4);
  json b = Ipam("b", "10.30.0.1-10.30.0.40", 4);
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) got.push_back(Add(a, fmt::format("a{}", i)));
  EXPECT_EQ(got, (std::vector<std::string>{"10.30.0.1", "10.30.0.2", "10.30.0.3"}));
  EXPECT_EQ(Add(b, "b0"), "10.30.0.4");
  // a's block 10.30.0.0/30 is full: its next address comes from the next free block.
  EXPECT_EQ(Add(a, "a3"), "10.30.0.8");
  std::map<std::string, json> blocks = Blocks();
  EXPECT_EQ(blocks["10.30.0.0_30"]["node"], "a");
  EXPECT_EQ(blocks["10.30.0.4_30"]["node"], "b");
  EXPECT_EQ(blocks["10.30.0.8_30"]["node"], "a");
}

TEST_F(EtcdBlocksTest, AnEmptyBlockIsMarkedThenReleasedAfterTheGracePeriod) {
  json a = Ipam("a", "10.30.0.1-10.30.0.40", 4, /*release_seconds=*/1);
  for (int i = 0; i < 4; ++i) Add(a, fmt::format("a{}", i));  // .1-.3, then .4 in 10.30.0.4/30
  ASSERT_THAT(Blocks(), SizeIs(2));
  ASSERT_OK(IpamDel(Args(a, "a3")));
  std::map<std::string, json> blocks = Blocks();
  ASSERT_THAT(blocks, SizeIs(2));
  EXPECT_GT(blocks["10.30.0.4_30"]["emptySince"].get<int64_t>(), 0);  // marked, still claimed
  EXPECT_EQ(blocks["10.30.0.0_30"]["emptySince"], 0);
  // Used again within the grace period: the mark is cleared.
  EXPECT_EQ(Add(a, "a4"), "10.30.0.5");
  EXPECT_EQ(Blocks()["10.30.0.4_30"]["emptySince"], 0);
  ASSERT_OK(IpamDel(Args(a, "a4")));
  ASSERT_GT(Blocks()["10.30.0.4_30"]["emptySince"].get<int64_t>(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  // The next DEL of the node tends its blocks: the one empty for longer than 1 s goes.
  ASSERT_OK(IpamDel(Args(a, "a0")));
  blocks = Blocks();
  EXPECT_EQ(blocks.count("10.30.0.4_30"), 0u);
  EXPECT_EQ(blocks["10.30.0.0_30"]["node"], "a");  // still holds a1, a2
}

TEST_F(EtcdBlocksTest, EightNodesRacingForTheLastBlockGetOneWinnerAndDistinctAddresses) {
  // Two blocks of 16: "z" holds the first; eight nodes race for the second.
  const std::string ips = "10.30.0.1-10.30.0.30";
  ASSERT_EQ(Add(Ipam("z", ips), "z0"), "10.30.0.1");
  constexpr int kNodes = 8;
  std::vector<std::string> got(kNodes);
  std::vector<absl::Status> errors(kNodes);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < kNodes; ++n) {
    threads.emplace_back([&, n] {
      json conf = Ipam(fmt::format("n{}", n), ips);
      ++ready;
      while (ready.load() < kNodes) std::this_thread::yield();
      auto r = IpamAdd(Args(conf, fmt::format("c{}", n)));
      if (!r.ok()) {
        errors[n] = r.status();
        return;
      }
      std::string a = r->ips[0].address.ToString();
      got[n] = a.substr(0, a.find('/'));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct;
  for (int n = 0; n < kNodes; ++n) {
    ASSERT_TRUE(errors[n].ok()) << "n" << n << ": " << errors[n];
    distinct.insert(got[n]);
  }
  EXPECT_THAT(distinct, SizeIs(kNodes));
  std::map<std::string, json> blocks = Blocks();
  ASSERT_THAT(blocks, SizeIs(2));
  EXPECT_EQ(blocks["10.30.0.0_28"]["node"], "z");
  std::string winner = blocks["10.30.0.16_28"]["node"];
  EXPECT_THAT(winner, ::testing::StartsWith("n"));
  EXPECT_THAT(Records(), SizeIs(kNodes + 1));
  // `rdmashare pool` says who borrowed: the seven losers.
  auto report = IpamPoolReport(Args(Ipam("z", ips), "report"));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_THAT(*report, SizeIs(1));
  EXPECT_THAT((*report)[0].blocks, SizeIs(2));
  EXPECT_THAT((*report)[0].borrowed, SizeIs(kNodes - 1));
  for (const Reservation& r : (*report)[0].holders) {
    EXPECT_EQ((*report)[0].borrowed.count(r.ip) != 0, r.node != "z" && r.node != winner) << r.ip;
  }
}

TEST_F(EtcdBlocksTest, ANodeKilledMidClaimKeepsTheBlockAndUsesItOnItsNextAdd) {
  if (!FailpointsCompiledIn()) GTEST_SKIP() << "built with RDMASHARE_FAILPOINTS=OFF";
  json a = Ipam("a", "10.30.0.1-10.30.0.200");
  json conf = {{"cniVersion", "1.0.0"}, {"name", "gpu1-net11"}, {"type", "x"}, {"ipam", a}};
  std::map<std::string, std::string> env = {
      {"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "a1"},
      {"CNI_IFNAME", "net1"}, {"CNI_NETNS", "/var/run/netns/a1"},
      {"CNI_PATH", "/x"},     {kFailpointEnv, "ipam.block.after_claim"}};
  auto run = ExecPlugin(RDMASHARE_IPAM_BIN, env, conf.dump(), std::chrono::seconds(30));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 128 + SIGKILL) << run->stdout_data;
  // The claim was made, no address was.
  EXPECT_EQ(Blocks()["10.30.0.0_28"]["node"], "a");
  EXPECT_THAT(Records(), SizeIs(0));
  // Another node does not take a's block; a itself uses it without claiming another.
  EXPECT_EQ(Add(Ipam("b", "10.30.0.1-10.30.0.200"), "b1"), "10.30.0.16");
  EXPECT_EQ(Add(a, "a1"), "10.30.0.1");
  EXPECT_THAT(Blocks(), SizeIs(2));
  // A node that never comes back: `pool release --node` frees its block and addresses.
  ASSERT_OK_AND_ASSIGN(NodeRelease released, ReleaseNode(client_.get(), kPrefix, kPool, "a"));
  EXPECT_EQ(released.addresses, 1);
  EXPECT_EQ(released.blocks, 1);
  EXPECT_EQ(Blocks().count("10.30.0.0_28"), 0u);
  EXPECT_THAT(IndexOf("a"), SizeIs(0));
  EXPECT_EQ(Add(Ipam("c", "10.30.0.1-10.30.0.200"), "c1"), "10.30.0.1");
}

// An IpamStore that kills etcd right after a block claim succeeds.
class KillEtcdAfterClaim : public EtcdStore {
 public:
  KillEtcdAfterClaim(EtcdClient* client, const std::string& lock_dir, EtcdCluster* etcd)
      : EtcdStore(client, kPrefix, "a", "gpu1-net11", lock_dir, 16, 300), etcd_(etcd) {}
  absl::StatusOr<std::optional<BlockClaim>> ClaimBlock(const std::string& pool,
                                                       const IpPrefix& cidr) override {
    auto claim = EtcdStore::ClaimBlock(pool, cidr);
    etcd_->Kill(0);
    return claim;
  }

 private:
  EtcdCluster* etcd_;
};

TEST_F(EtcdBlocksTest, EtcdDownBetweenClaimAndReservationIsCode11AndLosesNothing) {
  json a = Ipam("a", "10.30.0.1-10.30.0.200");
  auto conf = ParseIpamConfig(a);
  ASSERT_TRUE(conf.ok()) << conf.status();
  EtcdOptions o;
  o.endpoints = etcd_.Endpoints();
  o.dial_timeout = std::chrono::milliseconds(300);
  o.request_timeout = std::chrono::milliseconds(1500);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EtcdClient> client, EtcdClient::Create(o));
  KillEtcdAfterClaim store(client.get(), dir_.Sub("node-a"), &etcd_);
  Allocator alloc(&store, [] { return int64_t{1000}; });
  IpamArgs args = Args(a, "a1");
  args.network_name = kPool;
  auto r = alloc.Add(args, *conf);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kTryAgainLater) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("etcd unreachable"));
  ASSERT_TRUE(etcd_.Restart(0));
  // The claim survived, no address was reserved; the retried ADD fills the claimed block.
  EXPECT_EQ(Blocks()["10.30.0.0_28"]["node"], "a");
  EXPECT_THAT(Records(), SizeIs(0));
  EXPECT_EQ(Add(a, "a1"), "10.30.0.1");
  EXPECT_THAT(Blocks(), SizeIs(1));
  EXPECT_THAT(Records(), SizeIs(1));
}

TEST_F(EtcdBlocksTest, RecordsFromBeforeTheIndexAreIndexedOnceAndReleasedByDel) {
  // What an older rdmashare-ipam (no index, no blocks) left: a's record for container old.
  json rec = {
      {"node", "a"},   {"network", "gpu1-net11"}, {"containerID", "old"}, {"ifname", "net1"},
      {"netns", "/x"}, {"podNamespace", ""},      {"podName", ""},        {"podUID", ""}};
  ASSERT_OK(
      client_->Put(fmt::format("{}/pools/{}/ips/10.30.0.77", kPrefix, kPool), rec.dump()).status());
  json a = Ipam("a", "10.30.0.1-10.30.0.200");
  // The repeated ADD of the old container finds its address (copied into a's index first).
  EXPECT_EQ(Add(a, "old"), "10.30.0.77");
  EXPECT_EQ(IndexOf("a"), (std::set<std::string>{"10.30.0.77"}));
  EXPECT_EQ(Add(a, "new"), "10.30.0.1");
  ASSERT_OK(IpamDel(Args(a, "old")));
  EXPECT_EQ(Records().count("10.30.0.77"), 0u);
  EXPECT_EQ(IndexOf("a"), (std::set<std::string>{"10.30.0.1"}));
}

TEST_F(EtcdBlocksTest, NodesWithAndWithoutBlocksShareOnePoolWithoutCollisions) {
  const std::string ips = "10.30.0.1-10.30.0.120";
  std::mutex mu;
  std::set<std::string> seen;
  std::vector<std::string> dup;
  std::vector<std::thread> threads;
  for (int n = 0; n < 4; ++n) {
    threads.emplace_back([&, n] {
      json conf = Ipam(fmt::format("n{}", n), ips, n % 2 == 0 ? 0 : 16);
      for (int i = 0; i < 20; ++i) {
        auto r = IpamAdd(Args(conf, fmt::format("n{}c{}", n, i)));
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) {
          dup.push_back(std::string(r.status().message()));
          continue;
        }
        if (!seen.insert(r->ips[0].address.ToString()).second)
          dup.push_back(r->ips[0].address.ToString());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(dup, SizeIs(0)) << (dup.empty() ? "" : dup[0]);
  EXPECT_THAT(seen, SizeIs(80));
  EXPECT_THAT(Records(), SizeIs(80));
}

TEST_F(EtcdBlocksTest, UnreadableBlockClaimsCountAsTakenAndAreReported) {
  ASSERT_OK(
      client_->Put(fmt::format("{}/pools/{}/blocks/10.30.0.0_28", kPrefix, kPool), "{not json")
          .status());
  ASSERT_OK(client_->Put(fmt::format("{}/pools/{}/blocks/garbage", kPrefix, kPool), "{}").status());
  json a = Ipam("a", "10.30.0.1-10.30.0.200");
  EXPECT_EQ(Add(a, "a1"), "10.30.0.16");  // never inside the block nobody can read
  auto report = IpamPoolReport(Args(a, "report"));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT((*report)[0].block_errors, SizeIs(2));
  EXPECT_THAT((*report)[0].block_errors[0], HasSubstr("10.30.0.0_28"));
  // Releasing node a leaves them alone.
  ASSERT_OK_AND_ASSIGN(NodeRelease released, ReleaseNode(client_.get(), kPrefix, kPool, "a"));
  EXPECT_EQ(released.blocks, 1);
  EXPECT_THAT(Blocks(), SizeIs(2));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
