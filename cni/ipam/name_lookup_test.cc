// Hosts-file parsing of the etcd client's name lookup.
#include "cni/ipam/name_lookup.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

TEST(HostsFileAddressesTest, ParsesHostsFormat) {
  std::string text =
      "127.0.0.1 localhost\n"
      "::1 localhost ip6-localhost\n"
      "# 10.0.0.9 etcd\n"
      "10.0.0.1\tetcd  etcd-0 # trailing comment\n"
      "10.0.0.2 ETCD\n"
      "not-an-ip etcd\n"
      "10.0.0.1 etcd\n";
  EXPECT_EQ(HostsFileAddresses(text, "etcd"), (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(HostsFileAddresses(text, "localhost"), (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(HostsFileAddresses(text, "etcd-0"), (std::vector<std::string>{"10.0.0.1"}));
  EXPECT_TRUE(HostsFileAddresses(text, "etc").empty());
}

}  // namespace
}  // namespace rdmashare::cni::ipam
