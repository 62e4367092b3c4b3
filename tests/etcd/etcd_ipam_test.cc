// The real rdmashare-ipam binary with its etcd store, against real etcd servers on loopback:
// simulated nodes are processes with distinct nodeName (and data dirs), as on a cluster.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cni/ipam/etcd_client.h"
#include "cni/ipam/etcd_store.h"
#include "cni/ipam/ipam.h"
#include "cni/protocol/delegate.h"
#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::EtcdCluster;
using ::rdmashare::testing::FreeLoopbackPort;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::SizeIs;

const std::string kBin = RDMASHARE_IPAM_BIN;
constexpr char kPrefix[] = "/rs";

struct PluginRun {
  int exit_code = -1;
  json doc;
};

// One simulated node: its name and its local data dir (lock files, DEL journal).
struct Node {
  std::string name;
  std::string data_dir;
};

class EtcdIpamTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ok()) << "etcd did not start"; }

  Node MakeNode(const std::string& name) { return Node{name, dir_.Sub("node-" + name)}; }

  // Network config with a pool of addresses 10.20.<a>.<b> from `ips`.
  std::string Conf(const Node& node, const std::string& ips, const std::string& network = "net1",
                   const std::string& pool = "", const std::string& extra = "",
                   const std::string& version = "1.0.0") {
    json store = {{"type", "etcd"},
                  {"endpoints", etcd_.Endpoints()},
                  {"prefix", kPrefix},
                  {"dialTimeoutMs", 300},
                  {"requestTimeoutMs", 3000}};
    json ipam = {{"type", "rdmashare-ipam"},  {"subnet", "10.20.0.0/16"},
                 {"ips", json::array({ips})}, {"dataDir", node.data_dir},
                 {"nodeName", node.name},     {"store", store}};
    if (!pool.empty()) ipam["pool"] = pool;
    json conf = {{"cniVersion", version}, {"name", network}, {"type", "x"}, {"ipam", ipam}};
    std::string text = conf.dump();
    if (!extra.empty()) text = text.substr(0, text.size() - 1) + extra + "}";
    return text;
  }

  PluginRun Exec(const std::string& command, const std::string& conf, const std::string& id = "",
                 const std::string& ifname = "net1") {
    std::map<std::string, std::string> env = {{"CNI_COMMAND", command}, {"CNI_PATH", "/x"}};
    if (command != "GC") {
      env["CNI_CONTAINERID"] = id;
      env["CNI_IFNAME"] = ifname;
      env["CNI_NETNS"] = "/var/run/netns/" + id;
    }
    PluginRun run;
    auto out = ExecPlugin(kBin, env, conf, std::chrono::seconds(30));
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return run;
    run.exit_code = out->exit_code;
    run.doc = json::parse(out->stdout_data, nullptr, false);
    return run;
  }

  static std::string Ip(const PluginRun& r) {
    if (!r.doc.is_object() || !r.doc.contains("ips")) return "";
    std::string a = r.doc["ips"][0]["address"];
    return a.substr(0, a.find('/'));
  }

  // pool -> {ip -> record JSON} as stored in etcd.
  std::map<std::string, json> Records(const std::string& pool) {
    EtcdOptions o;
    o.endpoints = etcd_.Endpoints();
    auto c = EtcdClient::Create(o);
    EXPECT_TRUE(c.ok());
    std::map<std::string, json> out;
    std::string prefix = fmt::format("{}/pools/{}/ips/", kPrefix, pool);
    auto kvs = (*c)->RangePrefix(prefix);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    if (!kvs.ok()) return out;
    for (const KeyValue& kv : *kvs) out[kv.key.substr(prefix.size())] = json::parse(kv.value);
    return out;
  }

  EtcdCluster etcd_{1};
  TempDir dir_;
};

TEST_F(EtcdIpamTest, EightNodesFiftyAddsEachGetDistinctAddresses) {
  constexpr int kNodes = 8, kAdds = 50;
  std::mutex mu;
  std::map<std::string, std::string> ip_of;  // container -> ip
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int n = 0; n < kNodes; ++n) {
    threads.emplace_back([&, n] {
      Node node = MakeNode(fmt::format("worker{}", n));
      std::string conf = Conf(node, "10.20.0.1-10.20.1.244");  // 500 addresses
      for (int i = 0; i < kAdds; ++i) {
        std::string id = fmt::format("n{}c{}", n, i);
        PluginRun r = Exec("ADD", conf, id);
        std::lock_guard<std::mutex> l(mu);
        if (r.exit_code != 0 || Ip(r).empty()) {
          failures.push_back(id + ": " + r.doc.dump());
        } else {
          ip_of[id] = Ip(r);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(failures, SizeIs(0)) << (failures.empty() ? "" : failures[0]);
  std::set<std::string> distinct;
  for (const auto& [id, ip] : ip_of) distinct.insert(ip);
  EXPECT_EQ(ip_of.size(), size_t{kNodes * kAdds});
  EXPECT_EQ(distinct.size(), size_t{kNodes * kAdds});
  // None lost: etcd holds exactly these reservations, each for the container that got it.
  auto records = Records("net1");
  EXPECT_EQ(records.size(), size_t{kNodes * kAdds});
  for (const auto& [id, ip] : ip_of) {
    ASSERT_EQ(records.count(ip), 1u) << ip;
    EXPECT_EQ(records[ip]["containerID"], id);
    EXPECT_EQ(records[ip]["node"], fmt::format("worker{}", id[1] - '0'));
  }
}

TEST_F(EtcdIpamTest, SmallPoolExhaustionIsCode100) {
  Node a = MakeNode("a"), b = MakeNode("b");
  std::string range = "10.20.0.1-10.20.0.3";
  EXPECT_EQ(Exec("ADD", Conf(a, range), "c1").exit_code, 0);
  EXPECT_EQ(Exec("ADD", Conf(b, range), "c2").exit_code, 0);
  EXPECT_EQ(Exec("ADD", Conf(a, range), "c3").exit_code, 0);
  PluginRun r = Exec("ADD", Conf(b, range), "c4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.doc["code"], kPoolExhausted);
  EXPECT_THAT(r.doc["msg"].get<std::string>(), HasSubstr("no free address left"));
  EXPECT_THAT(Records("net1"), SizeIs(3));
}

TEST_F(EtcdIpamTest, RepeatedAddReturnsTheSameAddress) {
  Node a = MakeNode("a");
  std::string conf = Conf(a, "10.20.0.1-10.20.0.50");
  PluginRun first = Exec("ADD", conf, "c1");
  PluginRun again = Exec("ADD", conf, "c1");
  EXPECT_EQ(first.exit_code, 0);
  EXPECT_EQ(Ip(first), Ip(again));
  EXPECT_THAT(Records("net1"), SizeIs(1));
}

TEST_F(EtcdIpamTest, RecordCarriesNodeAndPodMetadata) {
  Node a = MakeNode("a");
  std::map<std::string, std::string> env = {
      {"CNI_COMMAND", "ADD"},
      {"CNI_PATH", "/x"},
      {"CNI_CONTAINERID", "c1"},
      {"CNI_IFNAME", "net1"},
      {"CNI_NETNS", "/run/ns/c1"},
      {"CNI_ARGS", "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=p1;K8S_POD_UID=u1"}};
  auto out = ExecPlugin(kBin, env, Conf(a, "10.20.0.1-10.20.0.9"), std::chrono::seconds(30));
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->exit_code, 0) << out->stdout_data;
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records.begin()->second, json({{"node", "a"},
                                           {"network", "net1"},
                                           {"containerID", "c1"},
                                           {"ifname", "net1"},
                                           {"netns", "/run/ns/c1"},
                                           {"podNamespace", "ns1"},
                                           {"podName", "p1"},
                                           {"podUID", "u1"}}));
}

TEST_F(EtcdIpamTest, NetworksNamingOnePoolShareItsAddresses) {
  Node a = MakeNode("a");
  std::string range = "10.20.0.1-10.20.0.2";
  EXPECT_EQ(Exec("ADD", Conf(a, range, "rail1", "gpu1-net11"), "c1").exit_code, 0);
  EXPECT_EQ(Exec("ADD", Conf(a, range, "rail2", "gpu1-net11"), "c2").exit_code, 0);
  PluginRun r = Exec("ADD", Conf(a, range, "rail3", "gpu1-net11"), "c3");
  EXPECT_EQ(r.doc["code"], kPoolExhausted);
  EXPECT_THAT(Records("gpu1-net11"), SizeIs(2));
  EXPECT_THAT(Records("rail1"), SizeIs(0));
}

TEST_F(EtcdIpamTest, NodeNameComesFromNodeNameFile) {
  Node a = MakeNode("");
  std::string file = dir_.Sub("nodename");
  ::rdmashare::testing::WriteTestFile(file, "file-node\n");
  json conf = json::parse(Conf(a, "10.20.0.1-10.20.0.9"));
  conf["ipam"].erase("nodeName");
  conf["ipam"]["nodeNameFile"] = file;
  EXPECT_EQ(Exec("ADD", conf.dump(), "c1").exit_code, 0);
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records.begin()->second["node"], "file-node");
}

TEST_F(EtcdIpamTest, DelReleasesOnlyThisNodesReservation) {
  Node a = MakeNode("a"), b = MakeNode("b");
  std::string range = "10.20.0.1-10.20.0.9";
  ASSERT_EQ(Exec("ADD", Conf(a, range), "same-id").exit_code, 0);
  // The same container id on another node is another attachment.
  ASSERT_EQ(Exec("ADD", Conf(b, range), "same-id").exit_code, 0);
  EXPECT_EQ(Exec("DEL", Conf(b, range), "same-id").exit_code, 0);
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records.begin()->second["node"], "a");
}

TEST_F(EtcdIpamTest, GcTouchesOnlyThisNodesReservations) {
  Node a = MakeNode("a"), b = MakeNode("b");
  std::string range = "10.20.0.1-10.20.0.9";
  ASSERT_EQ(Exec("ADD", Conf(a, range), "a-live").exit_code, 0);
  ASSERT_EQ(Exec("ADD", Conf(a, range), "a-gone").exit_code, 0);
  ASSERT_EQ(Exec("ADD", Conf(b, range), "b-any").exit_code, 0);
  PluginRun gc =
      Exec("GC", Conf(a, range, "net1", "",
                      R"(,"cni.dev/valid-attachments":[{"containerID":"a-live","ifname":"net1"}])",
                      "1.1.0"));
  EXPECT_EQ(gc.exit_code, 0) << gc.doc.dump();
  std::set<std::string> left;
  for (const auto& [ip, rec] : Records("net1")) left.insert(rec["containerID"]);
  EXPECT_EQ(left, (std::set<std::string>{"a-live", "b-any"}));
}

TEST_F(EtcdIpamTest, AddWithEtcdDownFailsFastWithCode11NamingEndpoints) {
  Node a = MakeNode("a");
  std::string conf = Conf(a, "10.20.0.1-10.20.0.9");
  etcd_.Kill(0);
  auto start = std::chrono::steady_clock::now();
  PluginRun r = Exec("ADD", conf, "c1");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.doc["code"], kTryAgainLater);
  EXPECT_THAT(r.doc["msg"].get<std::string>(), HasSubstr(etcd_.Endpoints()[0]));
  EXPECT_LT(elapsed, std::chrono::milliseconds(3000));  // requestTimeoutMs
}

TEST_F(EtcdIpamTest, DelWithEtcdDownIsJournaledAndFlushedByNextInvocation) {
  Node a = MakeNode("a");
  std::string conf = Conf(a, "10.20.0.1-10.20.0.9");
  std::string ip1 = Ip(Exec("ADD", conf, "c1"));
  ASSERT_FALSE(ip1.empty());
  etcd_.Kill(0);
  PluginRun del = Exec("DEL", conf, "c1");
  EXPECT_EQ(del.exit_code, 0) << del.doc.dump();
  std::string journal = JoinPath(a.data_dir, "net1/etcd-journal");
  auto entries = ListDir(journal);
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, SizeIs(1));
  ASSERT_TRUE(etcd_.Restart(0));
  EXPECT_THAT(Records("net1"), SizeIs(1));  // still held until the journal is flushed
  PluginRun add = Exec("ADD", conf, "c2");
  EXPECT_EQ(add.exit_code, 0);
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records.begin()->second["containerID"], "c2");
  entries = ListDir(journal);
  ASSERT_TRUE(entries.ok());
  EXPECT_THAT(*entries, SizeIs(0));
}

// Two node names on one host share the data dir (e.g. nodeName changed, or two kubelets in a
// test rig): a journaled DEL is flushed only by its own node's invocations; another node's
// invocation leaves it (its Del would skip the record as foreign and drop the entry).
TEST_F(EtcdIpamTest, JournalEntryIsFlushedOnlyByItsOwnNode) {
  Node a = MakeNode("a");
  Node b{"b", a.data_dir};  // same host, same data dir, another node name
  std::string conf_a = Conf(a, "10.20.0.1-10.20.0.9");
  std::string conf_b = Conf(b, "10.20.0.1-10.20.0.9");
  ASSERT_FALSE(Ip(Exec("ADD", conf_a, "c1")).empty());
  etcd_.Kill(0);
  ASSERT_EQ(Exec("DEL", conf_a, "c1").exit_code, 0);
  std::string journal = JoinPath(a.data_dir, "net1/etcd-journal");
  ASSERT_THAT(*ListDir(journal), SizeIs(1));
  auto entry = json::parse(*ReadFile(JoinPath(journal, ListDir(journal)->front())), nullptr, false);
  EXPECT_EQ(entry.value("node", ""), "a");
  ASSERT_TRUE(etcd_.Restart(0));
  // Node b's invocation: the entry stays, and so does a's record.
  ASSERT_EQ(Exec("ADD", conf_b, "c2").exit_code, 0);
  EXPECT_THAT(*ListDir(journal), SizeIs(1));
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(2));
  // Node a's next invocation flushes it and releases the address.
  ASSERT_EQ(Exec("ADD", conf_a, "c3").exit_code, 0);
  EXPECT_THAT(*ListDir(journal), SizeIs(0));
  records = Records("net1");
  ASSERT_THAT(records, SizeIs(2));
  std::set<std::string> owners;
  for (const auto& [ip, rec] : records) owners.insert(rec["containerID"].get<std::string>());
  EXPECT_EQ(owners, (std::set<std::string>{"c2", "c3"}));
}

TEST_F(EtcdIpamTest, DelOfALongContainerIdWithEtcdDownIsJournaledToo) {
  Node a = MakeNode("a");
  std::string conf = Conf(a, "10.20.0.1-10.20.0.9");
  const std::string long_id(1000, 'c');  // CNI_CONTAINERID may be up to 1024 bytes
  ASSERT_FALSE(Ip(Exec("ADD", conf, long_id)).empty());
  etcd_.Kill(0);
  PluginRun del = Exec("DEL", conf, long_id);
  EXPECT_EQ(del.exit_code, 0) << del.doc.dump();
  auto entries = ListDir(JoinPath(a.data_dir, "net1/etcd-journal"));
  ASSERT_TRUE(entries.ok());
  ASSERT_THAT(*entries, SizeIs(1));
  EXPECT_LT(entries->front().size(), 64u);
  ASSERT_TRUE(etcd_.Restart(0));
  EXPECT_EQ(Exec("ADD", conf, "c2").exit_code, 0);
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records.begin()->second["containerID"], "c2");
}

TEST_F(EtcdIpamTest, JournalDirectoryIsPrivate) {
  Node a = MakeNode("a");
  std::string conf = Conf(a, "10.20.0.1-10.20.0.9");
  ASSERT_FALSE(Ip(Exec("ADD", conf, "c1")).empty());
  etcd_.Kill(0);
  ASSERT_EQ(Exec("DEL", conf, "c1").exit_code, 0);
  for (const std::string& path :
       {a.data_dir, JoinPath(a.data_dir, "net1"), JoinPath(a.data_dir, "net1/etcd-journal")}) {
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << path;
  }
}

TEST_F(EtcdIpamTest, CorruptRecordsAreSkippedReportedAndNeverTouched) {
  Node a = MakeNode("a");
  std::string conf = Conf(a, "10.20.0.1-10.20.0.9");
  EtcdOptions o;
  o.endpoints = etcd_.Endpoints();
  ASSERT_OK_AND_ASSIGN(auto client, EtcdClient::Create(o));
  std::map<std::string, std::string> corrupt = {
      {"10.20.0.1", "not json"},
      {"10.20.0.2", "[1,2]"},
      {"10.20.0.3", R"({"containerID":5,"node":"a","network":"net1"})"},
      {"10.20.0.4", R"({"containerID":"c9","node":"a","network":"net1","quarantineUntil":"x"})"},
      {"10.20.0.5", std::string("\xff\xfe\x00binary", 9)},
      {"garbage-key", R"({"containerID":"c8","node":"a","network":"net1"})"}};
  for (const auto& [ip, value] : corrupt) {
    ASSERT_TRUE(client->Put(fmt::format("{}/pools/net1/ips/{}", kPrefix, ip), value).ok());
  }
  PluginRun add = Exec("ADD", conf, "c1");
  ASSERT_EQ(add.exit_code, 0) << add.doc.dump();
  EXPECT_EQ(Ip(add), "10.20.0.6");
  EXPECT_EQ(Exec("DEL", conf, "c1").exit_code, 0);
  PluginRun gc = Exec("GC", Conf(a, "10.20.0.1-10.20.0.9", "net1", "",
                                 R"(,"cni.dev/valid-attachments":[])", "1.1.0"));
  EXPECT_EQ(gc.exit_code, 0) << gc.doc.dump();

  // The pool report names every unreadable record and why.
  IpamArgs args;
  args.network_name = "net1";
  args.ipam_conf = json::parse(conf)["ipam"];
  ASSERT_OK_AND_ASSIGN(std::vector<PoolUsage> report, IpamPoolReport(args));
  ASSERT_THAT(report, SizeIs(1));
  std::map<std::string, std::string> errors;
  for (const Reservation& r : report[0].holders) errors[r.ip] = r.error;
  EXPECT_THAT(errors["10.20.0.1"], HasSubstr("not JSON"));
  EXPECT_THAT(errors["10.20.0.2"], HasSubstr("not a JSON object"));
  EXPECT_THAT(errors["10.20.0.3"], HasSubstr("\"containerID\" is not a string"));
  EXPECT_THAT(errors["10.20.0.4"], HasSubstr("\"quarantineUntil\" is not an integer"));
  EXPECT_THAT(errors["10.20.0.5"], HasSubstr("not JSON"));
  EXPECT_EQ(errors.size(), 5u);  // the garbage key is outside the range set

  // ReleaseNode skips them too; every corrupt value is still there, byte for byte.
  ASSERT_OK_AND_ASSIGN(NodeRelease released, IpamReleaseNode(args, "a"));
  EXPECT_EQ(released.addresses, 0);
  for (const auto& [ip, value] : corrupt) {
    ASSERT_OK_AND_ASSIGN(auto kv, client->Get(fmt::format("{}/pools/net1/ips/{}", kPrefix, ip)));
    ASSERT_TRUE(kv.has_value()) << ip;
    EXPECT_EQ(kv->value, value) << ip;
  }
}

TEST_F(EtcdIpamTest, JournaledDelDoesNotReleaseAnAddressThatChangedHands) {
  Node a = MakeNode("a"), b = MakeNode("b");
  std::string range = "10.20.0.1-10.20.0.9";
  std::string ip = Ip(Exec("ADD", Conf(a, range), "c1"));
  ASSERT_FALSE(ip.empty());
  // Journal a DEL of c1 while etcd is down, then let node b's reclaim (ReleaseNode) and a new
  // owner take the address before node a flushes.
  std::string dead = fmt::format("127.0.0.1:{}", FreeLoopbackPort());
  json down = json::parse(Conf(a, range));
  down["ipam"]["store"]["endpoints"] = json::array({dead});
  ASSERT_EQ(Exec("DEL", down.dump(), "c1").exit_code, 0);
  EtcdOptions o;
  o.endpoints = etcd_.Endpoints();
  auto client = EtcdClient::Create(o);
  ASSERT_TRUE(client.ok());
  ASSERT_OK_AND_ASSIGN(NodeRelease released, ReleaseNode(client->get(), kPrefix, "net1", "a"));
  EXPECT_EQ(released.addresses, 1);
  PluginRun taken = Exec("ADD", Conf(b, "10.20.0.1-10.20.0.1"), "c9");
  ASSERT_EQ(taken.exit_code, 0);
  ASSERT_EQ(Exec("ADD", Conf(a, range), "c2").exit_code, 0);  // flushes the journal
  std::set<std::string> owners;
  for (const auto& [i, rec] : Records("net1")) owners.insert(rec["containerID"]);
  EXPECT_EQ(owners, (std::set<std::string>{"c9", "c2"}));
}

TEST(EtcdIpamClusterTest, ThreeMembersSurviveMemberLossAndFullOutage) {
  EtcdCluster etcd(3);
  ASSERT_TRUE(etcd.ok());
  TempDir dir;
  json store = {{"type", "etcd"},
                {"endpoints", etcd.Endpoints()},
                {"prefix", kPrefix},
                {"dialTimeoutMs", 300},
                {"requestTimeoutMs", 4000}};
  auto conf = [&](const std::string& node) {
    json ipam = {{"type", "rdmashare-ipam"},
                 {"subnet", "10.30.0.0/24"},
                 {"ips", json::array({"10.30.0.1-10.30.0.200"})},
                 {"dataDir", dir.Sub(node)},
                 {"nodeName", node},
                 {"store", store}};
    return json({{"cniVersion", "1.0.0"}, {"name", "net1"}, {"type", "x"}, {"ipam", ipam}}).dump();
  };
  auto exec = [&](const std::string& cmd, const std::string& node, const std::string& id) {
    std::map<std::string, std::string> env = {{"CNI_COMMAND", cmd},
                                              {"CNI_PATH", "/x"},
                                              {"CNI_CONTAINERID", id},
                                              {"CNI_IFNAME", "net1"},
                                              {"CNI_NETNS", "/x"}};
    auto out = ExecPlugin(kBin, env, conf(node), std::chrono::seconds(30));
    PluginRun r;
    if (out.ok()) {
      r.exit_code = out->exit_code;
      r.doc = json::parse(out->stdout_data, nullptr, false);
    }
    return r;
  };
  std::set<std::string> live;  // containers that should hold an address at the end
  std::vector<std::string> failures;
  // Two nodes allocate; member 0 is killed after the first 10 ADDs of each.
  std::vector<std::thread> threads;
  std::mutex mu;
  std::atomic<int> done{0};
  for (const std::string node : {"n1", "n2"}) {
    threads.emplace_back([&, node] {
      for (int i = 0; i < 30; ++i) {
        std::string id = fmt::format("{}c{}", node, i);
        PluginRun r = exec("ADD", node, id);
        std::lock_guard<std::mutex> l(mu);
        if (r.exit_code == 0) {
          live.insert(id);
        } else {
          failures.push_back(id + ": " + r.doc.dump());
          exec("DEL", node, id);  // as a runtime does after a failed ADD
        }
        if (i == 10) ++done;
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return done.load() == 2; }, std::chrono::seconds(120)));
  etcd.Kill(0);
  for (auto& t : threads) t.join();
  EXPECT_THAT(failures, SizeIs(0)) << (failures.empty() ? "" : failures[0]);
  EXPECT_THAT(live, SizeIs(60));

  // All down: ADD fails with 11 within the timeouts, DELs are journaled.
  etcd.Kill(1);
  etcd.Kill(2);
  auto start = std::chrono::steady_clock::now();
  PluginRun add = exec("ADD", "n1", "late");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(4000 + 1000));
  EXPECT_EQ(add.doc["code"], kTryAgainLater) << add.doc.dump();
  for (const std::string id : {"n1c1", "n1c2", "n2c3"}) {
    PluginRun del = exec("DEL", id.substr(0, 2), id);
    EXPECT_EQ(del.exit_code, 0) << del.doc.dump();
    live.erase(id);
  }

  // etcd returns; the next invocation on each node flushes its journal.
  ASSERT_TRUE(etcd.RestartAll());
  for (const std::string node : {"n1", "n2"}) {
    std::string id = node + "-after";
    PluginRun r = exec("ADD", node, id);
    EXPECT_EQ(r.exit_code, 0) << r.doc.dump();
    live.insert(id);
  }
  EtcdOptions o;
  o.endpoints = etcd.Endpoints();
  auto client = EtcdClient::Create(o);
  ASSERT_TRUE(client.ok());
  std::string prefix = fmt::format("{}/pools/net1/ips/", kPrefix);
  ASSERT_OK_AND_ASSIGN(auto kvs, (*client)->RangePrefix(prefix));
  std::set<std::string> held, ips;
  for (const KeyValue& kv : kvs) {
    held.insert(json::parse(kv.value)["containerID"].get<std::string>());
    ips.insert(kv.key);
  }
  EXPECT_EQ(held, live);
  EXPECT_EQ(ips.size(), live.size());
}

TEST_F(EtcdIpamTest, PoolReportCountsEveryNodesHolders) {
  Node a = MakeNode("a"), b = MakeNode("b");
  std::string range = "10.20.0.1-10.20.0.10";
  ASSERT_EQ(Exec("ADD", Conf(a, range), "c1").exit_code, 0);
  ASSERT_EQ(Exec("ADD", Conf(b, range), "c2").exit_code, 0);
  IpamArgs args;
  args.network_name = "net1";
  args.ipam_conf = json::parse(Conf(a, range))["ipam"];
  ASSERT_OK_AND_ASSIGN(std::vector<PoolUsage> report, IpamPoolReport(args));
  ASSERT_THAT(report, SizeIs(1));
  EXPECT_EQ(report[0].total, 10u);
  EXPECT_EQ(report[0].used(), 2u);
  EXPECT_EQ(report[0].free(), 8u);
  std::set<std::string> nodes;
  for (const Reservation& r : report[0].holders) nodes.insert(r.node);
  EXPECT_EQ(nodes, (std::set<std::string>{"a", "b"}));
}

TEST_F(EtcdIpamTest, ReleaseNodeReclaimsOnlyThatNodesAddresses) {
  Node a = MakeNode("a"), b = MakeNode("b");
  std::string range = "10.20.0.1-10.20.0.10";
  ASSERT_EQ(Exec("ADD", Conf(a, range), "c1").exit_code, 0);
  ASSERT_EQ(Exec("ADD", Conf(a, range), "c2").exit_code, 0);
  ASSERT_EQ(Exec("ADD", Conf(b, range), "c3").exit_code, 0);
  IpamArgs args;
  args.network_name = "net1";
  args.ipam_conf = json::parse(Conf(b, range))["ipam"];
  ASSERT_OK_AND_ASSIGN(NodeRelease released, IpamReleaseNode(args, "a"));
  EXPECT_EQ(released.addresses, 2);
  auto records = Records("net1");
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records.begin()->second["containerID"], "c3");
}

TEST(IpamReleaseNodeTest, LocalStoreIsCode7) {
  TempDir dir;
  IpamArgs args;
  args.network_name = "net1";
  args.ipam_conf = {
      {"type", "rdmashare-ipam"}, {"subnet", "10.20.0.0/24"}, {"dataDir", dir.path()}};
  EXPECT_THAT(IpamReleaseNode(args, "a").status(),
              ::rdmashare::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("needs the etcd store")));
}

TEST(IpamPoolReportTest, LocalStoreReportsItsLeases) {
  TempDir dir;
  IpamArgs args;
  args.network_name = "net1";
  args.container_id = "c1";
  args.ifname = "net1";
  args.ipam_conf = {{"type", "rdmashare-ipam"},
                    {"subnet", "10.20.0.0/24"},
                    {"ips", json::array({"10.20.0.1-10.20.0.4"})},
                    {"dataDir", dir.path()}};
  ASSERT_TRUE(IpamAdd(args).ok());
  ASSERT_OK_AND_ASSIGN(std::vector<PoolUsage> report, IpamPoolReport(args));
  ASSERT_THAT(report, SizeIs(1));
  EXPECT_EQ(report[0].total, 4u);
  EXPECT_EQ(report[0].free(), 3u);
  ASSERT_THAT(report[0].holders, SizeIs(1));
  EXPECT_EQ(report[0].holders[0].container_id, "c1");
}

}  // namespace
}  // namespace rdmashare::cni::ipam
