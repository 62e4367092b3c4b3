// `rdmashare pool`: config loading, and the real CLI binary listing/releasing against a local
// store dir and a real etcd (tests/etcd harness) filled by rdmashare-ipam's own ADDs.
#include "tools/cli/pool.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cni/ipam/etcd_client.h"
#include "cni/ipam/ipam.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cli {
namespace {

using nlohmann::json;
using ::rdmashare::testing::EtcdCluster;
using ::rdmashare::testing::RunResult;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

RunResult Cli(const std::vector<std::string>& args) {
  rdmashare::testing::Subprocess::Options o;
  o.argv = {RS_CLI_BIN};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return rdmashare::testing::RunProgram(o);
}

json LocalIpam(const std::string& data_dir) {
  return {{"type", "rdmashare-ipam"},
          {"subnet", "10.40.0.0/24"},
          {"ips", json::array({"10.40.0.1-10.40.0.4"})},
          {"dataDir", data_dir}};
}

json NetConf(const std::string& name, const json& ipam) {
  return {{"cniVersion", "1.0.0"}, {"name", name}, {"type", "rdmashare-macvlan"}, {"ipam", ipam}};
}

// ADD through the library, as the plugin would (pod metadata from CNI_ARGS).
void Add(const json& conf, const std::string& id) {
  cni::ipam::IpamArgs args;
  args.container_id = id;
  args.ifname = "net1";
  args.netns = "/var/run/netns/" + id;
  args.network_name = conf["name"];
  args.ipam_conf = conf["ipam"];
  args.cni_args = {{"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "pod-" + id}};
  auto r = cni::ipam::IpamAdd(args);
  ASSERT_TRUE(r.ok()) << r.status();
}

// ------------------------------------------------------------------------------ LoadPoolTarget

struct TargetCase {
  std::string name;
  std::string text;
  std::string network;
};

class LoadPoolTargetTest : public ::testing::TestWithParam<TargetCase> {};

TEST_P(LoadPoolTargetTest, FindsNetworkAndIpam) {
  TempDir dir;
  WriteTestFile(dir.Sub("f.json"), GetParam().text);
  ASSERT_OK_AND_ASSIGN(PoolTarget t, LoadPoolTarget(dir.Sub("f.json")));
  EXPECT_EQ(t.network, GetParam().network);
  EXPECT_EQ(t.ipam.value("subnet", ""), "10.40.0.0/24");
}

const char kIpam[] = R"({"type":"rdmashare-ipam","subnet":"10.40.0.0/24"})";

INSTANTIATE_TEST_SUITE_P(
    Forms, LoadPoolTargetTest,
    ::testing::Values(
        TargetCase{
            "NetworkConfig",
            fmt::format(R"({{"cniVersion":"1.0.0","name":"n1","type":"x","ipam":{}}})", kIpam),
            "n1"},
        TargetCase{"ConfList",
                   fmt::format(R"({{"cniVersion":"1.0.0","name":"n2","plugins":[
                       {{"type":"tuning"}},{{"type":"x","ipam":{}}}]}})",
                               kIpam),
                   "n2"},
        TargetCase{
            "NetworkAttachmentDefinition",
            json({{"apiVersion", "k8s.cni.cncf.io/v1"},
                  {"kind", "NetworkAttachmentDefinition"},
                  {"metadata", {{"name", "gpu1-net11"}}},
                  {"spec",
                   {{"config",
                     fmt::format(R"({{"cniVersion":"1.0.0","type":"x","ipam":{}}})", kIpam)}}}})
                .dump(),
            "gpu1-net11"}),
    [](const ::testing::TestParamInfo<TargetCase>& info) { return info.param.name; });

struct BadTargetCase {
  std::string name;
  std::string text;
  std::string message;
};

class BadPoolTargetTest : public ::testing::TestWithParam<BadTargetCase> {};

TEST_P(BadPoolTargetTest, IsInvalidArgumentNamingTheFile) {
  TempDir dir;
  WriteTestFile(dir.Sub("bad.json"), GetParam().text);
  EXPECT_THAT(LoadPoolTarget(dir.Sub("bad.json")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("bad.json"), HasSubstr(GetParam().message))));
}

INSTANTIATE_TEST_SUITE_P(
    Files, BadPoolTargetTest,
    ::testing::Values(
        BadTargetCase{"NotJson", "name: x\n", "not JSON"},
        BadTargetCase{"NoName", R"({"type":"x","ipam":{"type":"rdmashare-ipam"}})",
                      "has no \"name\""},
        BadTargetCase{"OtherIpam", R"({"name":"n","type":"x","ipam":{"type":"host-local"}})",
                      "does not use ipam type rdmashare-ipam"},
        BadTargetCase{"ConfListWithoutOurIpam",
                      R"({"name":"n","plugins":[{"type":"x","ipam":{"type":"dhcp"}}]})",
                      "no plugin of network n uses ipam type rdmashare-ipam"},
        BadTargetCase{"NadWithoutConfig", R"({"kind":"NetworkAttachmentDefinition","spec":{}})",
                      "no spec.config string"},
        BadTargetCase{"NadConfigNotJson",
                      R"({"kind":"NetworkAttachmentDefinition","spec":{"config":"{"}})",
                      "spec.config of the NetworkAttachmentDefinition is not JSON"}),
    [](const ::testing::TestParamInfo<BadTargetCase>& info) { return info.param.name; });

TEST(LoadPoolTargetTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadPoolTarget("/nonexistent/net.json").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/net.json")));
}

// ------------------------------------------------------------------------------ usage

TEST(PoolCliTest, UsageErrorsExitTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases = {
      {{"pool"}, "--conf FILE is required"},
      {{"pool", "frob", "--conf", "/x"}, "unknown action \"frob\""},
      {{"pool", "release", "--conf", "/x"}, "release needs either --node NAME or --quarantined"},
      {{"pool", "release", "--conf", "/x", "--node", "a", "--quarantined"},
       "release needs either --node NAME or --quarantined"},
      {{"pool", "release", "--conf", "/x", "--node", "a", "--ip", "10.0.0.1"},
       "--ip belongs to release --quarantined"},
      {{"pool", "list", "--conf", "/x", "--node", "a"},
       "--node, --quarantined and --pool belong to pool release"},
      {{"pool", "list", "--conf", "/x", "--quarantined"},
       "--node, --quarantined and --pool belong to pool release"},
      {{"pool", "list", "extra", "--conf", "/x"}, "expected 1 argument(s)"},
  };
  for (const Case& c : cases) {
    RunResult r = Cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(c.args) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.error)) << ::testing::PrintToString(c.args);
  }
}

TEST(PoolCliTest, HelpDescribesListAndRelease) {
  RunResult r = Cli({"pool", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("usage: rdmashare pool [flags] [list|release]"));
  EXPECT_THAT(r.out, HasSubstr("--conf"));
}

TEST(PoolCliTest, UnreadableConfExitsOne) {
  RunResult r = Cli({"pool", "--conf", "/nonexistent/net.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/net.json"));
}

// ------------------------------------------------------------------------------ local store

class LocalPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    conf_ = NetConf("localnet", LocalIpam(dir_.Sub("data")));
    WriteTestFile(dir_.Sub("net.json"), conf_.dump());
  }
  TempDir dir_;
  json conf_;
};

TEST_F(LocalPoolTest, ListShowsCountsAndHolders) {
  Add(conf_, "c1");
  RunResult r = Cli({"pool", "--conf", dir_.Sub("net.json")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("network localnet  pool localnet  store local"));
  EXPECT_THAT(r.out, HasSubstr("4 addresses, 1 used, 3 free"));
  // Owner from host-local's record, pod from the per-lease sidecar.
  EXPECT_THAT(r.out, ::testing::ContainsRegex("10\\.40\\.0\\.1 +- +c1 +net1 +ns/pod-c1"));
}

TEST_F(LocalPoolTest, JsonListsEveryHolder) {
  Add(conf_, "c1");
  Add(conf_, "c2");
  RunResult r = Cli({"pool", "list", "--json", "--conf", dir_.Sub("net.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(doc["store"], "local");
  ASSERT_THAT(doc["ranges"], SizeIs(1));
  EXPECT_EQ(doc["ranges"][0]["total"], 4);
  EXPECT_EQ(doc["ranges"][0]["used"], 2);
  EXPECT_EQ(doc["ranges"][0]["free"], 2);
  std::set<std::string> ids;
  for (const json& h : doc["ranges"][0]["holders"]) {
    ids.insert(h["containerID"].get<std::string>());
    EXPECT_EQ(h["podNamespace"], "ns");
    EXPECT_EQ(h["podName"], "pod-" + h["containerID"].get<std::string>());
  }
  EXPECT_EQ(ids, (std::set<std::string>{"c1", "c2"}));
}

TEST_F(LocalPoolTest, DataDirFlagOverridesTheConfig) {
  json other = NetConf("localnet", LocalIpam(dir_.Sub("elsewhere")));
  Add(other, "c9");
  RunResult r =
      Cli({"pool", "--json", "--conf", dir_.Sub("net.json"), "--data-dir", dir_.Sub("elsewhere")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["where"], dir_.Sub("elsewhere"));
  ASSERT_THAT(doc["ranges"][0]["holders"], SizeIs(1));
  EXPECT_EQ(doc["ranges"][0]["holders"][0]["containerID"], "c9");
}

TEST_F(LocalPoolTest, ReleaseIsRefusedForTheLocalStore) {
  Add(conf_, "c1");
  RunResult r = Cli({"pool", "release", "--node", "n1", "--conf", dir_.Sub("net.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("needs the etcd store"));
}

// Quarantines `ip` of `conf`'s network as a conflict probe would.
void Quarantine(const json& conf, const std::string& ip) {
  cni::ipam::IpamArgs args;
  args.container_id = "probe";
  args.ifname = "net1";
  args.network_name = conf["name"];
  args.ipam_conf = conf["ipam"];
  ASSERT_TRUE(cni::ipam::IpamQuarantine(args, ip).ok());
}

TEST_F(LocalPoolTest, ReleaseQuarantinedEndsQuarantinesAndOnlyThem) {
  Add(conf_, "c1");  // 10.40.0.1
  Quarantine(conf_, "10.40.0.2");
  Quarantine(conf_, "10.40.0.3");
  RunResult listed = Cli({"pool", "--conf", dir_.Sub("net.json")});
  EXPECT_THAT(listed.out, HasSubstr("(quarantined)"));
  // One address: refused when a container holds it, unknown when free.
  RunResult held = Cli(
      {"pool", "release", "--quarantined", "--ip", "10.40.0.1", "--conf", dir_.Sub("net.json")});
  EXPECT_EQ(held.exit_code, 1);
  EXPECT_THAT(held.err, HasSubstr("10.40.0.1 is not quarantined (held by container c1)"));
  RunResult free_ip = Cli(
      {"pool", "release", "--quarantined", "--ip", "10.40.0.4", "--conf", dir_.Sub("net.json")});
  EXPECT_EQ(free_ip.exit_code, 1);
  EXPECT_THAT(free_ip.err, HasSubstr("10.40.0.4 is not reserved"));
  RunResult one = Cli(
      {"pool", "release", "--quarantined", "--ip", "10.40.0.2", "--conf", dir_.Sub("net.json")});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_THAT(one.out, HasSubstr("released quarantined 10.40.0.2\n"));
  EXPECT_THAT(one.out, HasSubstr("released 1 quarantined address(es)"));
  RunResult all = Cli({"pool", "release", "--quarantined", "--conf", dir_.Sub("net.json")});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("released quarantined 10.40.0.3\n"));
  RunResult after = Cli({"pool", "--json", "--conf", dir_.Sub("net.json")});
  json doc = json::parse(after.out, nullptr, false);
  ASSERT_THAT(doc["ranges"][0]["holders"], SizeIs(1)) << after.out;
  EXPECT_EQ(doc["ranges"][0]["holders"][0]["containerID"], "c1");
}

// ------------------------------------------------------------------------------ etcd store

class EtcdPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.ok()) << "etcd did not start"; }

  // The network config as node `node` has it.
  json Conf(const std::string& node) {
    json ipam = LocalIpam(dir_.Sub("node-" + node));
    ipam["nodeName"] = node;
    ipam["pool"] = "shared";
    ipam["store"] = {{"type", "etcd"},
                     {"endpoints", etcd_.Endpoints()},
                     {"prefix", "/cli"},
                     {"dialTimeoutMs", 300},
                     {"requestTimeoutMs", 2000}};
    ipam["ips"] = json::array({"10.40.0.1-10.40.0.10"});
    return NetConf("etcdnet", ipam);
  }
  std::string ConfFile(const std::string& node) {
    std::string path = dir_.Sub("conf-" + node + ".json");
    WriteTestFile(path, Conf(node).dump());
    return path;
  }
  std::unique_ptr<cni::ipam::EtcdClient> Client() {
    cni::ipam::EtcdOptions o;
    o.endpoints = etcd_.Endpoints();
    auto c = cni::ipam::EtcdClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  EtcdCluster etcd_{1};
  TempDir dir_;
};

// A quarantine marks an address of the shared pool, whichever node's probe saw the conflict:
// the operator's release ends every node's.
TEST_F(EtcdPoolTest, ReleaseQuarantinedEndsEveryNodesQuarantinesInThePool) {
  Add(Conf("worker2"), "c2");  // 10.40.0.1, held: stays
  Quarantine(Conf("worker1"), "10.40.0.5");
  Quarantine(Conf("worker2"), "10.40.0.6");
  RunResult r = Cli({"pool", "release", "--quarantined", "--conf", ConfFile("worker1")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("released quarantined 10.40.0.5\n"));
  EXPECT_THAT(r.out, HasSubstr("released quarantined 10.40.0.6\n"));
  EXPECT_THAT(r.out, HasSubstr("released 2 quarantined address(es) (network etcdnet)"));
  RunResult after = Cli({"pool", "--json", "--conf", ConfFile("worker1")});
  json doc = json::parse(after.out);
  ASSERT_THAT(doc["ranges"][0]["holders"], SizeIs(1)) << after.out;
  EXPECT_EQ(doc["ranges"][0]["holders"][0]["containerID"], "c2");
}

TEST_F(EtcdPoolTest, ListShowsEveryNodesHolders) {
  Add(Conf("worker1"), "c1");
  Add(Conf("worker2"), "c2");
  Add(Conf("worker2"), "c3");
  RunResult r = Cli({"pool", "--json", "--conf", ConfFile("worker1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["store"], "etcd");
  EXPECT_EQ(doc["pool"], "shared");
  EXPECT_EQ(doc["ranges"][0]["used"], 3);
  EXPECT_EQ(doc["ranges"][0]["free"], 7);
  std::map<std::string, std::string> node_of;
  for (const json& h : doc["ranges"][0]["holders"]) node_of[h["containerID"]] = h["node"];
  EXPECT_EQ(node_of, (std::map<std::string, std::string>{
                         {"c1", "worker1"}, {"c2", "worker2"}, {"c3", "worker2"}}));

  RunResult table = Cli({"pool", "--conf", ConfFile("worker1")});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_THAT(table.out, HasSubstr("10 addresses, 3 used, 7 free"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex("worker2 +c2 +net1 +ns/pod-c2"));
}

TEST_F(EtcdPoolTest, ReleaseReclaimsOnlyThatNodesAddresses) {
  Add(Conf("worker1"), "c1");
  Add(Conf("worker2"), "c2");
  Add(Conf("worker2"), "c3");
  RunResult r = Cli({"pool", "release", "--node", "worker2", "--conf", ConfFile("worker1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("released 2 address(es) and 0 block(s) of node worker2"));
  json doc = json::parse(Cli({"pool", "--json", "--conf", ConfFile("worker1")}).out);
  ASSERT_THAT(doc["ranges"][0]["holders"], SizeIs(1));
  EXPECT_EQ(doc["ranges"][0]["holders"][0]["node"], "worker1");
}

TEST_F(EtcdPoolTest, ReleaseWithPoolFlagTargetsThatPool) {
  json other = Conf("worker2");
  other["ipam"]["pool"] = "other";
  Add(other, "c1");
  Add(Conf("worker2"), "c2");
  RunResult r = Cli(
      {"pool", "release", "--node", "worker2", "--pool", "other", "--conf", ConfFile("worker1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("released 1 address(es)"));
  json doc = json::parse(Cli({"pool", "--json", "--conf", ConfFile("worker1")}).out);
  ASSERT_THAT(doc["ranges"][0]["holders"], SizeIs(1));  // pool "shared" untouched
  EXPECT_EQ(doc["ranges"][0]["holders"][0]["containerID"], "c2");
}

TEST_F(EtcdPoolTest, CorruptRecordIsListedAsUnreadableAndKeptByRelease) {
  Add(Conf("worker2"), "c1");
  auto client = Client();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put("/cli/pools/shared/ips/10.40.0.9", "{not json").ok());
  RunResult r = Cli({"pool", "--conf", ConfFile("worker1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("10.40.0.9"));
  EXPECT_THAT(r.out, HasSubstr("UNREADABLE: etcd record /cli/pools/shared/ips/10.40.0.9 is not "
                               "a reservation (not JSON)"));
  EXPECT_THAT(r.out, HasSubstr("2 used"));
  RunResult rel = Cli({"pool", "release", "--node", "worker2", "--conf", ConfFile("worker1")});
  EXPECT_THAT(rel.out, HasSubstr("released 1 address(es)"));
  auto kv = client->Get("/cli/pools/shared/ips/10.40.0.9");
  ASSERT_TRUE(kv.ok());
  EXPECT_TRUE(kv->has_value());
}

TEST_F(EtcdPoolTest, UnreachableEtcdExitsOneNamingTheEndpoint) {
  std::string conf = ConfFile("worker1");
  etcd_.Kill(0);
  RunResult r = Cli({"pool", "--conf", conf});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("etcd unreachable"));
  EXPECT_THAT(r.err, HasSubstr(etcd_.Endpoints()[0]));
  EXPECT_THAT(r.out, Not(HasSubstr("network etcdnet")));
}

}  // namespace
}  // namespace rdmashare::cli
