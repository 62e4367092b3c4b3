// Tests of rs_cni_net against the real kernel (netns, veth, macvlan, AF_PACKET) and fake sysfs
// trees. Needs root; every namespace/link name carries the pid so ctest -j runs stay apart.
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "cni/net/arp.h"
#include "cni/net/netlink.h"
#include "cni/net/netns.h"
#include "cni/net/rdma_info.h"
#include "cni/net/sysctl.h"
#include "common/files.h"
#include "common/ip.h"
#include "common/testing/fifo.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::net {
namespace {

using ::rdmashare::testing::FinishesWithin;
using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::MakeFifo;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;

TEST(MacTest, NormalizesAndRejects) {
  ASSERT_OK_AND_ASSIGN(std::string m, NormalizeMac("02:AB:cd:00:00:01"));
  EXPECT_EQ(m, "02:ab:cd:00:00:01");
  EXPECT_THAT(NormalizeMac("02:ab:cd:00:00"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeMac("02-ab-cd-00-00-01"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---------------------------------------------------------------------------------- netns

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return fmt::format("{}{}x{}", prefix, getpid(), counter++);
}

void Sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

// A named netns removed on destruction.
class TestNs {
 public:
  TestNs() : name_(UniqueName("rsnt")) {
    auto path = CreateNamedNetNs(name_);
    EXPECT_THAT(path, IsOk());
    path_ = path.ok() ? *path : "";
  }
  ~TestNs() { (void)DeleteNamedNetNs(path_); }
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  NetNs Open() const { return std::move(NetNs::Open(path_)).value(); }

 private:
  std::string name_, path_;
};

TEST(NetNsTest, OpenMissingPathIsNotFound) {
  EXPECT_THAT(NetNs::Open("/run/netns/does-not-exist-rs"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does-not-exist-rs")));
}

TEST(NetNsTest, OpenRegularFileIsInvalidArgument) {
  TempDir dir;
  WriteTestFile(dir.Sub("f"), "x");
  EXPECT_THAT(NetNs::Open(dir.Sub("f")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a namespace file")));
}

TEST(NetNsTest, OpenFifoIsRefusedWithoutBlocking) {
  TempDir dir;
  MakeFifo(dir.Sub("fifo"));
  absl::StatusOr<NetNs> ns = absl::UnknownError("not run");
  ASSERT_TRUE(FinishesWithin([&] { ns = NetNs::Open(dir.Sub("fifo")); }, {dir.Sub("fifo")}));
  EXPECT_THAT(ns, StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr("not a namespace file (it is a FIFO)")));
}

TEST(NetNsTest, OpenFollowsTheProcMagicLink) {
  ASSERT_OK_AND_ASSIGN(NetNs ns, NetNs::Open(fmt::format("/proc/{}/ns/net", ::getpid())));
  ASSERT_OK_AND_ASSIGN(NetNs current, NetNs::Current());
  EXPECT_EQ(ns.inode(), current.inode());
}

TEST(SysctlTest, FifoUnderAProcRootIsRefusedWithoutBlocking) {
  TempDir dir;
  ASSERT_OK(MakeDirs(dir.Sub("sys/net/ipv4/conf/eth9")));
  const std::string fifo = dir.Sub("sys/net/ipv4/conf/eth9/arp_ignore");
  MakeFifo(fifo);
  absl::Status set = absl::UnknownError("not run");
  absl::StatusOr<std::string> get = absl::UnknownError("not run");
  ASSERT_TRUE(FinishesWithin(
      [&] {
        set = SetInterfaceSysctl(dir.path(), false, "eth9", "arp_ignore", "1");
        get = GetInterfaceSysctl(dir.path(), false, "eth9", "arp_ignore");
      },
      {fifo}));
  EXPECT_THAT(set, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is a FIFO")));
  EXPECT_THAT(get, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is a FIFO")));
}

TEST(NetNsTest, OpenOtherNamespaceTypeIsInvalidArgument) {
  EXPECT_THAT(NetNs::Open("/proc/self/ns/mnt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a network namespace")));
}

TEST(NetNsTest, ScopedEnterSwitchesAndRestores) {
  TestNs ns;
  ASSERT_OK_AND_ASSIGN(NetNs before, NetNs::Current());
  NetNs target = ns.Open();
  ASSERT_NE(before.inode(), target.inode());
  {
    ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(target));
    ASSERT_OK_AND_ASSIGN(NetNs inside, NetNs::Current());
    EXPECT_EQ(inside.inode(), target.inode());
  }
  ASSERT_OK_AND_ASSIGN(NetNs after, NetNs::Current());
  EXPECT_EQ(after.inode(), before.inode());
}

TEST(NetNsTest, CreateTwiceIsAlreadyExistsAndDeleteTwiceIsNotFound) {
  std::string name = UniqueName("rsdup");
  ASSERT_OK_AND_ASSIGN(std::string path, CreateNamedNetNs(name));
  EXPECT_THAT(CreateNamedNetNs(name), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_OK(DeleteNamedNetNs(path));
  EXPECT_THAT(DeleteNamedNetNs(path), StatusIs(absl::StatusCode::kNotFound));
}

// -------------------------------------------------------------------------------- netlink

// Host netns with a veth pair (va <-> vb, vb moved into `peer`), and a pod netns.
class NetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Sh(fmt::format("ip -n {} link add va type veth peer name vb netns {}", host_.name(),
                   peer_.name()));
    Sh(fmt::format("ip -n {} link set va up && ip -n {} link set vb up", host_.name(),
                   peer_.name()));
    Sh(fmt::format("ip -n {} link set lo up && ip -n {} link set lo up", host_.name(),
                   peer_.name()));
    host_nl_ = Open(host_);
    pod_nl_ = Open(pod_);
  }
  static std::unique_ptr<Netlink> Open(const TestNs& ns) {
    NetNs n = ns.Open();
    auto scope = ScopedNetNs::Enter(n);
    EXPECT_THAT(scope, IsOk());
    auto nl = Netlink::Open();
    EXPECT_THAT(nl, IsOk());
    return nl.ok() ? std::move(*nl) : nullptr;
  }

  TestNs host_, peer_, pod_;
  std::unique_ptr<Netlink> host_nl_, pod_nl_;
};

TEST_F(NetlinkTest, GetMissingLinkIsNotFound) {
  EXPECT_THAT(host_nl_->GetLink("nope0"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope0")));
}

TEST_F(NetlinkTest, CreatesMacvlanDirectlyInAnotherNamespace) {
  ASSERT_OK_AND_ASSIGN(LinkInfo va, host_nl_->GetLink("va"));
  EXPECT_EQ(va.kind, "veth");
  EXPECT_EQ(va.arptype, 1);
  MacvlanSpec spec{va.index, "tmpmv0", "private", 1400, "02:00:00:aa:bb:01", pod_.Open().fd()};
  NetNs pod = pod_.Open();
  spec.netns_fd = pod.fd();
  ASSERT_OK(host_nl_->CreateMacvlan(spec));
  EXPECT_THAT(host_nl_->GetLink("tmpmv0"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(LinkInfo mv, pod_nl_->GetLink("tmpmv0"));
  EXPECT_EQ(mv.kind, "macvlan");
  EXPECT_EQ(mv.macvlan_mode, "private");
  EXPECT_EQ(mv.mtu, 1400);
  EXPECT_EQ(mv.mac, "02:00:00:aa:bb:01");
  EXPECT_EQ(mv.parent_index, va.index);
  EXPECT_FALSE(mv.admin_up);

  ASSERT_OK(pod_nl_->RenameLink(mv.index, "net1"));
  ASSERT_OK(pod_nl_->SetLinkUp(mv.index, true));
  ASSERT_OK(pod_nl_->SetMtu(mv.index, 1300));
  ASSERT_OK(pod_nl_->SetMac(mv.index, "02:00:00:aa:bb:02"));
  ASSERT_OK_AND_ASSIGN(LinkInfo renamed, pod_nl_->GetLink("net1"));
  EXPECT_EQ(renamed.index, mv.index);
  EXPECT_TRUE(renamed.admin_up);
  EXPECT_EQ(renamed.mtu, 1300);
  EXPECT_EQ(renamed.mac, "02:00:00:aa:bb:02");
  ASSERT_OK(pod_nl_->DeleteLink(mv.index));
  EXPECT_THAT(pod_nl_->GetLink("net1"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(NetlinkTest, DuplicateMacvlanNameIsAlreadyExists) {
  ASSERT_OK_AND_ASSIGN(LinkInfo va, host_nl_->GetLink("va"));
  MacvlanSpec spec;
  spec.master_index = va.index;
  spec.name = "dup0";
  ASSERT_OK(host_nl_->CreateMacvlan(spec));
  EXPECT_THAT(host_nl_->CreateMacvlan(spec), StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(NetlinkTest, UnknownModeIsInvalidArgument) {
  MacvlanSpec spec;
  spec.master_index = 1;
  spec.name = "m0";
  spec.mode = "weird";
  EXPECT_THAT(host_nl_->CreateMacvlan(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weird")));
}

TEST_F(NetlinkTest, MissingMasterIsAnError) {
  MacvlanSpec spec;
  spec.master_index = 9999;
  spec.name = "m0";
  EXPECT_FALSE(host_nl_->CreateMacvlan(spec).ok());
}

TEST_F(NetlinkTest, AddressesRoutesAndRulesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(LinkInfo va, host_nl_->GetLink("va"));
  ASSERT_OK_AND_ASSIGN(IpPrefix a4, IpPrefix::Parse("172.16.11.10/24"));
  ASSERT_OK_AND_ASSIGN(IpPrefix a6, IpPrefix::Parse("fd00:11::10/64"));
  ASSERT_OK(host_nl_->AddAddress(va.index, a4));
  ASSERT_OK(host_nl_->AddAddress(va.index, a6));
  EXPECT_THAT(host_nl_->AddAddress(va.index, a4), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(std::vector<IpPrefix> addrs, host_nl_->ListAddresses(va.index));
  EXPECT_THAT(addrs, ::testing::IsSupersetOf({a4, a6}));

  Route def;
  def.dst = IpPrefix::Default(4);
  def.gateway = std::move(IpAddr::Parse("172.16.11.254")).value();
  def.ifindex = va.index;
  def.table = 100;
  Route connected;
  connected.dst = a4.Masked();
  connected.ifindex = va.index;
  connected.table = 100;
  connected.scope = RT_SCOPE_LINK;
  connected.pref_src = std::move(IpAddr::Parse("172.16.11.10")).value();
  ASSERT_OK(host_nl_->AddRoute(connected));
  ASSERT_OK(host_nl_->AddRoute(def));
  EXPECT_THAT(host_nl_->AddRoute(def), StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK_AND_ASSIGN(std::vector<Route> routes, host_nl_->ListRoutes(AF_INET));
  std::vector<std::string> table100;
  for (const Route& r : routes) {
    if (r.table == 100) table100.push_back(RouteString(r));
  }
  EXPECT_THAT(table100, ::testing::UnorderedElementsAre(
                            fmt::format("default via 172.16.11.254 dev {} table 100", va.index),
                            fmt::format("172.16.11.0/24 dev {} table 100 scope link src "
                                        "172.16.11.10",
                                        va.index)));
  ASSERT_OK_AND_ASSIGN(std::string dev, host_nl_->DefaultRouteInterface().status().ok()
                                            ? host_nl_->DefaultRouteInterface()
                                            : absl::StatusOr<std::string>("none"));
  EXPECT_EQ(dev, "none");  // table 100's default route is not the main table's
  Route main_def = def;
  main_def.table = RT_TABLE_MAIN;
  ASSERT_OK(host_nl_->AddRoute(main_def));
  ASSERT_OK_AND_ASSIGN(dev, host_nl_->DefaultRouteInterface());
  EXPECT_EQ(dev, "va");

  Rule r4{AF_INET, IpPrefix::Host(*IpAddr::Parse("172.16.11.10")), 100, 1000};
  Rule r6{AF_INET6, IpPrefix::Host(*IpAddr::Parse("fd00:11::10")), 100, 1000};
  ASSERT_OK(host_nl_->AddRule(r4));
  ASSERT_OK(host_nl_->AddRule(r6));
  ASSERT_OK_AND_ASSIGN(std::vector<Rule> rules, host_nl_->ListRules(AF_UNSPEC));
  EXPECT_THAT(rules, ::testing::IsSupersetOf({r4, r6}));
  EXPECT_EQ(RuleString(r4), "1000: from 172.16.11.10 lookup 100");
  ASSERT_OK(host_nl_->DeleteRule(r4));
  ASSERT_OK(host_nl_->DeleteRoute(def));
  ASSERT_OK_AND_ASSIGN(rules, host_nl_->ListRules(AF_INET));
  EXPECT_THAT(rules, ::testing::Not(::testing::Contains(r4)));
  EXPECT_THAT(host_nl_->DeleteRule(r4), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(NetlinkTest, NoDefaultRouteIsNotFound) {
  EXPECT_THAT(pod_nl_->DefaultRouteInterface(), StatusIs(absl::StatusCode::kNotFound));
}

// ---------------------------------------------------------------------------- ARP + sysctl

class ArpTest : public NetlinkTest {
 protected:
  void SetUp() override {
    NetlinkTest::SetUp();
    Sh(fmt::format("ip -n {} addr add 10.9.0.1/24 dev va", host_.name()));
    Sh(fmt::format("ip -n {} addr add 10.9.0.2/24 dev vb", peer_.name()));
    NetNs peer = peer_.Open();
    auto scope = ScopedNetNs::Enter(peer);
    ASSERT_THAT(scope, IsOk());
    auto nl = Netlink::Open();
    ASSERT_THAT(nl, IsOk());
    auto vb = (*nl)->GetLink("vb");
    ASSERT_THAT(vb, IsOk());
    vb_ = *vb;
    auto va = host_nl_->GetLink("va");
    ASSERT_THAT(va, IsOk());
    va_mac_ = va->mac;
  }
  LinkInfo vb_;
  std::string va_mac_;
  ProbeOptions fast_{3, std::chrono::milliseconds(100)};
};

TEST_F(ArpTest, GatewayThatAnswersReturnsItsMac) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ASSERT_OK_AND_ASSIGN(auto mac, ProbeGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.2"),
                                              *IpAddr::Parse("10.9.0.1"), fast_));
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(*mac, va_mac_);
}

TEST_F(ArpTest, SilentGatewayReturnsNulloptWithinTheBound) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(auto mac, ProbeGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.2"),
                                              *IpAddr::Parse("10.9.0.77"), fast_));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(mac.has_value());
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST_F(ArpTest, ProbeFindsTheHostOwningTheAddress) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ASSERT_OK_AND_ASSIGN(auto owner,
                       ProbeAddressConflict(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.1"), fast_));
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(*owner, va_mac_);
}

TEST_F(ArpTest, ProbeOfAFreeAddressFindsNobody) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ASSERT_OK_AND_ASSIGN(
      auto owner, ProbeAddressConflict(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.50"), fast_));
  EXPECT_FALSE(owner.has_value());
}

TEST_F(ArpTest, AnnouncementUpdatesTheNeighbourCache) {
  {
    NetNs peer = peer_.Open();
    ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
    ASSERT_OK(AnnounceAddress(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.2"), 2));
  }
  // Linux creates no neighbour entry from an unsolicited announcement by default, but updates an
  // existing one: seed one with a wrong MAC and wait for the announcement to correct it.
  Sh(fmt::format("ip -n {} neigh replace 10.9.0.2 lladdr 02:00:00:00:00:99 dev va nud stale",
                 host_.name()));
  {
    NetNs peer = peer_.Open();
    ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
    ASSERT_OK(AnnounceAddress(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.2"), 1));
  }
  std::string cmd =
      fmt::format("ip -n {} neigh show 10.9.0.2 dev va | grep -q {}", host_.name(), vb_.mac);
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] { return std::system(cmd.c_str()) == 0; }));
}

// The combined probe: a free address and an answering gateway take the conflict window (not
// the window plus the gateway's answer), and the gateway was asked with an ARP probe (sender
// 0.0.0.0, which a Linux host answers) so the address was never claimed.
TEST_F(ArpTest, CombinedProbeFreeAddressAnsweringGatewayTakesOneWindow) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ProbeOptions window{3, std::chrono::milliseconds(30)};
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(
      ProbeOutcome out,
      ProbeAddressAndGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.50"),
                             *IpAddr::Parse("10.9.0.1"), window, std::chrono::milliseconds(500)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(out.conflict_mac.has_value());
  ASSERT_TRUE(out.gateway_mac.has_value());
  EXPECT_EQ(*out.gateway_mac, va_mac_);
  EXPECT_GE(took, std::chrono::milliseconds(90));  // the whole conflict window ran
  EXPECT_LT(took, std::chrono::milliseconds(400));
  // The probe-form requests did not teach the gateway 10.9.0.50 -> our MAC.
  std::string neigh =
      fmt::format("ip -n {} neigh show 10.9.0.50 | grep -q {}", host_.name(), vb_.mac);
  EXPECT_NE(std::system(neigh.c_str()), 0);
}

TEST_F(ArpTest, CombinedProbeAnnouncesTheFreeAddressFromItsOwnSocket) {
  Sh(fmt::format("ip -n {} neigh replace 10.9.0.51 lladdr 02:00:00:00:00:99 dev va nud stale",
                 host_.name()));
  {
    NetNs peer = peer_.Open();
    ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
    ASSERT_OK_AND_ASSIGN(
        ProbeOutcome out,
        ProbeAddressAndGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.51"),
                               *IpAddr::Parse("10.9.0.1"), {2, std::chrono::milliseconds(20)},
                               std::chrono::milliseconds(500), 1));
    ASSERT_TRUE(out.gateway_mac.has_value());
  }
  std::string cmd =
      fmt::format("ip -n {} neigh show 10.9.0.51 dev va | grep -q {}", host_.name(), vb_.mac);
  EXPECT_TRUE(::rdmashare::testing::WaitFor([&] { return std::system(cmd.c_str()) == 0; }));
}

TEST_F(ArpTest, CombinedProbeStopsAtTheFirstConflict) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ProbeOptions window{3, std::chrono::milliseconds(200)};
  auto start = std::chrono::steady_clock::now();
  // 10.9.0.1 is the other host's own address.
  ASSERT_OK_AND_ASSIGN(
      ProbeOutcome out,
      ProbeAddressAndGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.1"),
                             *IpAddr::Parse("10.9.0.1"), window, std::chrono::milliseconds(500)));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(out.conflict_mac.has_value());
  EXPECT_EQ(*out.conflict_mac, va_mac_);
  EXPECT_LT(took, std::chrono::milliseconds(400));  // well before the 600 ms window
}

TEST_F(ArpTest, CombinedProbeSilentGatewayUsesItsWholeBudget) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ProbeOptions window{2, std::chrono::milliseconds(30)};
  auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(
      ProbeOutcome out,
      ProbeAddressAndGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.50"),
                             *IpAddr::Parse("10.9.0.77"), window, std::chrono::milliseconds(250)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(out.conflict_mac.has_value());
  EXPECT_FALSE(out.gateway_mac.has_value());
  EXPECT_GE(took, std::chrono::milliseconds(245));
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST_F(ArpTest, CombinedProbeWithoutGatewayIsTheConflictWindow) {
  NetNs peer = peer_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(peer));
  ASSERT_OK_AND_ASSIGN(
      ProbeOutcome out,
      ProbeAddressAndGateway(vb_.index, vb_.mac, *IpAddr::Parse("10.9.0.50"), std::nullopt,
                             {2, std::chrono::milliseconds(20)}, std::chrono::milliseconds(500)));
  EXPECT_FALSE(out.conflict_mac.has_value());
  EXPECT_FALSE(out.gateway_mac.has_value());
}

TEST(ArpArgsTest, V6AddressesAreInvalidArgument) {
  EXPECT_THAT(ProbeAddressConflict(1, "02:00:00:00:00:01", *IpAddr::Parse("fd00::1"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an IPv4")));
  EXPECT_THAT(AnnounceAddress(1, "bad", *IpAddr::Parse("10.0.0.1")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("MAC")));
}

TEST_F(NetlinkTest, SysctlsAreSetPerInterfaceInsideTheNamespace) {
  NetNs host = host_.Open();
  ASSERT_OK_AND_ASSIGN(ScopedNetNs scope, ScopedNetNs::Enter(host));
  ASSERT_OK(SetInterfaceSysctl("/proc", false, "va", "arp_ignore", "1"));
  ASSERT_OK(SetInterfaceSysctl("/proc", false, "va", "rp_filter", "2"));
  ASSERT_OK_AND_ASSIGN(std::string v, GetInterfaceSysctl("/proc", false, "va", "arp_ignore"));
  EXPECT_EQ(v, "1");
  ASSERT_OK_AND_ASSIGN(v, GetInterfaceSysctl("/proc", false, "va", "rp_filter"));
  EXPECT_EQ(v, "2");
  EXPECT_THAT(SetInterfaceSysctl("/proc", false, "nope0", "arp_ignore", "1"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope0")));
  EXPECT_THAT(SetInterfaceSysctl("/proc", false, "../all", "arp_ignore", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ------------------------------------------------------------------------------ RDMA sysfs

// A kernel-like tree: devices/pci0000:00/<pci>/{infiniband/<ibdev>/ports/N, net/<if>} and
// class/net/<if> -> that net dir.
void FakeRdmaNic(const std::string& sys, const std::string& pci, const std::string& ibdev,
                 const std::string& netdev, const std::vector<std::string>& port_states,
                 const std::string& link_layer, int ndev_port = 0) {
  std::string fn = sys + "/devices/pci0000:00/" + pci;
  for (size_t i = 0; i < port_states.size(); ++i) {
    std::string port = fmt::format("{}/infiniband/{}/ports/{}", fn, ibdev, i + 1);
    WriteTestFile(port + "/state", port_states[i] + "\n");
    WriteTestFile(port + "/link_layer", link_layer + "\n");
    WriteTestFile(port + "/gid_attrs/ndevs/0",
                  static_cast<int>(i + 1) == ndev_port ? netdev + "\n" : "\n");
  }
  WriteTestFile(fn + "/net/" + netdev + "/type", "1\n");
  Sh("mkdir -p " + sys + "/class/net");
  Sh(fmt::format("ln -s ../../devices/pci0000:00/{}/net/{} {}/class/net/{}", pci, netdev, sys,
                 netdev));
  Sh(fmt::format("ln -s ../../../{} {}/net/{}/device", pci, fn, netdev));
}

TEST(RdmaInfoTest, RoceFunctionReportsPciPortStateAndLinkLayer) {
  TempDir dir;
  FakeRdmaNic(dir.path(), "0000:0b:00.0", "mlx5_0", "enp11s0f0np0", {"4: ACTIVE"}, "Ethernet");
  ASSERT_OK_AND_ASSIGN(auto fn, FindRdmaFunction(dir.path(), "enp11s0f0np0"));
  ASSERT_TRUE(fn.has_value());
  EXPECT_EQ(*fn, (RdmaFunction{"mlx5_0", "0000:0b:00.0", 1, "ACTIVE", "Ethernet"}));
}

TEST(RdmaInfoTest, PortIsTheOneWhoseGidNdevNamesTheNetdev) {
  TempDir dir;
  FakeRdmaNic(dir.path(), "0000:0c:00.0", "mlx5_1", "enp12s0", {"4: ACTIVE", "1: DOWN"},
              "InfiniBand", /*ndev_port=*/2);
  ASSERT_OK_AND_ASSIGN(auto fn, FindRdmaFunction(dir.path(), "enp12s0"));
  ASSERT_TRUE(fn.has_value());
  EXPECT_EQ(fn->port, 2);
  EXPECT_EQ(fn->port_state, "DOWN");
  EXPECT_EQ(fn->link_layer, "InfiniBand");
}

TEST(RdmaInfoTest, NetdevWithoutDeviceOrRdmaHasNoFunction) {
  TempDir dir;
  WriteTestFile(dir.Sub("devices/virtual/net/veth0/type"), "1\n");
  Sh("mkdir -p " + dir.Sub("class/net"));
  Sh("ln -s ../../devices/virtual/net/veth0 " + dir.Sub("class/net/veth0"));
  WriteTestFile(dir.Sub("devices/pci0000:00/0000:01:00.0/net/eth0/type"), "1\n");
  Sh("ln -s ../../devices/pci0000:00/0000:01:00.0/net/eth0 " + dir.Sub("class/net/eth0"));
  Sh("ln -s ../../../0000:01:00.0 " + dir.Sub("devices/pci0000:00/0000:01:00.0/net/eth0/device"));
  for (const std::string name : {"veth0", "eth0", "absent0"}) {
    ASSERT_OK_AND_ASSIGN(auto fn, FindRdmaFunction(dir.path(), name));
    EXPECT_FALSE(fn.has_value()) << name;
  }
}

TEST(RdmaInfoTest, MissingPortStateIsAnErrorNamingTheFile) {
  TempDir dir;
  FakeRdmaNic(dir.path(), "0000:0b:00.0", "mlx5_0", "enp11s0f0np0", {"4: ACTIVE"}, "Ethernet");
  Sh("rm " + dir.Sub("devices/pci0000:00/0000:0b:00.0/infiniband/mlx5_0/ports/1/state"));
  EXPECT_THAT(FindRdmaFunction(dir.path(), "enp11s0f0np0"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("ports/1/state")));
}

TEST(RdmaInfoTest, BadNetdevNameIsInvalidArgument) {
  EXPECT_THAT(FindRdmaFunction("/sys", "../x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FindRdmaFunction("/sys", ""), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace rdmashare::cni::net
