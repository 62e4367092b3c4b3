// EtcdClient and EtcdStore against a real etcd (Debian etcd-server) on a loopback port.
#include "cni/ipam/etcd_store.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "cni/ipam/etcd_client.h"
#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::EtcdCluster;
using ::rdmashare::testing::FreeLoopbackPort;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::unique_ptr<EtcdClient> Client(const std::vector<std::string>& endpoints,
                                   int request_ms = 3000) {
  EtcdOptions o;
  o.endpoints = endpoints;
  o.dial_timeout = std::chrono::milliseconds(500);
  o.request_timeout = std::chrono::milliseconds(request_ms);
  auto c = EtcdClient::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd_.ok()) << "etcd did not start";
    client_ = Client(etcd_.Endpoints());
    ASSERT_NE(client_, nullptr);
  }
  EtcdStore Store(const std::string& node, const std::string& network = "net1") {
    return EtcdStore(client_.get(), "/t", node, network, locks_.path());
  }
  Reservation Owner(const std::string& ip, const std::string& id) {
    Reservation r;
    r.ip = ip;
    r.container_id = id;
    r.ifname = "net1";
    r.netns = "/var/run/netns/" + id;
    r.pod_namespace = "ns";
    r.pod_name = "pod-" + id;
    r.pod_uid = "uid-" + id;
    return r;
  }

  EtcdCluster etcd_;
  TempDir locks_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdStoreTest, CreateIfAbsentCreatesOnce) {
  ASSERT_OK_AND_ASSIGN(auto first, client_->CreateIfAbsent("/t/k", "a"));
  ASSERT_TRUE(first.has_value());
  ASSERT_OK_AND_ASSIGN(auto second, client_->CreateIfAbsent("/t/k", "b"));
  EXPECT_FALSE(second.has_value());
  ASSERT_OK_AND_ASSIGN(auto kv, client_->Get("/t/k"));
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "a");
}

TEST_F(EtcdStoreTest, CreateIfAbsentOfSameValueIsTreatedAsOurs) {
  // A retried request whose first attempt was applied must not look like a lost race.
  ASSERT_OK_AND_ASSIGN(auto first, client_->CreateIfAbsent("/t/k", "same"));
  ASSERT_OK_AND_ASSIGN(auto again, client_->CreateIfAbsent("/t/k", "same"));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *first);
}

TEST_F(EtcdStoreTest, DeleteIfUnchangedRefusesChangedRecord) {
  ASSERT_OK_AND_ASSIGN(auto rev, client_->CreateIfAbsent("/t/k", "a"));
  ASSERT_OK(client_->Put("/t/k", "b").status());
  ASSERT_OK_AND_ASSIGN(bool deleted, client_->DeleteIfUnchanged("/t/k", *rev));
  EXPECT_FALSE(deleted);
  ASSERT_OK_AND_ASSIGN(auto kv, client_->Get("/t/k"));
  ASSERT_TRUE(kv.has_value());
  ASSERT_OK_AND_ASSIGN(deleted, client_->DeleteIfUnchanged("/t/k", kv->mod_revision));
  EXPECT_TRUE(deleted);
  ASSERT_OK_AND_ASSIGN(kv, client_->Get("/t/k"));
  EXPECT_FALSE(kv.has_value());
}

TEST_F(EtcdStoreTest, RangePrefixReturnsOnlyKeysUnderPrefix) {
  for (const char* k : {"/t/a/1", "/t/a/2", "/t/a0", "/t/b/1"})
    ASSERT_OK(client_->Put(k, k).status());
  ASSERT_OK_AND_ASSIGN(auto kvs, client_->RangePrefix("/t/a/"));
  ASSERT_THAT(kvs, SizeIs(2));
  EXPECT_EQ(kvs[0].key, "/t/a/1");
  EXPECT_EQ(kvs[1].key, "/t/a/2");
  EXPECT_EQ(kvs[1].value, "/t/a/2");
}

TEST_F(EtcdStoreTest, BinaryValuesSurviveBase64) {
  std::string value("\0\xff\r\n{}\"", 7);
  ASSERT_OK(client_->Put("/t/bin", value).status());
  ASSERT_OK_AND_ASSIGN(auto kv, client_->Get("/t/bin"));
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, value);
}

TEST_F(EtcdStoreTest, DeadFirstEndpointFallsThroughToLiveOne) {
  std::vector<std::string> eps = {fmt::format("127.0.0.1:{}", FreeLoopbackPort())};
  eps.push_back(etcd_.Endpoints()[0]);
  auto c = Client(eps);
  ASSERT_OK(c->Put("/t/x", "1").status());
  ASSERT_OK_AND_ASSIGN(auto kv, c->Get("/t/x"));
  EXPECT_TRUE(kv.has_value());
}

TEST_F(EtcdStoreTest, ReserveTakesAnAddressOnlyOnceAcrossNodes) {
  EtcdStore a = Store("node-a"), b = Store("node-b");
  ASSERT_OK_AND_ASSIGN(bool got_a, a.Reserve("p", Owner("10.0.0.5", "ca")));
  ASSERT_OK_AND_ASSIGN(bool got_b, b.Reserve("p", Owner("10.0.0.5", "cb")));
  EXPECT_TRUE(got_a);
  EXPECT_FALSE(got_b);
}

TEST_F(EtcdStoreTest, ListRoundTripsMetadataAndMarksOtherNodesForeign) {
  EtcdStore a = Store("node-a"), b = Store("node-b");
  ASSERT_OK(a.Reserve("p", Owner("10.0.0.5", "ca")).status());
  ASSERT_OK(b.Reserve("p", Owner("10.0.0.6", "cb")).status());
  ASSERT_OK_AND_ASSIGN(auto list, a.List("p"));
  ASSERT_THAT(list, SizeIs(2));
  Reservation want = Owner("10.0.0.5", "ca");
  want.node = "node-a";
  want.owner_network = "net1";
  EXPECT_EQ(list[0], want);
  EXPECT_TRUE(list[1].foreign);
  EXPECT_EQ(list[1].node, "node-b");
  EXPECT_FALSE(list[1].OwnedBy("cb", "net1"));
}

TEST_F(EtcdStoreTest, OtherNetworkSharingThePoolIsForeign) {
  EtcdStore a = Store("node-a", "net1"), other = Store("node-a", "net2");
  ASSERT_OK(other.Reserve("p", Owner("10.0.0.7", "c7")).status());
  ASSERT_OK_AND_ASSIGN(auto list, a.List("p"));
  ASSERT_THAT(list, SizeIs(1));
  EXPECT_TRUE(list[0].foreign);
}

TEST_F(EtcdStoreTest, ReleaseRefusesAnotherNodesRecord) {
  EtcdStore a = Store("node-a"), b = Store("node-b");
  ASSERT_OK(b.Reserve("p", Owner("10.0.0.6", "cb")).status());
  EXPECT_THAT(a.Release("p", "10.0.0.6"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("belongs to node node-b")));
  ASSERT_OK_AND_ASSIGN(auto list, b.List("p"));
  EXPECT_THAT(list, SizeIs(1));
}

TEST_F(EtcdStoreTest, ReleaseKeepsRecordThatChangedHandsSinceItWasRead) {
  EtcdStore a = Store("node-a");
  ASSERT_OK(a.Reserve("p", Owner("10.0.0.5", "ca")).status());
  ASSERT_OK(
      client_->Put(a.IpKey("p", "10.0.0.5"), EncodeEtcdRecord(Owner("10.0.0.5", "someone-else")))
          .status());
  ASSERT_OK(a.Release("p", "10.0.0.5"));
  ASSERT_OK_AND_ASSIGN(auto kv, client_->Get(a.IpKey("p", "10.0.0.5")));
  ASSERT_TRUE(kv.has_value());
  EXPECT_THAT(kv->value, HasSubstr("someone-else"));
}

TEST_F(EtcdStoreTest, ReleaseOfAbsentAddressIsOk) {
  EtcdStore a = Store("node-a");
  EXPECT_OK(a.Release("p", "10.0.0.99"));
}

TEST_F(EtcdStoreTest, LastReservedIsPerNode) {
  EtcdStore a = Store("node-a"), b = Store("node-b");
  ASSERT_OK(a.SetLastReserved("p", 0, "10.0.0.9"));
  ASSERT_OK_AND_ASSIGN(std::string la, a.LastReserved("p", 0));
  ASSERT_OK_AND_ASSIGN(std::string lb, b.LastReserved("p", 0));
  EXPECT_EQ(la, "10.0.0.9");
  EXPECT_EQ(lb, "");
}

TEST_F(EtcdStoreTest, MalformedRecordIsReportedAsTaken) {
  EtcdStore a = Store("node-a");
  ASSERT_OK(client_->Put(a.IpKey("p", "10.0.0.3"), "not json").status());
  ASSERT_OK_AND_ASSIGN(auto list, a.List("p"));
  ASSERT_THAT(list, SizeIs(1));
  EXPECT_THAT(list[0].error, HasSubstr("is not a reservation"));
}

TEST_F(EtcdStoreTest, ReleaseNodeRemovesOnlyThatNodesRecords) {
  EtcdStore a = Store("node-a"), b = Store("node-b");
  ASSERT_OK(a.Reserve("p", Owner("10.0.0.1", "c1")).status());
  ASSERT_OK(a.Reserve("p", Owner("10.0.0.2", "c2")).status());
  ASSERT_OK(b.Reserve("p", Owner("10.0.0.3", "c3")).status());
  ASSERT_OK(a.Reserve("other", Owner("10.0.0.4", "c4")).status());
  ASSERT_OK_AND_ASSIGN(NodeRelease released, ReleaseNode(client_.get(), "/t", "p", "node-a"));
  EXPECT_EQ(released.addresses, 2);
  ASSERT_OK_AND_ASSIGN(auto left, b.List("p"));
  ASSERT_THAT(left, SizeIs(1));
  EXPECT_EQ(left[0].container_id, "c3");
  ASSERT_OK_AND_ASSIGN(auto other, a.List("other"));
  EXPECT_THAT(other, SizeIs(1));
}

TEST(EtcdClientTest, UnreachableEndpointsGiveCode11NamingEachEndpoint) {
  std::string e1 = fmt::format("127.0.0.1:{}", FreeLoopbackPort());
  std::string e2 = fmt::format("http://127.0.0.1:{}", FreeLoopbackPort());
  auto c = Client({e1, e2}, 2000);
  auto start = std::chrono::steady_clock::now();
  auto got = c->Get("/k");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(got.status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr(e1)));
  EXPECT_THAT(got.status().message(), HasSubstr(e2));
  EXPECT_EQ(CniCode(got.status()), kTryAgainLater);
  EXPECT_TRUE(IsEtcdUnreachable(got.status()));
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000));
}

TEST(EtcdClientTest, SilentServerTimesOutWithinRequestTimeout) {
  // A listener that never answers: connects succeed, requests time out.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string ep = fmt::format("127.0.0.1:{}", ntohs(a.sin_port));
  auto c = Client({ep}, 600);
  auto start = std::chrono::steady_clock::now();
  auto got = c->Get("/k");
  auto elapsed = std::chrono::steady_clock::now() - start;
  close(fd);
  EXPECT_THAT(got.status(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr(ep)));
  EXPECT_TRUE(IsEtcdUnreachable(got.status()));
  EXPECT_LT(elapsed, std::chrono::milliseconds(1600));
}

}  // namespace
}  // namespace rdmashare::cni::ipam
