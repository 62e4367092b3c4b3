#include "cni/ipam/allocator.h"

#include <atomic>
#include <set>
#include <thread>

#include "cni/ipam/fake_store.h"
#include "cni/ipam/local_store.h"
#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

// An IPAM result address with its gateway.
IpConfig Ipc(const std::string& cidr, const std::string& gw) {
  return IpConfig{*IpPrefix::Parse(cidr), *IpAddr::Parse(gw), std::nullopt};
}

// A route with its next hop.
Route Rt(const std::string& dst, const std::string& gw) {
  Route r;
  r.dst = *IpPrefix::Parse(dst);
  r.gw = *IpAddr::Parse(gw);
  return r;
}

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

IpamArgs Args(const std::string& id, const std::string& ifname = "net1",
              const std::string& network = "rail1") {
  IpamArgs a;
  a.container_id = id;
  a.ifname = ifname;
  a.network_name = network;
  a.netns = "/var/run/netns/" + id;
  return a;
}

IpamConfig Conf(const std::string& text) {
  auto conf = ParseIpamConfig(json::parse(text));
  EXPECT_TRUE(conf.ok()) << conf.status();
  return *conf;
}

const char kSmallPool[] =
    R"({"subnet":"172.16.11.0/24","ips":["172.16.11.1-172.16.11.3"],"gateway":"172.16.11.254"})";

class AllocatorTest : public ::testing::Test {
 protected:
  std::string AddIp(const IpamArgs& args, const IpamConfig& conf) {
    auto r = alloc_.Add(args, conf);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->ips.empty()) return "";
    return r->ips[0].address.ToString();
  }

  FakeStore store_;
  int64_t now_ = 1000;
  Allocator alloc_{&store_, [this] { return now_; }};
};

TEST_F(AllocatorTest, AllocatesRoundRobinFromLastReserved) {
  IpamConfig conf = Conf(kSmallPool);
  EXPECT_EQ(AddIp(Args("a"), conf), "172.16.11.1/24");
  EXPECT_EQ(AddIp(Args("b"), conf), "172.16.11.2/24");
  ASSERT_OK(alloc_.Del(Args("a"), conf));
  // host-local order: continue after the last reserved address, wrap around afterwards.
  EXPECT_EQ(AddIp(Args("c"), conf), "172.16.11.3/24");
  EXPECT_EQ(AddIp(Args("d"), conf), "172.16.11.1/24");
}

TEST_F(AllocatorTest, ResultCarriesGatewayRoutesAndNoInterface) {
  IpamConfig conf = Conf(
      R"({"subnet":"172.16.11.0/24","ips":["172.16.11.10"],"gateway":"172.16.11.254",
          "routes":[{"dst":"10.0.0.0/8","gw":"172.16.11.254"}]})");
  ASSERT_OK_AND_ASSIGN(Result r, alloc_.Add(Args("a"), conf));
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0], Ipc("172.16.11.10/24", "172.16.11.254"));
  EXPECT_THAT(r.routes, ElementsAre(Rt("10.0.0.0/8", "172.16.11.254")));
  EXPECT_TRUE(r.interfaces.empty());
}

TEST_F(AllocatorTest, SkipsNetworkGatewayAndExcludedAddresses) {
  IpamConfig conf =
      Conf(R"({"subnet":"10.9.0.0/29","gateway":"10.9.0.1","excludeIPs":["10.9.0.2-10.9.0.3"]})");
  EXPECT_EQ(AddIp(Args("a"), conf), "10.9.0.4/29");
  EXPECT_EQ(AddIp(Args("b"), conf), "10.9.0.5/29");
  EXPECT_EQ(AddIp(Args("c"), conf), "10.9.0.6/29");
  auto full = alloc_.Add(Args("d"), conf);
  EXPECT_EQ(CniCode(full.status()), kPoolExhausted);
}

TEST_F(AllocatorTest, ExhaustionIsCode100NamingNetworkAndRange) {
  IpamConfig conf = Conf(kSmallPool);
  for (const char* id : {"a", "b", "c"}) AddIp(Args(id), conf);
  auto r = alloc_.Add(Args("d"), conf);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kPoolExhausted);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("network rail1: no free address left in pool 172.16.11.0/24 "
                        "172.16.11.1-172.16.11.3"));
}

TEST_F(AllocatorTest, AddTwiceForSameOwnerReturnsSameAddress) {
  IpamConfig conf = Conf(kSmallPool);
  std::string first = AddIp(Args("a"), conf);
  int reserves = store_.reserve_calls();
  EXPECT_EQ(AddIp(Args("a"), conf), first);
  EXPECT_EQ(store_.reserve_calls(), reserves);
}

TEST_F(AllocatorTest, AddReportsOnlyTheAddressesThisCallReserved) {
  IpamConfig conf = Conf(kSmallPool);
  std::vector<std::string> reserved = {"stale"};
  ASSERT_OK_AND_ASSIGN(Result first, alloc_.Add(Args("a"), conf, &reserved));
  EXPECT_THAT(reserved, ElementsAre("172.16.11.1"));
  // The repeated ADD gets the same lease but did not create it.
  ASSERT_OK_AND_ASSIGN(Result again, alloc_.Add(Args("a"), conf, &reserved));
  EXPECT_EQ(again.ips, first.ips);
  EXPECT_TRUE(reserved.empty());
}

TEST_F(AllocatorTest, ReleaseOfNothingKeepsTheLeaseAnEarlierAddMade) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a"), conf);
  std::vector<std::string> reserved;
  ASSERT_OK(alloc_.Add(Args("a"), conf, &reserved).status());
  // The undo of the repeated ADD: it reserved nothing, so nothing goes.
  ASSERT_OK(alloc_.Release(Args("a"), conf, reserved));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].ip, "172.16.11.1");
}

TEST_F(AllocatorTest, ReleaseFreesOnlyListedAddressesOfThatOwner) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a", "net1"), conf);  // .1
  AddIp(Args("b", "net1"), conf);  // .2
  // .2 is b's: a's undo cannot take it even if it names it.
  ASSERT_OK(alloc_.Release(Args("a", "net1"), conf, {"172.16.11.1", "172.16.11.2"}));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].ip, "172.16.11.2");
  EXPECT_EQ(all[0].container_id, "b");
}

TEST_F(AllocatorTest, SameContainerOtherIfnameGetsOtherAddress) {
  IpamConfig conf = Conf(kSmallPool);
  EXPECT_NE(AddIp(Args("a", "net1"), conf), AddIp(Args("a", "net2"), conf));
}

TEST_F(AllocatorTest, DelTwiceAndDelOfUnknownOwnerSucceed) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a"), conf);
  EXPECT_OK(alloc_.Del(Args("a"), conf));
  EXPECT_OK(alloc_.Del(Args("a"), conf));
  EXPECT_OK(alloc_.Del(Args("never"), conf));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  EXPECT_TRUE(all.empty());
}

TEST_F(AllocatorTest, DelReleasesOnlyThatOwner) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a", "net1"), conf);
  AddIp(Args("a", "net2"), conf);
  ASSERT_OK(alloc_.Del(Args("a", "net1"), conf));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].ifname, "net2");
}

TEST_F(AllocatorTest, DualStackPoolsGiveOneAddressEach) {
  IpamConfig conf = Conf(R"({"pools":[
    {"subnet":"172.16.11.0/24","ips":["172.16.11.10-172.16.11.20"],"gateway":"172.16.11.254"},
    {"subnet":"fd00:11::/64","ips":["fd00:11::10-fd00:11::20"],"gateway":"fd00:11::1"}]})");
  ASSERT_OK_AND_ASSIGN(Result r, alloc_.Add(Args("a"), conf));
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0], Ipc("172.16.11.10/24", "172.16.11.254"));
  EXPECT_EQ(r.ips[1], Ipc("fd00:11::10/64", "fd00:11::1"));
}

TEST_F(AllocatorTest, FailureInSecondPoolReleasesFirstPoolReservation) {
  IpamConfig conf = Conf(R"({"pools":[{"subnet":"10.1.0.0/24","ips":["10.1.0.5-10.1.0.9"]},
                                      {"subnet":"fd00:1::/64","ips":["fd00:1::5"]}]})");
  AddIp(Args("holder"), conf);  // takes 10.1.0.5 and the only IPv6 address
  auto r = alloc_.Add(Args("b"), conf);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kPoolExhausted);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("fd00:1::5-fd00:1::5"));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  EXPECT_EQ(all.size(), 2u);  // only the holder's two
}

TEST_F(AllocatorTest, StoreFailureRollsBackAndKeepsCode) {
  IpamConfig conf = Conf(kSmallPool);
  store_.FailReserves(CniError(kIoFailure, "disk full"));
  auto r = alloc_.Add(Args("a"), conf);
  EXPECT_EQ(CniCode(r.status()), kIoFailure);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("disk full"));
}

struct RequestCase {
  std::string name;
  std::function<void(IpamArgs&)> set;
};

class RequestedIpTest : public AllocatorTest, public ::testing::WithParamInterface<RequestCase> {};

TEST_P(RequestedIpTest, GetsRequestedAddress) {
  IpamConfig conf = Conf(R"({"subnet":"172.16.11.0/24","gateway":"172.16.11.254"})");
  IpamArgs args = Args("a");
  GetParam().set(args);
  EXPECT_EQ(AddIp(args, conf), "172.16.11.77/24");
}

INSTANTIATE_TEST_SUITE_P(
    Sources, RequestedIpTest,
    ::testing::Values(RequestCase{"CniArgsIP",
                                  [](IpamArgs& a) { a.cni_args["IP"] = "172.16.11.77"; }},
                      RequestCase{"ArgsCniIps",
                                  [](IpamArgs& a) {
                                    a.args = json::parse(R"({"cni":{"ips":["172.16.11.77"]}})");
                                  }},
                      RequestCase{"RuntimeConfigIpsWithPrefix",
                                  [](IpamArgs& a) {
                                    a.runtime_config =
                                        json::parse(R"({"ips":["172.16.11.77/24"]})");
                                  }}),
    [](const ::testing::TestParamInfo<RequestCase>& info) { return info.param.name; });

TEST_F(AllocatorTest, RequestedAddressHeldByOtherIsCode103NamingOwner) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a"), conf);
  IpamArgs b = Args("b");
  b.cni_args["IP"] = "172.16.11.1";
  auto r = alloc_.Add(b, conf);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kAddressInUse);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("requested IP 172.16.11.1 is already reserved by container a ifname net1"));
}

TEST_F(AllocatorTest, BadRequestedAddressesAreRejected) {
  IpamConfig conf = Conf(kSmallPool);
  struct Case {
    std::function<void(IpamArgs&)> set;
    int code;
    std::string message;
  };
  const Case cases[] = {
      {[](IpamArgs& a) { a.cni_args["IP"] = "10.0.0.1"; }, 7, "is in no pool of the network"},
      {[](IpamArgs& a) { a.cni_args["IP"] = "172.16.11.254"; }, 7, "is in no pool"},
      {[](IpamArgs& a) { a.cni_args["IP"] = "nonsense"; }, 4, "from CNI_ARGS IP is not an address"},
      {[](IpamArgs& a) { a.runtime_config = json::parse(R"({"ips":"172.16.11.1"})"); }, 7,
       "runtimeConfig.ips must be an array"},
      {[](IpamArgs& a) { a.args = json::parse(R"({"cni":{"ips":[5]}})"); }, 7,
       "args.cni.ips must be an array of strings"},
      {[](IpamArgs& a) { a.cni_args["IP"] = "172.16.11.1,172.16.11.2"; }, 7, "in the same pool"},
  };
  for (const Case& c : cases) {
    IpamArgs args = Args("a");
    c.set(args);
    auto r = alloc_.Add(args, conf);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(CniCode(r.status()), c.code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.message));
  }
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  EXPECT_TRUE(all.empty());
}

TEST_F(AllocatorTest, RequestedGatewayOrExcludedIsRejected) {
  IpamConfig conf =
      Conf(R"({"subnet":"10.5.0.0/24","gateway":"10.5.0.1","excludeIPs":["10.5.0.9"]})");
  for (const char* ip : {"10.5.0.1", "10.5.0.9", "10.5.0.0", "10.5.0.255"}) {
    IpamArgs args = Args("a");
    args.cni_args["IP"] = ip;
    auto r = alloc_.Add(args, conf);
    EXPECT_EQ(CniCode(r.status()), kInvalidNetworkConfig) << ip;
  }
}

TEST_F(AllocatorTest, InvalidOwnerOrNetworkNamesAreRejected) {
  IpamConfig conf = Conf(kSmallPool);
  EXPECT_EQ(CniCode(alloc_.Add(Args("../../etc"), conf).status()), kInvalidEnv);
  EXPECT_EQ(CniCode(alloc_.Add(Args("a", "../x"), conf).status()), kInvalidEnv);
  EXPECT_EQ(CniCode(alloc_.Add(Args("a", "net1", "../etc"), conf).status()), kInvalidNetworkConfig);
  EXPECT_EQ(CniCode(alloc_.Del(Args("a", "net1", "a/b"), conf)), kInvalidNetworkConfig);
  EXPECT_EQ(CniCode(alloc_.Gc(Args("a", "net1", ".."), conf, {})), kInvalidNetworkConfig);
}

TEST_F(AllocatorTest, GcReleasesOnlyStaleReservationsOfThatNetwork) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a"), conf);
  AddIp(Args("b"), conf);
  AddIp(Args("c", "net1", "rail2"), conf);
  Reservation legacy;
  legacy.ip = "172.16.11.3";
  legacy.container_id = "old";  // host-local legacy record: no ifname
  store_.Put("rail1", legacy);
  ASSERT_OK(
      alloc_.Gc(Args("x", "net1", "rail1"), conf,
                {Attachment{"a", "net1"}, Attachment{"old", "eth0"}, Attachment{"b", "net9"}}));
  ASSERT_OK_AND_ASSIGN(auto rail1, store_.List("rail1"));
  std::vector<std::string> owners;
  for (const auto& r : rail1) owners.push_back(r.container_id);
  EXPECT_THAT(owners, ::testing::UnorderedElementsAre("a", "old"));
  ASSERT_OK_AND_ASSIGN(auto rail2, store_.List("rail2"));
  EXPECT_EQ(rail2.size(), 1u);
}

TEST_F(AllocatorTest, GcWithEmptyListReleasesEverythingButQuarantine) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a"), conf);
  ASSERT_OK(alloc_.Quarantine(Args("b"), conf, "172.16.11.3"));
  ASSERT_OK(alloc_.Gc(Args("x"), conf, {}));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].quarantined());
}

TEST_F(AllocatorTest, QuarantinedAddressIsSkippedUntilItExpires) {
  IpamConfig conf = Conf(
      R"({"subnet":"172.16.11.0/24","ips":["172.16.11.1-172.16.11.2"],"quarantineSeconds":60})");
  EXPECT_EQ(AddIp(Args("a"), conf), "172.16.11.1/24");
  // The caller found 172.16.11.1 in use on the wire: quarantine it, release the owner.
  ASSERT_OK(alloc_.Quarantine(Args("a"), conf, "172.16.11.1/24"));
  ASSERT_OK(alloc_.Del(Args("a"), conf));
  EXPECT_EQ(AddIp(Args("b"), conf), "172.16.11.2/24");
  EXPECT_EQ(CniCode(alloc_.Add(Args("c"), conf).status()), kPoolExhausted);
  now_ += 61;
  EXPECT_EQ(AddIp(Args("c"), conf), "172.16.11.1/24");
}

TEST_F(AllocatorTest, QuarantineRecordHasReservedOwnerAndExpiry) {
  IpamConfig conf = Conf(kSmallPool);
  ASSERT_OK(alloc_.Quarantine(Args("a"), conf, "172.16.11.2"));
  ASSERT_OK_AND_ASSIGN(auto all, store_.List("rail1"));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].container_id, kQuarantineOwner);
  EXPECT_EQ(all[0].quarantine_until, now_ + 600);
}

TEST_F(AllocatorTest, QuarantineOfAnotherOwnersAddressIsRefused) {
  IpamConfig conf = Conf(kSmallPool);
  AddIp(Args("a"), conf);
  absl::Status st = alloc_.Quarantine(Args("b"), conf, "172.16.11.1");
  EXPECT_EQ(CniCode(st), kAddressInUse);
  EXPECT_EQ(CniCode(alloc_.Quarantine(Args("b"), conf, "10.0.0.1")), kInvalidNetworkConfig);
}

TEST_F(AllocatorTest, CheckComparesHeldAddressesWithPrevResult) {
  IpamConfig conf = Conf(kSmallPool);
  ASSERT_OK_AND_ASSIGN(Result r, alloc_.Add(Args("a"), conf));
  EXPECT_OK(alloc_.Check(Args("a"), conf, r));
  Result wrong = r;
  wrong.ips[0].address = *IpPrefix::Parse("172.16.11.3/24");
  absl::Status st = alloc_.Check(Args("a"), conf, wrong);
  EXPECT_EQ(CniCode(st), kInvalidNetworkConfig);
  EXPECT_THAT(std::string(st.message()), HasSubstr("prevResult lists 172.16.11.3/24"));
  Result none;
  EXPECT_EQ(CniCode(alloc_.Check(Args("a"), conf, none)), kInvalidNetworkConfig);
  EXPECT_EQ(CniCode(alloc_.Check(Args("zz"), conf, r)), kUnknownContainer);
}

TEST_F(AllocatorTest, StatusIs50WhenPoolExhausted) {
  IpamConfig conf = Conf(kSmallPool);
  EXPECT_OK(alloc_.Status(Args("x"), conf));
  for (const char* id : {"a", "b", "c"}) AddIp(Args(id), conf);
  absl::Status st = alloc_.Status(Args("x"), conf);
  EXPECT_EQ(CniCode(st), kPluginNotAvailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr("no free address left"));
}

TEST_F(AllocatorTest, LockTimeoutIsCode11) {
  IpamConfig conf = Conf(R"({"subnet":"172.16.11.0/24","lockTimeoutMs":50})");
  ASSERT_OK_AND_ASSIGN(auto held, store_.Lock("rail1", std::chrono::milliseconds(10)));
  auto r = alloc_.Add(Args("a"), conf);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CniCode(r.status()), kTryAgainLater);
  EXPECT_EQ(CniCode(alloc_.Del(Args("a"), conf)), kTryAgainLater);
}

TEST(AllocatorConcurrencyTest, SixtyFourThreadsGetDistinctAddressesFromLocalStore) {
  testing::TempDir dir;
  LocalStore store(dir.path());
  Allocator alloc(&store, [] { return int64_t{0}; });
  IpamConfig conf = Conf(R"({"subnet":"172.16.11.0/24","gateway":"172.16.11.254"})");
  std::vector<std::string> got(64);
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] {
      auto r = alloc.Add(Args("ctr" + std::to_string(i)), conf);
      if (r.ok()) got[i] = r->ips[0].address.ToString();
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(got.begin(), got.end());
  distinct.erase("");
  EXPECT_EQ(distinct.size(), 64u);
  ASSERT_OK_AND_ASSIGN(auto all, store.List("rail1"));
  EXPECT_EQ(all.size(), 64u);
}

}  // namespace
}  // namespace rdmashare::cni::ipam
