#include "cni/ipam/config.h"

#include <unistd.h>

#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using ::rdmashare::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

IpAddr Ip(const std::string& s) { return *IpAddr::Parse(s); }

TEST(ParseIpamConfigTest, PoolFormWithRangesAndSingles) {
  ASSERT_OK_AND_ASSIGN(IpamConfig conf, ParseIpamConfig(json::parse(R"({
    "type":"rdmashare-ipam","subnet":"172.16.11.0/24",
    "ips":["172.16.11.1-172.16.11.200","172.16.11.210"],
    "excludeIPs":["172.16.11.5","172.16.11.10-172.16.11.19"],
    "gateway":"172.16.11.254","routes":[{"dst":"10.0.0.0/8","gw":"172.16.11.254"}]})")));
  ASSERT_EQ(conf.pools.size(), 1u);
  const Pool& pool = conf.pools[0];
  ASSERT_EQ(pool.ranges.size(), 2u);
  EXPECT_EQ(pool.ranges[0].ToString(), "172.16.11.0/24 172.16.11.1-172.16.11.200");
  EXPECT_EQ(pool.ranges[1].ToString(), "172.16.11.0/24 172.16.11.210-172.16.11.210");
  EXPECT_EQ(pool.ranges[0].gateway.ToString(), "172.16.11.254");
  EXPECT_TRUE(pool.Allocatable(Ip("172.16.11.4")));
  EXPECT_FALSE(pool.Allocatable(Ip("172.16.11.5")));
  EXPECT_FALSE(pool.Allocatable(Ip("172.16.11.15")));
  EXPECT_FALSE(pool.Allocatable(Ip("172.16.11.201")));
  EXPECT_TRUE(pool.Allocatable(Ip("172.16.11.210")));
  ASSERT_EQ(conf.routes.size(), 1u);
  EXPECT_EQ(conf.routes[0].dst.ToString(), "10.0.0.0/8");
  EXPECT_EQ(conf.routes[0].gw, Ip("172.16.11.254"));
  EXPECT_EQ(conf.data_dir, "/var/lib/cni/networks");
  EXPECT_EQ(conf.lock_timeout, std::chrono::milliseconds(10000));
}

TEST(ParseIpamConfigTest, PoolFormWithoutIpsIsWholeSubnetMinusSpecialAddresses) {
  ASSERT_OK_AND_ASSIGN(
      IpamConfig conf,
      ParseIpamConfig(json::parse(R"({"subnet":"10.9.0.0/29","gateway":"10.9.0.6"})")));
  const Pool& pool = conf.pools[0];
  std::vector<std::string> ok;
  for (IpAddr ip = Ip("10.9.0.0"); ip <= Ip("10.9.0.7"); ip = ip.Next()) {
    if (pool.Allocatable(ip)) ok.push_back(ip.ToString());
  }
  EXPECT_THAT(ok, ElementsAre("10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5"));
}

TEST(ParseIpamConfigTest, OverlappingIpsEntriesAreMerged) {
  ASSERT_OK_AND_ASSIGN(IpamConfig conf, ParseIpamConfig(json::parse(
                                            R"({"subnet":"10.9.0.0/24","ips":["10.9.0.10-10.9.0.20",
                                            "10.9.0.15-10.9.0.30","10.9.0.31"]})")));
  ASSERT_EQ(conf.pools[0].ranges.size(), 1u);
  EXPECT_EQ(conf.pools[0].ranges[0].ToString(), "10.9.0.0/24 10.9.0.10-10.9.0.31");
}

TEST(ParseIpamConfigTest, DualStackPools) {
  ASSERT_OK_AND_ASSIGN(IpamConfig conf, ParseIpamConfig(json::parse(R"({"pools":[
    {"subnet":"172.16.11.0/24","ips":["172.16.11.1-172.16.11.200"],"gateway":"172.16.11.254"},
    {"subnet":"fd00:11::/64","ips":["fd00:11::10-fd00:11::20"],"gateway":"fd00:11::1",
     "routes":[{"dst":"fd00::/8"}]}]})")));
  ASSERT_EQ(conf.pools.size(), 2u);
  EXPECT_EQ(conf.pools[0].family(), 4);
  EXPECT_EQ(conf.pools[1].family(), 6);
  EXPECT_EQ(conf.pools[1].ranges[0].ToString(), "fd00:11::/64 fd00:11::10-fd00:11::20");
  EXPECT_EQ(conf.routes.size(), 1u);
}

TEST(ParseIpamConfigTest, HostLocalRangesWithDefaults) {
  ASSERT_OK_AND_ASSIGN(IpamConfig conf, ParseIpamConfig(json::parse(R"({"type":"host-local",
    "ranges":[[{"subnet":"10.1.0.0/24"},{"subnet":"10.2.0.0/24","rangeStart":"10.2.0.50",
               "rangeEnd":"10.2.0.60","gateway":"10.2.0.254"}],
              [{"subnet":"fd00:1::/120"}]],
    "routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/tmp/x","lockTimeoutMs":50,
    "quarantineSeconds":5})")));
  ASSERT_EQ(conf.pools.size(), 2u);
  ASSERT_EQ(conf.pools[0].ranges.size(), 2u);
  // host-local defaults: start = network+1, end = broadcast-1 (IPv4), gateway = network+1.
  EXPECT_EQ(conf.pools[0].ranges[0].ToString(), "10.1.0.0/24 10.1.0.1-10.1.0.254");
  EXPECT_EQ(conf.pools[0].ranges[0].gateway.ToString(), "10.1.0.1");
  EXPECT_EQ(conf.pools[0].ranges[1].ToString(), "10.2.0.0/24 10.2.0.50-10.2.0.60");
  EXPECT_EQ(conf.pools[0].ranges[1].gateway.ToString(), "10.2.0.254");
  EXPECT_EQ(conf.pools[1].ranges[0].ToString(), "fd00:1::/120 fd00:1::1-fd00:1::ff");
  EXPECT_EQ(conf.data_dir, "/tmp/x");
  EXPECT_EQ(conf.lock_timeout, std::chrono::milliseconds(50));
  EXPECT_EQ(conf.quarantine, std::chrono::seconds(5));
}

TEST(ParseIpamConfigTest, HostLocalLegacySingleRange) {
  ASSERT_OK_AND_ASSIGN(IpamConfig conf, ParseIpamConfig(json::parse(R"({"subnet":"10.3.0.0/24",
                       "rangeStart":"10.3.0.100","rangeEnd":"10.3.0.110"})")));
  EXPECT_EQ(conf.pools[0].ranges[0].ToString(), "10.3.0.0/24 10.3.0.100-10.3.0.110");
  EXPECT_EQ(conf.pools[0].ranges[0].gateway.ToString(), "10.3.0.1");
}

TEST(ParseIpamConfigTest, EtcdStoreSettings) {
  auto conf = ParseIpamConfig(json::parse(
      R"({"subnet":"10.0.0.0/24","pool":"gpu1-net11","nodeName":"worker1",
          "store":{"type":"etcd","endpoints":["127.0.0.1:2379","10.0.0.2:2379"],
                   "prefix":"/x/","dialTimeoutMs":100,"requestTimeoutMs":900,
                   "maxResponseBytes":1048576}})"));
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->store.type, "etcd");
  EXPECT_THAT(conf->store.endpoints, ElementsAre("127.0.0.1:2379", "10.0.0.2:2379"));
  EXPECT_EQ(conf->store.prefix, "/x");
  EXPECT_EQ(conf->store.dial_timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(conf->store.request_timeout, std::chrono::milliseconds(900));
  EXPECT_EQ(conf->store.max_response_bytes, 1048576u);
  EXPECT_EQ(EtcdOptionsFor(conf->store).max_response_bytes, 1048576u);
  EXPECT_EQ(conf->pool, "gpu1-net11");
  auto node = ResolveNodeName(*conf);
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(*node, "worker1");
}

TEST(ParseIpamConfigTest, EtcdBlocksDefaultToSixteenAndCanBeOff) {
  auto defaults = ParseIpamConfig(json::parse(
      R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:2379"]}})"));
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->store.block_size, 16u);
  EXPECT_EQ(defaults->store.block_release_seconds, 300);
  auto set = ParseIpamConfig(json::parse(
      R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:2379"],
          "blockSize":64,"blockReleaseSeconds":0}})"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->store.block_size, 64u);
  EXPECT_EQ(set->store.block_release_seconds, 0);
  auto off = ParseIpamConfig(json::parse(
      R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:2379"],
          "blockSize":0}})"));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->store.block_size, 0u);
}

TEST(ParseIpamConfigTest, EtcdTlsFiles) {
  ASSERT_OK_AND_ASSIGN(
      IpamConfig conf,
      ParseIpamConfig(json::parse(R"({"subnet":"10.0.0.0/24","store":{"type":"etcd",
          "endpoints":["https://etcd-0.example:2379","10.0.0.2:2379"],
          "tls":{"ca":"/etc/rdmashare/etcd/ca.crt","cert":"/etc/rdmashare/etcd/tls.crt",
                 "key":"/etc/rdmashare/etcd/tls.key"}}})")));
  EXPECT_EQ(conf.store.tls.ca, "/etc/rdmashare/etcd/ca.crt");
  EXPECT_EQ(conf.store.tls.cert, "/etc/rdmashare/etcd/tls.crt");
  EXPECT_EQ(conf.store.tls.key, "/etc/rdmashare/etcd/tls.key");
  EtcdOptions o = EtcdOptionsFor(conf.store);
  EXPECT_EQ(o.tls.ca, conf.store.tls.ca);
  EXPECT_EQ(o.endpoints, conf.store.endpoints);
  EXPECT_EQ(o.tls_sessions.lifetime, kDefaultTlsSessionLifetime);
}

TEST(ParseIpamConfigTest, EtcdTlsSessionCacheSeconds) {
  for (int seconds : {0, 600, 86400}) {
    ASSERT_OK_AND_ASSIGN(
        IpamConfig conf,
        ParseIpamConfig(json{{"subnet", "10.0.0.0/24"},
                             {"store",
                              {{"type", "etcd"},
                               {"endpoints", {"https://10.0.0.2:2379"}},
                               {"tls", {{"ca", "/ca.crt"}, {"sessionCacheSeconds", seconds}}}}}}));
    EXPECT_EQ(EtcdOptionsFor(conf.store).tls_sessions.lifetime, std::chrono::seconds(seconds));
  }
}

TEST(ValidateStoreNameTest, AcceptsNetworkAndPoolNames) {
  for (const char* name : {"gpu1-net11", "net_1.a", "A", "9"}) {
    EXPECT_OK(ValidateStoreName("pool", name)) << name;
  }
  EXPECT_OK(ValidateStoreName("pool", std::string(kMaxStoreNameLength, 'x')));
}

TEST(ValidateStoreNameTest, RejectsPathTraversalWithCode7) {
  for (const std::string& name :
       {std::string("../etc"), std::string("a/b"), std::string("."), std::string(".hidden"),
        std::string("a\0b", 3), std::string("-x"), std::string("a b")}) {
    absl::Status st = ValidateStoreName("network name", name);
    EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("network name")))
        << name;
    EXPECT_EQ(CniCode(st), kInvalidNetworkConfig) << name;
  }
}

TEST(ParseIpamConfigTest, StoreDefaultsToLocal) {
  auto conf = ParseIpamConfig(json::parse(R"({"subnet":"10.0.0.0/24"})"));
  ASSERT_TRUE(conf.ok());
  EXPECT_EQ(conf->store.type, "local");
}

TEST(ResolveNodeNameTest, FallsBackToHostName) {
  IpamConfig conf;
  conf.node_name_file = "/nonexistent/nodename";
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  auto node = ResolveNodeName(conf);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(*node, host);
}

TEST(ResolveNodeNameTest, RejectsInvalidNodeName) {
  IpamConfig conf;
  conf.node_name = "a/b";
  auto node = ResolveNodeName(conf);
  EXPECT_EQ(CniCode(node.status()), kInvalidNetworkConfig);
  EXPECT_THAT(node.status().message(), HasSubstr("node name 'a/b' (from nodeName)"));
}

TEST(ParseIpamConfigTest, ResolvConfIsRead) {
  testing::TempDir dir;
  testing::WriteTestFile(dir.Sub("resolv.conf"),
                         "# comment\nnameserver 10.96.0.10\nnameserver 10.96.0.11\n"
                         "search a.svc b.svc\ndomain cluster.local\noptions ndots:5 edns0\n");
  ASSERT_OK_AND_ASSIGN(
      IpamConfig conf,
      ParseIpamConfig(json{{"subnet", "10.4.0.0/24"}, {"resolvConf", dir.Sub("resolv.conf")}}));
  EXPECT_THAT(conf.dns.nameservers, ElementsAre("10.96.0.10", "10.96.0.11"));
  EXPECT_THAT(conf.dns.search, ElementsAre("a.svc", "b.svc"));
  EXPECT_EQ(conf.dns.domain, "cluster.local");
  EXPECT_THAT(conf.dns.options, ElementsAre("ndots:5", "edns0"));
}

struct BadConfigCase {
  std::string name;
  std::string json;
  std::string message;
};

class BadIpamConfigTest : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(BadIpamConfigTest, IsCode7WithMessage) {
  json doc = json::parse(GetParam().json, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << GetParam().json;
  auto conf = ParseIpamConfig(doc);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(CniCode(conf.status()), kInvalidNetworkConfig) << conf.status();
  EXPECT_THAT(std::string(conf.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadIpamConfigTest,
    ::testing::Values(
        BadConfigCase{"NotObject", R"([])", "\"ipam\" must be an object"},
        BadConfigCase{"NoForm", R"({"type":"rdmashare-ipam"})", "config needs \"ranges\""},
        BadConfigCase{"MixedRangesAndSubnet",
                      R"({"ranges":[[{"subnet":"10.0.0.0/24"}]],"subnet":"10.0.0.0/24"})",
                      "mixes host-local \"ranges\""},
        BadConfigCase{"MixedRangesAndIps",
                      R"({"ranges":[[{"subnet":"10.0.0.0/24"}]],"ips":["10.0.0.1"]})",
                      "use one form"},
        BadConfigCase{"MixedPoolsAndSubnet",
                      R"({"pools":[{"subnet":"10.0.0.0/24"}],"subnet":"10.0.0.0/24"})",
                      "mixes \"pools\""},
        BadConfigCase{"MixedRangeStartAndIps",
                      R"({"subnet":"10.0.0.0/24","rangeStart":"10.0.0.5","ips":["10.0.0.9"]})",
                      "mixes host-local rangeStart/rangeEnd"},
        BadConfigCase{"HostBitsPool", R"({"subnet":"172.16.11.0/16"})", "has host bits set"},
        BadConfigCase{"HostBitsRanges", R"({"ranges":[[{"subnet":"10.0.0.1/24"}]]})",
                      "has host bits set"},
        BadConfigCase{"SubnetNotCidr", R"({"subnet":"10.0.0.0"})", "is not a CIDR"},
        BadConfigCase{"SubnetNotString", R"({"subnet":24})", "\"subnet\" must be a string"},
        BadConfigCase{"SubnetTooSmall", R"({"subnet":"10.0.0.0/31"})", "too small"},
        BadConfigCase{"IpOutsideSubnet", R"({"subnet":"10.0.0.0/24","ips":["10.0.1.5"]})",
                      "ips entry '10.0.1.5' is outside subnet"},
        BadConfigCase{"IpRangeBackwards", R"({"subnet":"10.0.0.0/24","ips":["10.0.0.9-10.0.0.5"]})",
                      "ends before it starts"},
        BadConfigCase{"IpRangeMixedFamilies",
                      R"({"subnet":"10.0.0.0/24","ips":["10.0.0.1-fd00::1"]})", "mixes IPv4"},
        BadConfigCase{"IpNotAddress", R"({"subnet":"10.0.0.0/24","ips":["ten"]})",
                      "'ten' is not an IP address"},
        BadConfigCase{"IpsNotArray", R"({"subnet":"10.0.0.0/24","ips":"10.0.0.1"})",
                      "\"ips\" must be an array of strings"},
        BadConfigCase{"ExcludeNotAddress", R"({"subnet":"10.0.0.0/24","excludeIPs":["x"]})",
                      "excludeIPs entry"},
        BadConfigCase{"GatewayOutside", R"({"subnet":"10.0.0.0/24","gateway":"10.0.1.1"})",
                      "gateway 10.0.1.1 is outside subnet"},
        BadConfigCase{"RangeStartOutside",
                      R"({"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.1.1"}]]})",
                      "rangeStart 10.0.1.1 is outside subnet"},
        BadConfigCase{
            "RangeEndBeforeStart",
            R"({"ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.3"}]]})",
            "is before rangeStart"},
        BadConfigCase{"RangesEmpty", R"({"ranges":[]})", "non-empty array of range sets"},
        BadConfigCase{"RangeSetEmpty", R"({"ranges":[[]]})", "ranges[0] must be a non-empty"},
        BadConfigCase{"RangeSetMixedFamilies",
                      R"({"ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]})",
                      "mixes IPv4 and IPv6"},
        BadConfigCase{"OverlappingRanges",
                      R"({"ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.0/24"}]]})",
                      "overlaps"},
        BadConfigCase{"PoolsEmpty", R"({"pools":[]})", "\"pools\" must be a non-empty array"},
        BadConfigCase{"PoolWithoutSubnet", R"({"pools":[{"ips":["10.0.0.1"]}]})",
                      "pools[0] \"subnet\" is missing"},
        BadConfigCase{"RouteWithoutDst", R"({"subnet":"10.0.0.0/24","routes":[{"gw":"10.0.0.1"}]})",
                      "route \"dst\" is missing"},
        BadConfigCase{"RouteBadDst", R"({"subnet":"10.0.0.0/24","routes":[{"dst":"default"}]})",
                      "route dst"},
        BadConfigCase{"RouteMixedFamily",
                      R"({"subnet":"10.0.0.0/24","routes":[{"dst":"0.0.0.0/0","gw":"fd00::1"}]})",
                      "mixes IPv4 and IPv6"},
        BadConfigCase{"RelativeDataDir", R"({"subnet":"10.0.0.0/24","dataDir":"var/lib"})",
                      "must be absolute"},
        BadConfigCase{"BadLockTimeout", R"({"subnet":"10.0.0.0/24","lockTimeoutMs":0})",
                      "lockTimeoutMs"},
        BadConfigCase{"FsyncNotBool", R"({"subnet":"10.0.0.0/24","fsync":"no"})",
                      "\"fsync\" must be a boolean"},
        BadConfigCase{"MissingResolvConf",
                      R"({"subnet":"10.0.0.0/24","resolvConf":"/nonexistent/resolv.conf"})",
                      "resolvConf /nonexistent/resolv.conf cannot be read"},
        BadConfigCase{"StoreNotObject", R"({"subnet":"10.0.0.0/24","store":"etcd"})",
                      "\"store\" must be an object"},
        BadConfigCase{"StoreWithoutType", R"({"subnet":"10.0.0.0/24","store":{}})",
                      "store.type is required"},
        BadConfigCase{"StoreUnknownType", R"({"subnet":"10.0.0.0/24","store":{"type":"redis"}})",
                      "store.type 'redis' is unknown"},
        BadConfigCase{"EtcdWithoutEndpoints", R"({"subnet":"10.0.0.0/24","store":{"type":"etcd"}})",
                      "store.endpoints must be a non-empty array"},
        BadConfigCase{"EtcdEndpointNotString",
                      R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":[1]}})",
                      "store.endpoints must be a non-empty array"},
        BadConfigCase{
            "EtcdBadDialTimeout",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"dialTimeoutMs":-1}})",
            "store.dialTimeoutMs must be an integer"},
        BadConfigCase{
            "EtcdBadRequestTimeout",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"requestTimeoutMs":"5"}})",
            "store.requestTimeoutMs must be an integer"},
        BadConfigCase{
            "EtcdMaxResponseBytesTooSmall",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"maxResponseBytes":1000}})",
            "store.maxResponseBytes must be an integer in 65536..1073741824"},
        BadConfigCase{
            "EtcdMaxResponseBytesTooLarge",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"maxResponseBytes":1073741825}})",
            "store.maxResponseBytes must be an integer in 65536..1073741824"},
        BadConfigCase{
            "EtcdBlockSizeNotPowerOfTwo",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockSize":24}})",
            "store.blockSize must be 0 (no blocks) or a power of two in 4..65536"},
        BadConfigCase{
            "EtcdBlockSizeTooSmall",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockSize":2}})",
            "store.blockSize must be 0 (no blocks) or a power of two in 4..65536"},
        BadConfigCase{
            "EtcdBlockSizeTooLarge",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockSize":131072}})",
            "store.blockSize must be 0 (no blocks) or a power of two in 4..65536"},
        BadConfigCase{
            "EtcdBlockSizeNegative",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockSize":-16}})",
            "store.blockSize must be 0 (no blocks) or a power of two in 4..65536"},
        BadConfigCase{
            "EtcdBlockSizeNotInteger",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockSize":"16"}})",
            "store.blockSize must be 0 (no blocks) or a power of two in 4..65536"},
        BadConfigCase{
            "EtcdBlockReleaseNegative",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockReleaseSeconds":-1}})",
            "store.blockReleaseSeconds must be an integer in 0..2592000"},
        BadConfigCase{
            "EtcdBlockReleaseTooLarge",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"blockReleaseSeconds":2592001}})",
            "store.blockReleaseSeconds must be an integer in 0..2592000"},
        BadConfigCase{
            "EtcdMaxResponseBytesNotInteger",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"maxResponseBytes":"64M"}})",
            "store.maxResponseBytes must be an integer in 65536..1073741824"},
        BadConfigCase{
            "EtcdTlsNotObject",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":"/x"}})",
            "store.tls must be an object"},
        BadConfigCase{
            "EtcdTlsWithoutCa",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":{"cert":"/c","key":"/k"}}})",
            "store.tls.ca is required"},
        BadConfigCase{
            "EtcdTlsCertWithoutKey",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":{"ca":"/a","cert":"/c"}}})",
            "store.tls.cert and store.tls.key go together"},
        BadConfigCase{
            "EtcdTlsUnknownField",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":{"ca":"/a","cacert":"/c"}}})",
            "store.tls.cacert is unknown"},
        BadConfigCase{
            "EtcdTlsSessionCacheSecondsTooLarge",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":{"ca":"/a","sessionCacheSeconds":86401}}})",
            "store.tls.sessionCacheSeconds must be an integer in 0..86400"},
        BadConfigCase{
            "EtcdTlsSessionCacheSecondsNotInteger",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":{"ca":"/a","sessionCacheSeconds":"1h"}}})",
            "store.tls.sessionCacheSeconds must be an integer in 0..86400"},
        BadConfigCase{
            "EtcdTlsCaNotString",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["127.0.0.1:1"],"tls":{"ca":1}}})",
            "store.tls.\"ca\" must be a string"},
        BadConfigCase{
            "EtcdHttpsWithoutTls",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["https://etcd:2379"]}})",
            "'https://etcd:2379' uses TLS: set store.tls.ca"},
        BadConfigCase{
            "EtcdHttpWithTls",
            R"({"subnet":"10.0.0.0/24","store":{"type":"etcd","endpoints":["http://etcd:2379"],"tls":{"ca":"/a"}}})",
            "'http://etcd:2379' is plain http but store.tls is set"},
        BadConfigCase{"PoolWithSlash", R"({"subnet":"10.0.0.0/24","pool":"a/b"})",
                      "\"pool\" 'a/b' is invalid"},
        BadConfigCase{"PoolDotDot", R"({"subnet":"10.0.0.0/24","pool":".."})",
                      "\"pool\" '..' is invalid"},
        BadConfigCase{"PoolEmpty", R"({"subnet":"10.0.0.0/24","pool":""})", "\"pool\" is empty"},
        BadConfigCase{"PoolNul", "{\"subnet\":\"10.0.0.0/24\",\"pool\":\"a\\u0000b\"}",
                      "\"pool\" 'a?b' is invalid"},
        BadConfigCase{"PoolTooLong",
                      "{\"subnet\":\"10.0.0.0/24\",\"pool\":\"" + std::string(201, 'p') + "\"}",
                      "is 201 characters long; at most 200"},
        BadConfigCase{"PoolNotString", R"({"subnet":"10.0.0.0/24","pool":5})",
                      "\"pool\" must be a string"}),
    [](const ::testing::TestParamInfo<BadConfigCase>& info) { return info.param.name; });

}  // namespace
}  // namespace rdmashare::cni::ipam
