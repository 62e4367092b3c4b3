// Tests of `rdmashare gid`: RoCE v2 GID lookup by value and type, and the NCCL/UCX environment.
#include "common/testing/status_matchers.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::Concat;
using ::rdmashare::cli::testing::RunInProcess;
using ::rdmashare::cli::testing::TestNode;
using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

// Writes GID entry `index` of <ibdev>/ports/1 as the IPv4-mapped GID of `ipv4`.
void WriteGid(const TestNode& node, const std::string& ibdev, int index, const std::string& ipv4,
              const std::string& type, const std::string& ndev) {
  absl::StatusOr<std::string> gid = Ipv4MappedGid(ipv4);
  ASSERT_TRUE(gid.ok());
  std::string port = "class/infiniband/" + ibdev + "/ports/1/";
  node.WriteSys(port + "gids/" + std::to_string(index), *gid);
  node.WriteSys(port + "gid_attrs/types/" + std::to_string(index), type);
  node.WriteSys(port + "gid_attrs/ndevs/" + std::to_string(index), ndev);
}

// A pod's view: rails net1/net2 on mlx5_0/mlx5_1 (v1 at index 2, v2 at index 3). The other
// ibdevs carry GIDs of other pods' net1 (same name, other address): names are ambiguous.
void WritePodGids(const TestNode& node) {
  WriteGid(node, "mlx5_0", 2, "172.16.11.10", "IB/RoCE v1", "net1");
  WriteGid(node, "mlx5_0", 3, "172.16.11.10", "RoCE v2", "net1");
  WriteGid(node, "mlx5_1", 2, "172.16.12.10", "IB/RoCE v1", "net2");
  WriteGid(node, "mlx5_1", 3, "172.16.12.10", "RoCE v2", "net2");
  WriteGid(node, "mlx5_2", 2, "172.16.13.11", "IB/RoCE v1", "net1");
  WriteGid(node, "mlx5_2", 3, "172.16.13.11", "RoCE v2", "net1");
}

TEST(GidTest, Ipv4MappedGidFormatsLikeSysfs) {
  ASSERT_OK_AND_ASSIGN(std::string gid, Ipv4MappedGid("172.16.11.10"));
  EXPECT_EQ(gid, "0000:0000:0000:0000:0000:ffff:ac10:0b0a");
  EXPECT_THAT(Ipv4MappedGid("172.16.11"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"172.16.11\"")));
}

TEST(GidTest, FindsRoceV2IndexByValueNotByName) {
  TestNode node(fakenode::Walkthrough8Rail());
  WritePodGids(node);
  ASSERT_OK_AND_ASSIGN(GidEntry e,
                       FindRoceV2Gid(node.paths(), InterfaceAddress{"net1", "172.16.11.10", 24}));
  EXPECT_EQ(e, (GidEntry{"net1", "172.16.11.10", 24, "mlx5_0", 1, 3}));
}

TEST(GidTest, OnlyRoceV1EntryIsFailedPrecondition) {
  TestNode node(fakenode::Walkthrough8Rail());
  WriteGid(node, "mlx5_4", 2, "172.16.15.10", "IB/RoCE v1", "net5");
  EXPECT_THAT(
      FindRoceV2Gid(node.paths(), InterfaceAddress{"net5", "172.16.15.10", 24}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("mlx5_4/1 index 2 (IB/RoCE v1)")));
}

TEST(GidTest, AddressInNoGidTableIsNotFound) {
  TestNode node(fakenode::Walkthrough8Rail());
  EXPECT_THAT(FindRoceV2Gid(node.paths(), InterfaceAddress{"eth0", "10.233.1.5", 32}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("eth0 10.233.1.5")));
}

TEST(GidTest, CommandPrintsEachRailAndSkipsNonRails) {
  TestNode node(fakenode::Walkthrough8Rail());
  WritePodGids(node);
  FakeAddressSource addrs({{"lo", "127.0.0.1", 8},
                           {"eth0", "10.233.1.5", 32},
                           {"net1", "172.16.11.10", 24},
                           {"net2", "172.16.12.10", 24}});
  Environment env;
  env.addresses = &addrs;
  auto r = RunInProcess(Concat({"gid"}, node.RootFlags()), env);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("net1       172.16.11.10/24    mlx5_0     1     3"));
  EXPECT_THAT(r.out, HasSubstr("net2       172.16.12.10/24    mlx5_1     1     3"));
  EXPECT_THAT(r.err, HasSubstr("eth0 10.233.1.5: not an RDMA rail"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("lo ")));
}

TEST(GidTest, EnvPrintsNcclAndUcxSettings) {
  TestNode node(fakenode::Walkthrough8Rail());
  WritePodGids(node);
  FakeAddressSource addrs(
      {{"eth0", "10.233.1.5", 32}, {"net1", "172.16.11.10", 24}, {"net2", "172.16.12.10", 24}});
  Environment env;
  env.addresses = &addrs;
  auto r = RunInProcess(Concat({"gid", "--env"}, node.RootFlags()), env);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "export NCCL_IB_HCA=mlx5_0,mlx5_1\n"
            "export NCCL_IB_GID_INDEX=3\n"
            "export NCCL_IB_ROCE_VERSION_NUM=2\n"
            "export NCCL_IB_ADDR_FAMILY=AF_INET\n"
            "export NCCL_IB_ADDR_RANGE=172.16.8.0/21\n"
            "export NCCL_SOCKET_IFNAME=eth0\n"
            "export UCX_NET_DEVICES=mlx5_0:1,mlx5_1:1\n");
}

TEST(GidTest, EnvOmitsGidIndexWhenRailsDisagree) {
  std::string env = GidEnvironment(
      {{"net1", "172.16.11.10", 24, "mlx5_0", 1, 3}, {"net2", "172.16.12.10", 24, "mlx5_1", 1, 5}},
      "eth1");
  EXPECT_THAT(env, ::testing::Not(HasSubstr("NCCL_IB_GID_INDEX")));
  EXPECT_THAT(env, HasSubstr("NCCL_SOCKET_IFNAME=eth1\n"));
  EXPECT_THAT(env, HasSubstr("NCCL_IB_HCA=mlx5_0,mlx5_1\n"));
}

TEST(GidTest, EnvAddrRangeOfOneRailIsItsSubnet) {
  std::string env = GidEnvironment({{"net1", "172.16.11.10", 24, "mlx5_0", 1, 3}}, "eth0");
  EXPECT_THAT(env, HasSubstr("NCCL_IB_ADDR_RANGE=172.16.11.0/24\n"));
}

struct GidFailCase {
  std::string name;
  std::vector<InterfaceAddress> addrs;
  std::vector<std::string> flags;
  std::string error;
};

TEST(GidTest, FailuresExitOneWithAClearMessage) {
  std::vector<GidFailCase> cases = {
      {"v1 only", {{"net5", "172.16.15.10", 24}}, {}, "exists only with another type"},
      {"ifname without address",
       {{"net1", "172.16.11.10", 24}},
       {"--ifname", "net9"},
       "interface net9 has no IPv4 address"},
      {"named ifname not a rail",
       {{"eth0", "10.233.1.5", 32}},
       {"--ifname", "eth0"},
       "eth0 10.233.1.5: no RDMA port"},
      {"no rail at all", {{"eth0", "10.233.1.5", 32}}, {}, "no interface has a RoCE v2 GID"},
  };
  TestNode node(fakenode::Walkthrough8Rail());
  WriteGid(node, "mlx5_4", 2, "172.16.15.10", "IB/RoCE v1", "net5");
  for (const GidFailCase& c : cases) {
    FakeAddressSource addrs(c.addrs);
    Environment env;
    env.addresses = &addrs;
    auto r = RunInProcess(Concat(Concat({"gid"}, c.flags), node.RootFlags()), env);
    EXPECT_EQ(r.code, kExitFailure) << c.name;
    EXPECT_THAT(r.err, HasSubstr(c.error)) << c.name;
  }
}

TEST(GidTest, IfnameSelectsOneInterface) {
  TestNode node(fakenode::Walkthrough8Rail());
  WritePodGids(node);
  FakeAddressSource addrs({{"net1", "172.16.11.10", 24}, {"net2", "172.16.12.10", 24}});
  Environment env;
  env.addresses = &addrs;
  auto r = RunInProcess(Concat({"gid", "--ifname=net2"}, node.RootFlags()), env);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("net2"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("net1")));
}

}  // namespace
}  // namespace rdmashare::cli
