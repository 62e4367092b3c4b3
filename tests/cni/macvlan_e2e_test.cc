// End-to-end tests of the rdmashare-macvlan binary (with rdmashare-ipam in-process, or Debian's
// host-local through delegation) on the rail harness: real netns, veth, macvlan, ARP. Root only.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cni/macvlan/config.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cni/rail_harness.h"

namespace rdmashare::cni::testing {
namespace {

using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kMacvlan = RS_MACVLAN_BIN;
const std::string kCniPath = std::string(RS_IPAM_DIR) + ":/usr/lib/cni";

std::map<std::string, std::string> Env(const std::string& cmd, const std::string& id,
                                       const std::string& netns, const std::string& ifname,
                                       const std::string& args = "") {
  std::map<std::string, std::string> env = {{"CNI_COMMAND", cmd}, {"CNI_PATH", kCniPath}};
  if (!id.empty()) env["CNI_CONTAINERID"] = id;
  if (!netns.empty()) env["CNI_NETNS"] = netns;
  if (!ifname.empty()) env["CNI_IFNAME"] = ifname;
  if (!args.empty()) env["CNI_ARGS"] = args;
  return env;
}

// The walkthrough's network for rail k (pool gpuK-net1K: .10-.200, gateway .254).
json RailConf(int k, const std::string& version, const std::string& data_dir) {
  return json{{"cniVersion", version},
              {"name", fmt::format("gpu{}-net1{}", k, k)},
              {"type", "rdmashare-macvlan"},
              {"master", RailHarness::RailNic(k)},
              {"ipam",
               {{"type", "rdmashare-ipam"},
                {"subnet", RailHarness::RailSubnet(k)},
                {"ips", {fmt::format("172.16.{}.10-172.16.{}.200", 10 + k, 10 + k)}},
                {"gateway", RailHarness::RailGateway(k)},
                {"dataDir", data_dir}}}};
}

// Lease files of a network in the host-local layout (<dataDir>/<network>/<ip>).
std::vector<std::string> Leases(const std::string& data_dir, const std::string& network) {
  std::vector<std::string> out;
  auto names = ListDir(JoinPath(data_dir, network));
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    if (n.find_first_not_of("0123456789.:abcdef") == std::string::npos && n.find('.') != 0 &&
        (n.find('.') != std::string::npos || n.find(':') != std::string::npos)) {
      out.push_back(n);
    }
  }
  return out;
}

std::string Trim(const std::string& s) {
  size_t e = s.find_last_not_of(" \n");
  return e == std::string::npos ? "" : s.substr(0, e + 1);
}

class MacvlanE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (netns, veth, macvlan)";
  }
  PluginRun Add(const std::string& id, const std::string& pod, const std::string& ifname,
                const json& conf, const std::string& args = "") {
    return h_->Run(kMacvlan, Env("ADD", id, pod, ifname, args), conf.dump());
  }
  PluginRun Del(const std::string& id, const std::string& pod, const std::string& ifname,
                const json& conf) {
    return h_->Run(kMacvlan, Env("DEL", id, pod, ifname), conf.dump());
  }
  void Start(int rails) { h_ = std::make_unique<RailHarness>(rails); }

  TempDir data_;
  std::unique_ptr<RailHarness> h_;
};

// ------------------------------------------------------------------- the walkthrough's pod

TEST_F(MacvlanE2eTest, WalkthroughPodHasEightRailsWithExactRulesAndTables) {
  Start(8);
  std::string pod = h_->AddPod();
  std::string ns = RailHarness::NsName(pod);
  for (int k = 1; k <= 8; ++k) {
    PluginRun r = Add("walk1", pod, fmt::format("net{}", k), RailConf(k, "1.0.0", data_.path()));
    ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
    EXPECT_EQ(r.json["ips"][0]["address"], fmt::format("172.16.{}.10/24", 10 + k));
  }
  std::string want_rules = "0:\tfrom all lookup local\n";
  for (int k = 1; k <= 8; ++k) {
    want_rules += fmt::format("1000:\tfrom 172.16.{}.10 lookup {}\n", 10 + k, 99 + k);
  }
  want_rules += "32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n";
  EXPECT_EQ(RailHarness::Ip(ns, "-4 rule show"), want_rules);
  for (int k = 1; k <= 8; ++k) {
    EXPECT_EQ(RailHarness::Ip(ns, fmt::format("-4 route show table {}", 99 + k)),
              fmt::format("default via 172.16.{0}.254 dev net{1} \n"
                          "172.16.{0}.0/24 dev net{1} scope link src 172.16.{0}.10 \n",
                          10 + k, k));
  }
  std::string want_main =
      "default via 169.254.1.1 dev eth0 \n"
      "169.254.1.1 dev eth0 scope link \n";
  for (int k = 1; k <= 8; ++k) {
    want_main += fmt::format(
        "172.16.{0}.0/24 dev net{1} proto kernel scope link src "
        "172.16.{0}.10 \n",
        10 + k, k);
  }
  EXPECT_EQ(RailHarness::Ip(ns, "-4 route show table main"), want_main);
  std::string links = RailHarness::Ip(ns, "-o link show");
  for (int k = 1; k <= 8; ++k) {
    EXPECT_THAT(links, HasSubstr(fmt::format("net{}@", k)));
    EXPECT_EQ(Trim(RailHarness::Sh(fmt::format(
                  "ip netns exec {} cat /proc/sys/net/ipv4/conf/net{}/arp_ignore "
                  "/proc/sys/net/ipv4/conf/net{}/arp_announce /proc/sys/net/ipv4/conf/net{}/"
                  "rp_filter | tr '\\n' ' '",
                  ns, k, k, k))),
              "1 2 2");
  }
}

TEST_F(MacvlanE2eTest, TwoPodsReachEachOtherAndTheGatewayOnARail) {
  Start(1);
  std::string a = h_->AddPod(), b = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  ASSERT_EQ(Add("pinga", a, "net1", conf).exit_code, 0);
  PluginRun rb = Add("pingb", b, "net1", conf);
  ASSERT_EQ(rb.exit_code, 0) << rb.stdout_data;
  std::string b_ip = rb.json["ips"][0]["address"].get<std::string>();
  b_ip = b_ip.substr(0, b_ip.find('/'));
  RailHarness::Sh(
      fmt::format("ip netns exec {} ping -c1 -W2 -I net1 {}", RailHarness::NsName(a), b_ip));
  RailHarness::Sh(
      fmt::format("ip netns exec {} ping -c1 -W2 172.16.11.254", RailHarness::NsName(b)));
  // Cluster traffic still leaves on eth0.
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(a), "route get 10.96.0.1"),
              HasSubstr("dev eth0"));
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(a), "route get 8.8.8.8 from 172.16.11.10"),
              HasSubstr("via 172.16.11.254 dev net1 table 100"));
}

// ------------------------------------------------------------------ every command per version

class VersionTest : public MacvlanE2eTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(VersionTest, AddCheckDelInTheCallersVersion) {
  const std::string v = GetParam();
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, v, data_.path());
  PluginRun add = Add("ver" + std::to_string(getpid()), pod, "net1", conf);
  ASSERT_EQ(add.exit_code, 0) << add.stdout_data;
  const json& r = add.json;
  EXPECT_EQ(r["cniVersion"], v);
  ASSERT_EQ(r["interfaces"].size(), 1u);
  EXPECT_EQ(r["interfaces"][0]["name"], "net1");
  EXPECT_EQ(r["interfaces"][0]["sandbox"], pod);
  EXPECT_EQ(r["ips"][0]["address"], "172.16.11.10/24");
  EXPECT_EQ(r["ips"][0]["gateway"], "172.16.11.254");
  EXPECT_EQ(r["ips"][0]["interface"], 0);
  bool old = v == "0.3.0" || v == "0.3.1" || v == "0.4.0";
  EXPECT_EQ(r["ips"][0].contains("version"), old) << r.dump();
  EXPECT_EQ(r["interfaces"][0].contains("mtu"), v == "1.1.0") << r.dump();
  // A veth master has no RDMA function: no pciID in any version.
  EXPECT_FALSE(r["interfaces"][0].contains("pciID"));

  if (v != "0.3.0" && v != "0.3.1") {
    json check = conf;
    check["prevResult"] = r;
    PluginRun c = h_->Run(kMacvlan, Env("CHECK", "ver" + std::to_string(getpid()), pod, "net1"),
                          check.dump());
    EXPECT_EQ(c.exit_code, 0) << c.stdout_data;
    EXPECT_EQ(c.stdout_data, "");
  }
  json del = conf;
  del["prevResult"] = r;
  PluginRun d =
      h_->Run(kMacvlan, Env("DEL", "ver" + std::to_string(getpid()), pod, "net1"), del.dump());
  EXPECT_EQ(d.exit_code, 0) << d.stdout_data;
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "-o link show"),
              ::testing::Not(HasSubstr("net1")));
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "rule show"),
              ::testing::Not(HasSubstr("lookup 100")));
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());

  PluginRun ver = h_->Run(kMacvlan, {{"CNI_COMMAND", "VERSION"}}, conf.dump());
  EXPECT_EQ(ver.exit_code, 0);
  EXPECT_EQ(ver.json["cniVersion"], v);
  EXPECT_THAT(ver.json["supportedVersions"].get<std::vector<std::string>>(),
              ::testing::Contains(v));
}

INSTANTIATE_TEST_SUITE_P(Versions, VersionTest,
                         ::testing::Values("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
                         [](const auto& info) {
                           std::string s = "v" + info.param;
                           std::replace(s.begin(), s.end(), '.', '_');
                           return s;
                         });

TEST_F(MacvlanE2eTest, CheckBelow040IsIncompatibleVersion) {
  Start(1);
  std::string pod = h_->AddPod();
  PluginRun c =
      h_->Run(kMacvlan, Env("CHECK", "c1", pod, "net1"), RailConf(1, "0.3.1", data_.path()).dump());
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_EQ(c.code(), 1) << c.stdout_data;
}

TEST_F(MacvlanE2eTest, StatusAnswersOkThen50WhenMasterDownOrMissing) {
  Start(2);
  json conf = RailConf(1, "1.1.0", data_.path());
  PluginRun ok = h_->Run(kMacvlan, Env("STATUS", "", "", ""), conf.dump());
  EXPECT_EQ(ok.exit_code, 0) << ok.stdout_data;
  h_->SetRailDown(1);
  PluginRun down = h_->Run(kMacvlan, Env("STATUS", "", "", ""), conf.dump());
  EXPECT_EQ(down.code(), 50) << down.stdout_data;
  EXPECT_THAT(down.msg(), HasSubstr("enp11s0f0np0 is down"));
  h_->DeleteRail(2);
  PluginRun gone =
      h_->Run(kMacvlan, Env("STATUS", "", "", ""), RailConf(2, "1.1.0", data_.path()).dump());
  EXPECT_EQ(gone.code(), 50) << gone.stdout_data;
  EXPECT_THAT(gone.msg(), HasSubstr("enp12s0f0np0 does not exist"));
}

TEST_F(MacvlanE2eTest, GcReleasesOnlyStaleAttachmentsOfThatNetwork) {
  Start(2);
  json c1 = RailConf(1, "1.1.0", data_.path()), c2 = RailConf(2, "1.1.0", data_.path());
  std::string p1 = h_->AddPod(), p2 = h_->AddPod();
  ASSERT_EQ(Add("keep", p1, "net1", c1).exit_code, 0);
  ASSERT_EQ(Add("stale", p2, "net1", c1).exit_code, 0);
  ASSERT_EQ(Add("stale", p2, "net2", c2).exit_code, 0);
  json gc = c1;
  gc["cni.dev/valid-attachments"] = json::array({{{"containerID", "keep"}, {"ifname", "net1"}}});
  PluginRun r = h_->Run(kMacvlan, Env("GC", "", "", ""), gc.dump());
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  EXPECT_THAT(Leases(data_.path(), "gpu1-net11"), ::testing::ElementsAre("172.16.11.10"));
  EXPECT_THAT(Leases(data_.path(), "gpu2-net12"), ::testing::ElementsAre("172.16.12.10"));
}

// ------------------------------------------------------------------------------------ DEL

TEST_F(MacvlanE2eTest, DelTwiceSucceeds) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  ASSERT_EQ(Add("d2", pod, "net1", conf).exit_code, 0);
  EXPECT_EQ(Del("d2", pod, "net1", conf).exit_code, 0);
  PluginRun again = Del("d2", pod, "net1", conf);
  EXPECT_EQ(again.exit_code, 0) << again.stdout_data;
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
}

TEST_F(MacvlanE2eTest, DelWithNetnsGoneReleasesTheAddress) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  ASSERT_EQ(Add("dgone", pod, "net1", conf).exit_code, 0);
  h_->RemovePod(pod);
  PluginRun d = Del("dgone", pod, "net1", conf);
  EXPECT_EQ(d.exit_code, 0) << d.stdout_data;
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
  PluginRun no_netns = Del("dgone", "", "net1", conf);
  EXPECT_EQ(no_netns.exit_code, 0) << no_netns.stdout_data;
}

TEST_F(MacvlanE2eTest, DelWithMasterGoneRemovesEverything) {
  Start(2);
  std::string pod = h_->AddPod();
  json conf = RailConf(2, "1.0.0", data_.path());
  ASSERT_EQ(Add("mgone", pod, "net2", conf).exit_code, 0);
  h_->DeleteRail(2);  // the kernel removes the macvlan with its master
  PluginRun d = Del("mgone", pod, "net2", conf);
  EXPECT_EQ(d.exit_code, 0) << d.stdout_data;
  EXPECT_TRUE(Leases(data_.path(), "gpu2-net12").empty());
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "rule show"),
              ::testing::Not(HasSubstr("lookup 101")));
}

TEST_F(MacvlanE2eTest, DelRemovesATemporaryLinkLeftByACrashedAdd) {
  Start(1);
  std::string pod = h_->AddPod();
  std::string ns = RailHarness::NsName(pod);
  json conf = RailConf(1, "1.0.0", data_.path());
  // State after a crash between "create under the temporary name" and "rename".
  std::string temp = macvlan::TempLinkName("crash1", "net1");
  RailHarness::Ip(h_->node_ns_name(), fmt::format("link add {} link {} type macvlan mode bridge",
                                                  temp, RailHarness::RailNic(1)));
  RailHarness::Ip(h_->node_ns_name(), fmt::format("link set {} netns {}", temp, ns));
  ASSERT_THAT(RailHarness::Ip(ns, "-o link show"), HasSubstr(temp));
  PluginRun d = Del("crash1", pod, "net1", conf);
  ASSERT_EQ(d.exit_code, 0) << d.stdout_data;
  EXPECT_THAT(RailHarness::Ip(ns, "-o link show"), ::testing::Not(HasSubstr(temp)));
}

TEST_F(MacvlanE2eTest, AddReplacesAStaleTemporaryLinkOfTheSameAttachment) {
  Start(1);
  std::string pod = h_->AddPod();
  std::string ns = RailHarness::NsName(pod);
  std::string temp = macvlan::TempLinkName("crash2", "net1");
  RailHarness::Ip(h_->node_ns_name(), fmt::format("link add {} link {} type macvlan mode bridge",
                                                  temp, RailHarness::RailNic(1)));
  RailHarness::Ip(h_->node_ns_name(), fmt::format("link set {} netns {}", temp, ns));
  PluginRun r = Add("crash2", pod, "net1", RailConf(1, "1.0.0", data_.path()));
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  std::string links = RailHarness::Ip(ns, "-o link show");
  EXPECT_THAT(links, ::testing::Not(HasSubstr(temp)));
  EXPECT_THAT(links, HasSubstr("net1@"));
}

TEST_F(MacvlanE2eTest, DelWithoutPrevResultSucceeds) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.1.0", data_.path());
  ASSERT_EQ(Add("noprev", pod, "net1", conf).exit_code, 0);
  PluginRun d = Del("noprev", pod, "net1", conf);
  EXPECT_EQ(d.exit_code, 0) << d.stdout_data;
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "-o link show"),
              ::testing::Not(HasSubstr("net1")));
}

// ------------------------------------------------------------------------------------ ADD

TEST_F(MacvlanE2eTest, SecondAddForTheSameInterfaceFailsAndKeepsTheLivePod) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  ASSERT_EQ(Add("twice", pod, "net1", conf).exit_code, 0);
  PluginRun again = Add("twice", pod, "net1", conf);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.code(), 102) << again.stdout_data;
  EXPECT_THAT(again.msg(), HasSubstr("net1 already exists"));
  EXPECT_THAT(Leases(data_.path(), "gpu1-net11"), ::testing::ElementsAre("172.16.11.10"));
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "-4 addr show dev net1"),
              HasSubstr("172.16.11.10/24"));
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "rule show"),
              HasSubstr("from 172.16.11.10 lookup 100"));
}

TEST_F(MacvlanE2eTest, ExhaustedPoolIsCode100AndLeavesNothingBehind) {
  Start(1);
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["ipam"]["ips"] = {"172.16.11.10-172.16.11.11"};
  std::string p1 = h_->AddPod(), p2 = h_->AddPod(), p3 = h_->AddPod();
  ASSERT_EQ(Add("ex1", p1, "net1", conf).exit_code, 0);
  ASSERT_EQ(Add("ex2", p2, "net1", conf).exit_code, 0);
  PluginRun r = Add("ex3", p3, "net1", conf);
  EXPECT_EQ(r.code(), 100) << r.stdout_data;
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(p3), "-o link show"),
              ::testing::Not(HasSubstr("macvlan")));
  EXPECT_EQ(Leases(data_.path(), "gpu1-net11").size(), 2u);
}

TEST_F(MacvlanE2eTest, SilentGatewayIsCode11AndLeaksNoReservationOrLink) {
  Start(1);
  h_->SilenceGateway(1);
  std::string pod = h_->AddPod();
  PluginRun r = Add("silent", pod, "net1", RailConf(1, "1.0.0", data_.path()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.code(), 11) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr("interface net1: gateway 172.16.11.254"));
  EXPECT_THAT(r.msg(), HasSubstr("172.16.11.10"));
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
  std::string ns = RailHarness::NsName(pod);
  EXPECT_EQ(Trim(RailHarness::Ip(ns, "-o link show type macvlan")), "");
  EXPECT_THAT(RailHarness::Ip(ns, "rule show"), ::testing::Not(HasSubstr("lookup 100")));
}

TEST_F(MacvlanE2eTest, SilentGatewayIsIgnoredWhenDetectGatewayIsOff) {
  Start(1);
  h_->SilenceGateway(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["detectGateway"] = false;
  PluginRun r = Add("nodetect", pod, "net1", conf);
  EXPECT_EQ(r.exit_code, 0) << r.stdout_data;
}

TEST_F(MacvlanE2eTest, ConflictingAddressIsCode11AndQuarantined) {
  Start(1);
  // Another host on the rail (the gateway netns) already uses .10.
  RailHarness::Ip(h_->gateway_ns_name(), "addr add 172.16.11.10/24 dev rail1");
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  PluginRun r = Add("conflict", pod, "net1", conf);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.code(), 11) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr("interface net1: address 172.16.11.10 is already in use"));
  EXPECT_EQ(Trim(RailHarness::Ip(RailHarness::NsName(pod), "-o link show type macvlan")), "");
  PluginRun next = Add("conflict2", pod, "net1", conf);
  ASSERT_EQ(next.exit_code, 0) << next.stdout_data;
  EXPECT_EQ(next.json["ips"][0]["address"], "172.16.11.11/24");
}

TEST_F(MacvlanE2eTest, SixtyFourParallelAddsGetDistinctAddresses) {
  Start(1);
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["detectGateway"] = false;
  conf["detectIPConflict"] = false;
  std::vector<std::string> pods;
  for (int i = 0; i < 64; ++i) pods.push_back(h_->AddPod());
  std::mutex mu;
  std::vector<std::string> addrs;
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] {
      PluginRun r = Add(fmt::format("par{}", i), pods[i], "net1", conf);
      std::lock_guard<std::mutex> lock(mu);
      if (r.exit_code == 0) {
        addrs.push_back(r.json["ips"][0]["address"].get<std::string>());
      } else {
        ADD_FAILURE() << r.stdout_data;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(addrs.size(), 64u);
  EXPECT_EQ(std::set<std::string>(addrs.begin(), addrs.end()).size(), 64u);
  EXPECT_EQ(Leases(data_.path(), "gpu1-net11").size(), 64u);
}

TEST_F(MacvlanE2eTest, MasterOmittedUsesTheDefaultRouteInterface) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf.erase("master");
  ASSERT_EQ(Add("nomaster", pod, "net1", conf).exit_code, 0);
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "-d link show net1"),
              HasSubstr("macvlan mode bridge"));
}

TEST_F(MacvlanE2eTest, ModeMtuAndMacAreApplied) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.1.0", data_.path());
  conf["mode"] = "private";
  conf["mtu"] = 1400;
  conf["runtimeConfig"] = {{"mac", "02:aa:bb:cc:dd:01"}};
  PluginRun r = Add("modes", pod, "net1", conf, "IgnoreUnknown=1;MAC=02:aa:bb:cc:dd:02");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  EXPECT_EQ(r.json["interfaces"][0]["mac"], "02:aa:bb:cc:dd:01");
  EXPECT_EQ(r.json["interfaces"][0]["mtu"], 1400);
  std::string link = RailHarness::Ip(RailHarness::NsName(pod), "-d link show net1");
  EXPECT_THAT(link, HasSubstr("mtu 1400"));
  EXPECT_THAT(link, HasSubstr("macvlan mode private"));
}

TEST_F(MacvlanE2eTest, MtuAboveMasterIsCode7) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["mtu"] = 9000;
  PluginRun r = Add("mtu", pod, "net1", conf);
  EXPECT_EQ(r.code(), 7) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr("mtu 9000 exceeds the MTU 1500 of master enp11s0f0np0"));
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
}

TEST_F(MacvlanE2eTest, MissingMasterIsCode101) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["master"] = "enp99s0f0np0";
  PluginRun r = Add("nomaster", pod, "net1", conf);
  EXPECT_EQ(r.code(), 101) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr("master enp99s0f0np0 does not exist"));
}

TEST_F(MacvlanE2eTest, InterfaceWithoutTableIsCode7UnlessRouteTableOrNoPolicyRouting) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  PluginRun r = Add("tbl", pod, "rail0", conf);
  EXPECT_EQ(r.code(), 7) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr("routeTable"));
  conf["routeTable"] = 4242;
  PluginRun ok = Add("tbl", pod, "rail0", conf);
  ASSERT_EQ(ok.exit_code, 0) << ok.stdout_data;
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "rule show"),
              HasSubstr("from 172.16.11.10 lookup 4242"));
  json flat = RailConf(1, "1.0.0", data_.path());
  flat["name"] = "flat";
  flat["policyRouting"] = false;
  flat["ipam"]["ips"] = {"172.16.11.100-172.16.11.110"};
  flat["ipam"]["routes"] = json::array({{{"dst", "10.10.0.0/16"}}});
  std::string pod2 = h_->AddPod();
  ASSERT_EQ(Add("flat", pod2, "rail0", flat).exit_code, 0);
  std::string ns2 = RailHarness::NsName(pod2);
  EXPECT_EQ(RailHarness::Ip(ns2, "-4 rule show"),
            "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n"
            "32767:\tfrom all lookup default\n");
  EXPECT_THAT(RailHarness::Ip(ns2, "-4 route show"),
              HasSubstr("10.10.0.0/16 via 172.16.11.254 dev rail0"));
}

TEST_F(MacvlanE2eTest, IpamRoutesGoToTheTableAndNonDefaultOnesToMain) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["ipam"]["routes"] = json::array({{{"dst", "0.0.0.0/0"}}, {{"dst", "172.30.0.0/16"}}});
  PluginRun r = Add("routes", pod, "net1", conf);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  std::string ns = RailHarness::NsName(pod);
  EXPECT_EQ(RailHarness::Ip(ns, "-4 route show table 100"),
            "default via 172.16.11.254 dev net1 \n"
            "172.16.11.0/24 dev net1 scope link src 172.16.11.10 \n"
            "172.30.0.0/16 via 172.16.11.254 dev net1 \n");
  std::string main = RailHarness::Ip(ns, "-4 route show table main");
  EXPECT_THAT(main, HasSubstr("default via 169.254.1.1 dev eth0"));
  EXPECT_THAT(main, HasSubstr("172.30.0.0/16 via 172.16.11.254 dev net1"));
}

TEST_F(MacvlanE2eTest, DelegatesToHostLocalForOtherIpamTypes) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "0.4.0", data_.path());
  conf["ipam"] = {{"type", "host-local"},
                  {"ranges",
                   {{{{"subnet", "172.16.11.0/24"},
                      {"rangeStart", "172.16.11.50"},
                      {"rangeEnd", "172.16.11.60"},
                      {"gateway", "172.16.11.254"}}}}},
                  {"dataDir", data_.path()}};
  PluginRun r = Add("hl", pod, "net1", conf);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  EXPECT_EQ(r.json["ips"][0]["address"], "172.16.11.50/24");
  EXPECT_THAT(Leases(data_.path(), "gpu1-net11"), ::testing::ElementsAre("172.16.11.50"));
  ASSERT_EQ(Del("hl", pod, "net1", conf).exit_code, 0);
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
}

// ----------------------------------------------------------------------- malformed input

struct BadInput {
  std::string name;
  std::map<std::string, std::string> env;  // merged over a valid ADD env
  std::string stdin_data;                  // "" = a valid config
  int code;
  std::string substr;
};

// Keeps ctest names readable (the case name instead of a byte dump).
void PrintTo(const BadInput& c, std::ostream* os) { *os << c.name; }

class MalformedTest : public MacvlanE2eTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(MalformedTest, FailsWithTheExpectedCode) {
  const BadInput& c = GetParam();
  Start(1);
  std::string pod = h_->AddPod();
  auto env = Env("ADD", "bad", pod, "net1");
  for (const auto& [k, v] : c.env) {
    if (v == "<unset>") {
      env.erase(k);
    } else {
      env[k] = v;
    }
  }
  std::string in = c.stdin_data.empty() ? RailConf(1, "1.0.0", data_.path()).dump() : c.stdin_data;
  PluginRun r = h_->Run(kMacvlan, env, in);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.code(), c.code) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr(c.substr)) << r.stdout_data;
  ASSERT_TRUE(r.json.is_object());
  EXPECT_TRUE(r.json.contains("details")) << r.stdout_data;
  EXPECT_EQ(Trim(RailHarness::Ip(RailHarness::NsName(pod), "-o link show type macvlan")), "");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedTest,
    ::testing::Values(
        BadInput{"NoCommand", {{"CNI_COMMAND", "<unset>"}}, "", 4, "CNI_COMMAND"},
        BadInput{"UnknownCommand", {{"CNI_COMMAND", "FROB"}}, "", 4, "FROB"},
        BadInput{"NoContainerId", {{"CNI_CONTAINERID", "<unset>"}}, "", 4, "CNI_CONTAINERID"},
        BadInput{"BadContainerId", {{"CNI_CONTAINERID", "-bad id"}}, "", 4, "CNI_CONTAINERID"},
        BadInput{"NoIfname", {{"CNI_IFNAME", "<unset>"}}, "", 4, "CNI_IFNAME"},
        BadInput{"IfnameTooLong", {{"CNI_IFNAME", "net1234567890123"}}, "", 4, "CNI_IFNAME"},
        BadInput{"IfnameWithSlash", {{"CNI_IFNAME", "net/1"}}, "", 4, "CNI_IFNAME"},
        BadInput{"NoNetns", {{"CNI_NETNS", "<unset>"}}, "", 4, "CNI_NETNS"},
        BadInput{
            "NetnsMissing", {{"CNI_NETNS", "/run/netns/rs-no-such-ns"}}, "", 3, "rs-no-such-ns"},
        BadInput{"NetnsNotANamespace", {{"CNI_NETNS", "/etc/hostname"}}, "", 3, "/etc/hostname"},
        BadInput{"MalformedCniArgs", {{"CNI_ARGS", "novalue"}}, "", 4, "CNI_ARGS"},
        BadInput{"StdinNotJson", {}, "{not json", 6, ""},
        BadInput{"StdinNotObject", {}, "[1,2]", 6, ""},
        BadInput{"NoCniVersion", {}, R"({"name":"n","type":"rdmashare-macvlan"})", 7, "cniVersion"},
        BadInput{"UnsupportedVersion",
                 {},
                 R"({"cniVersion":"9.9.9","name":"n","type":"rdmashare-macvlan"})",
                 1,
                 "9.9.9"},
        BadInput{"NoIpam",
                 {},
                 R"({"cniVersion":"1.0.0","name":"n","type":"rdmashare-macvlan",
                     "master":"enp11s0f0np0"})",
                 7,
                 "ipam"},
        BadInput{"BadMode",
                 {},
                 R"({"cniVersion":"1.0.0","name":"n","type":"rdmashare-macvlan","mode":"x",
                     "ipam":{"type":"rdmashare-ipam","subnet":"172.16.11.0/24"}})",
                 7,
                 "mode"},
        BadInput{"SubnetWithHostBits",
                 {},
                 R"({"cniVersion":"1.0.0","name":"n","type":"rdmashare-macvlan",
                     "master":"enp11s0f0np0",
                     "ipam":{"type":"rdmashare-ipam","subnet":"172.16.11.5/24"}})",
                 7,
                 ""},
        BadInput{"MixedIpamForms",
                 {},
                 R"({"cniVersion":"1.0.0","name":"n","type":"rdmashare-macvlan",
                     "master":"enp11s0f0np0",
                     "ipam":{"type":"rdmashare-ipam","subnet":"172.16.11.0/24",
                             "ranges":[[{"subnet":"172.16.11.0/24"}]]}})",
                 7,
                 ""},
        BadInput{"DelegatedIpamNotFound",
                 {},
                 R"({"cniVersion":"1.0.0","name":"n","type":"rdmashare-macvlan",
                     "master":"enp11s0f0np0","ipam":{"type":"no-such-ipam"}})",
                 7,
                 "no-such-ipam"}),
    [](const auto& info) { return info.param.name; });

// --------------------------------------------------------------------------- RDMA awareness

// A fake sysfs whose class/net/enp11s0f0np0 is a ConnectX function with one port.
void FakeRdmaSysfs(const std::string& sys, const std::string& state,
                   const std::string& link_layer) {
  std::string fn = sys + "/devices/pci0000:00/0000:0b:00.0";
  WriteTestFile(fn + "/infiniband/mlx5_0/ports/1/state", state + "\n");
  WriteTestFile(fn + "/infiniband/mlx5_0/ports/1/link_layer", link_layer + "\n");
  WriteTestFile(fn + "/infiniband/mlx5_0/ports/1/gid_attrs/ndevs/0", "enp11s0f0np0\n");
  WriteTestFile(fn + "/net/enp11s0f0np0/type", "1\n");
  RailHarness::Sh(fmt::format(
      "mkdir -p {0}/class/net && ln -sfn ../../devices/pci0000:00/0000:0b:00.0/net/enp11s0f0np0 "
      "{0}/class/net/enp11s0f0np0 && ln -sfn ../../../0000:0b:00.0 {1}/net/enp11s0f0np0/device",
      sys, fn));
}

TEST_F(MacvlanE2eTest, RdmaMasterReportsPciIdIn110Only) {
  Start(1);
  TempDir sys;
  FakeRdmaSysfs(sys.path(), "4: ACTIVE", "Ethernet");
  for (const std::string v : {"1.1.0", "1.0.0"}) {
    std::string pod = h_->AddPod();
    json conf = RailConf(1, v, data_.path());
    conf["sysfsRoot"] = sys.path();
    PluginRun r = Add("rdma" + v, pod, "net1", conf);
    ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
    if (v == "1.1.0") {
      EXPECT_EQ(r.json["interfaces"][0]["pciID"], "0000:0b:00.0");
    } else {
      EXPECT_FALSE(r.json["interfaces"][0].contains("pciID"));
    }
  }
}

TEST_F(MacvlanE2eTest, InfiniBandMasterIsRefusedBecauseMacvlanNeedsRoce) {
  Start(1);
  TempDir sys;
  FakeRdmaSysfs(sys.path(), "4: ACTIVE", "InfiniBand");
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.1.0", data_.path());
  conf["sysfsRoot"] = sys.path();
  PluginRun r = Add("ib", pod, "net1", conf);
  EXPECT_EQ(r.code(), 104) << r.stdout_data;
  EXPECT_THAT(r.msg(), HasSubstr("macvlan needs RoCE"));
  EXPECT_THAT(r.msg(), HasSubstr("mlx5_0"));
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
}

TEST_F(MacvlanE2eTest, CheckAndStatusFailWhenTheRdmaPortIsDown) {
  Start(1);
  TempDir sys;
  FakeRdmaSysfs(sys.path(), "4: ACTIVE", "Ethernet");
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.1.0", data_.path());
  conf["sysfsRoot"] = sys.path();
  PluginRun r = Add("rdmachk", pod, "net1", conf);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  json check = conf;
  check["prevResult"] = r.json;
  EXPECT_EQ(h_->Run(kMacvlan, Env("CHECK", "rdmachk", pod, "net1"), check.dump()).exit_code, 0);
  WriteTestFile(sys.Sub("devices/pci0000:00/0000:0b:00.0/infiniband/mlx5_0/ports/1/state"),
                "1: DOWN\n");
  PluginRun c = h_->Run(kMacvlan, Env("CHECK", "rdmachk", pod, "net1"), check.dump());
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_THAT(c.msg(), HasSubstr("port 1 is DOWN, not ACTIVE")) << c.stdout_data;
  PluginRun s = h_->Run(kMacvlan, Env("STATUS", "", "", ""), conf.dump());
  EXPECT_EQ(s.code(), 50) << s.stdout_data;
  EXPECT_THAT(s.msg(), HasSubstr("mlx5_0 port 1 is DOWN"));
}

TEST_F(MacvlanE2eTest, CheckDetectsAMissingRuleAndAChangedMac) {
  Start(1);
  std::string pod = h_->AddPod();
  std::string ns = RailHarness::NsName(pod);
  json conf = RailConf(1, "1.0.0", data_.path());
  PluginRun r = Add("chk", pod, "net1", conf);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  json check = conf;
  check["prevResult"] = r.json;
  RailHarness::Ip(ns, "rule del from 172.16.11.10 lookup 100");
  PluginRun c = h_->Run(kMacvlan, Env("CHECK", "chk", pod, "net1"), check.dump());
  EXPECT_THAT(c.msg(), HasSubstr("rule 1000: from 172.16.11.10 lookup 100 is missing"));
  RailHarness::Ip(ns, "rule add from 172.16.11.10 lookup 100 pref 1000");
  RailHarness::Ip(ns, "link set net1 address 02:00:00:00:00:42");
  c = h_->Run(kMacvlan, Env("CHECK", "chk", pod, "net1"), check.dump());
  EXPECT_THAT(c.msg(), HasSubstr("has MAC 02:00:00:00:00:42"));
  EXPECT_EQ(c.exit_code, 1);
}

// ------------------------------------------------------------------- dual stack and chroot

TEST_F(MacvlanE2eTest, DualStackGetsRulesAndTableEntriesPerFamily) {
  Start(1);
  std::string pod = h_->AddPod();
  std::string ns = RailHarness::NsName(pod);
  json conf = RailConf(1, "1.1.0", data_.path());
  conf["ipam"] = {{"type", "rdmashare-ipam"},
                  {"dataDir", data_.path()},
                  {"pools",
                   {{{"subnet", "172.16.11.0/24"},
                     {"ips", {"172.16.11.10-172.16.11.20"}},
                     {"gateway", "172.16.11.254"}},
                    {{"subnet", "fd00:11::/64"},
                     {"ips", {"fd00:11::10-fd00:11::20"}},
                     {"gateway", "fd00:11::254"}}}}};
  PluginRun r = Add("dual", pod, "net1", conf);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_data;
  ASSERT_EQ(r.json["ips"].size(), 2u);
  EXPECT_EQ(r.json["ips"][1]["address"], "fd00:11::10/64");
  EXPECT_THAT(RailHarness::Ip(ns, "-6 rule show"), HasSubstr("1000:\tfrom fd00:11::10 lookup 100"));
  std::string t6 = RailHarness::Ip(ns, "-6 route show table 100");
  EXPECT_THAT(t6, HasSubstr("default via fd00:11::254 dev net1"));
  EXPECT_THAT(t6, HasSubstr("fd00:11::/64 dev net1"));
  EXPECT_THAT(RailHarness::Ip(ns, "-4 rule show"), HasSubstr("from 172.16.11.10 lookup 100"));
  json check = conf;
  check["prevResult"] = r.json;
  PluginRun c = h_->Run(kMacvlan, Env("CHECK", "dual", pod, "net1"), check.dump());
  EXPECT_EQ(c.exit_code, 0) << c.stdout_data;
  ASSERT_EQ(Del("dual", pod, "net1", conf).exit_code, 0);
  EXPECT_THAT(RailHarness::Ip(ns, "-6 rule show"), ::testing::Not(HasSubstr("lookup 100")));
}

TEST_F(MacvlanE2eTest, LogsGoToTheConfiguredFileAndStdoutHoldsOnlyJson) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["master"] = "enp99s0f0np0";
  conf["logFile"] = data_.Sub("macvlan.log");
  PluginRun r = Add("logs", pod, "net1", conf);
  ASSERT_TRUE(r.json.is_object()) << r.stdout_data;
  EXPECT_EQ(r.code(), 101);
  auto log = ReadFile(data_.Sub("macvlan.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, HasSubstr("master enp99s0f0np0 does not exist"));
}

TEST_F(MacvlanE2eTest, StaticBinaryRunsInAnEmptyChroot) {
  if (!RDMASHARE_TOOLS_STATIC) {
    GTEST_SKIP() << "sanitizer build: the CNI binaries are not linked statically";
  }
  TempDir root;
  RailHarness::Sh(
      fmt::format("cp {} {}/plugin && mkdir -p {}/data", kMacvlan, root.path(), root.path()));
  std::string version =
      RailHarness::Sh(fmt::format("echo '{{\"cniVersion\":\"1.1.0\"}}' | env -i "
                                  "CNI_COMMAND=VERSION /usr/sbin/chroot {} /plugin",
                                  root.path()));
  json v = json::parse(version, nullptr, false);
  ASSERT_TRUE(v.is_object()) << version;
  EXPECT_EQ(v["cniVersion"], "1.1.0");
  // DEL without a netns needs nothing but the IPAM store: it must succeed inside the chroot.
  json conf = RailConf(1, "1.0.0", "/data");
  WriteTestFile(root.Sub("conf.json"), conf.dump());
  RailHarness::Sh(
      fmt::format("env -i CNI_COMMAND=DEL CNI_CONTAINERID=c1 CNI_IFNAME=net1 CNI_PATH=/ "
                  "/usr/sbin/chroot {0} /plugin "
                  "< {0}/conf.json",
                  root.path()));
}

// ------------------------------------------------------------- deferred link deletion (DEL)

// Links of kind macvlan in the pod netns, one "name@master" per line ("" when none).
std::string MacvlanLinks(const std::string& pod) {
  return Trim(RailHarness::Ip(RailHarness::NsName(pod), "-o link show type macvlan"));
}

TEST_F(MacvlanE2eTest, DeferredDelFreesNameAddressAndRulesBeforeAnsweringThenLinkGoes) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  ASSERT_EQ(Add("defer1", pod, "net1", conf).exit_code, 0);
  ASSERT_EQ(Del("defer1", pod, "net1", conf).exit_code, 0);
  std::string ns = RailHarness::NsName(pod);
  // Whatever is still there is the renamed link on its way out: no address, no rule, not net1.
  std::string links = MacvlanLinks(pod);
  EXPECT_THAT(links, ::testing::Not(HasSubstr("net1")));
  if (!links.empty()) {
    EXPECT_THAT(links, HasSubstr(macvlan::DeadLinkName("defer1", "net1")));
  }
  EXPECT_THAT(RailHarness::Ip(ns, "-4 addr show"), ::testing::Not(HasSubstr("172.16.11.")));
  EXPECT_THAT(RailHarness::Ip(ns, "rule show"), ::testing::Not(HasSubstr("lookup 100")));
  EXPECT_TRUE(Leases(data_.path(), "gpu1-net11").empty());
  EXPECT_TRUE(rdmashare::testing::WaitFor([&] { return MacvlanLinks(pod).empty(); }))
      << MacvlanLinks(pod);
}

// The deletion must come after the answer: with the deferred child killed before it deletes,
// the renamed link is still there once DEL has answered (a synchronous delete would leave
// nothing), stripped of its address and rules; the next DEL of the interface removes it.
TEST_F(MacvlanE2eTest, DeferredDelDeletesTheLinkOnlyAfterAnswering) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  ASSERT_EQ(Add("defer2", pod, "net1", conf).exit_code, 0);
  auto env = Env("DEL", "defer2", pod, "net1");
  env["RDMASHARE_FAILPOINT"] = "macvlan.del.deferred";
  PluginRun del = h_->Run(kMacvlan, env, conf.dump());
  ASSERT_EQ(del.exit_code, 0) << del.stdout_data;
  std::string ns = RailHarness::NsName(pod);
  EXPECT_THAT(MacvlanLinks(pod), HasSubstr(macvlan::DeadLinkName("defer2", "net1")));
  EXPECT_THAT(RailHarness::Ip(ns, "-4 addr show"), ::testing::Not(HasSubstr("172.16.11.")));
  EXPECT_THAT(RailHarness::Ip(ns, "rule show"), ::testing::Not(HasSubstr("lookup 100")));
  ASSERT_EQ(Del("defer2", pod, "net1", conf).exit_code, 0);
  EXPECT_TRUE(rdmashare::testing::WaitFor([&] { return MacvlanLinks(pod).empty(); }))
      << MacvlanLinks(pod);
}

TEST_F(MacvlanE2eTest, AddRightAfterDeferredDelOfTheSameInterfaceSucceeds) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  for (int i = 0; i < 5; ++i) {
    std::string id = fmt::format("readd{}", i % 2);
    PluginRun a = Add(id, pod, "net1", conf);
    ASSERT_EQ(a.exit_code, 0) << "round " << i << ": " << a.stdout_data;
    // IPAM hands out addresses round-robin (like host-local): the one in the result is on net1.
    ASSERT_FALSE(a.json["ips"].empty()) << a.stdout_data;
    EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "-4 addr show dev net1"),
                HasSubstr(a.json["ips"][0]["address"].get<std::string>()));
    ASSERT_EQ(Del(id, pod, "net1", conf).exit_code, 0) << "round " << i;
  }
  EXPECT_TRUE(rdmashare::testing::WaitFor([&] { return MacvlanLinks(pod).empty(); }))
      << MacvlanLinks(pod);
}

TEST_F(MacvlanE2eTest, DeferLinkDeleteFalseDeletesTheLinkBeforeAnswering) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  conf["deferLinkDelete"] = false;
  ASSERT_EQ(Add("sync1", pod, "net1", conf).exit_code, 0);
  ASSERT_EQ(Del("sync1", pod, "net1", conf).exit_code, 0);
  EXPECT_EQ(MacvlanLinks(pod), "");
}

TEST_F(MacvlanE2eTest, DelRemovesALeftoverRenamedLinkOfTheSameInterfaceAtOnce) {
  Start(1);
  std::string pod = h_->AddPod();
  json conf = RailConf(1, "1.0.0", data_.path());
  std::string ns = RailHarness::NsName(pod);
  // What a deferred deletion killed before it ran leaves behind (the pod netns outlived it).
  const std::string dead = macvlan::DeadLinkName("left1", "net1");
  RailHarness::Ip(h_->node_ns_name(),
                  fmt::format("link add {} link {} netns {} type macvlan mode bridge", dead,
                              RailHarness::RailNic(1), ns));
  ASSERT_THAT(MacvlanLinks(pod), HasSubstr(dead));
  ASSERT_EQ(Del("left1", pod, "net1", conf).exit_code, 0);
  EXPECT_EQ(MacvlanLinks(pod), "");
}

}  // namespace
}  // namespace rdmashare::cni::testing
