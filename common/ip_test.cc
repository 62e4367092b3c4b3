#include "common/ip.h"

#include <sys/socket.h>

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

IpAddr Ip(const std::string& s) { return *IpAddr::Parse(s); }
IpPrefix Prefix(const std::string& s) { return *IpPrefix::Parse(s); }

TEST(IpAddrTest, ParsesAndFormatsBothFamilies) {
  EXPECT_EQ(Ip("172.16.11.10").ToString(), "172.16.11.10");
  EXPECT_EQ(Ip("FD00:0:0::0A").ToString(), "fd00::a");
  EXPECT_EQ(Ip("10.0.0.255").Next().ToString(), "10.0.1.0");
  EXPECT_EQ(Ip("fd00::ffff").Next().ToString(), "fd00::1:0");
  EXPECT_EQ(Ip("10.0.1.0").Prev().ToString(), "10.0.0.255");
  EXPECT_FALSE(IpAddr::Parse("10.0.0.256").ok());
  EXPECT_FALSE(IpAddr::Parse("10.0.0.1/24").ok());
  EXPECT_THAT(IpAddr::Parse("ten"), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("'ten' is not an IP address")));
}

TEST(IpAddrTest, OneFamilyConventionWithSocketFamilyAndBytes) {
  IpAddr v4 = Ip("172.16.11.10");
  EXPECT_EQ(v4.family(), 4);
  EXPECT_EQ(v4.af(), AF_INET);
  EXPECT_EQ(v4.size(), 4);
  EXPECT_TRUE(v4.is_v4());
  std::array<uint8_t, 16> b = v4.bytes();
  EXPECT_EQ(b[0], 172);
  EXPECT_EQ(b[3], 10);
  EXPECT_EQ(b[4], 0);
  EXPECT_EQ(IpAddr::FromBytes(4, b.data()), v4);
  IpAddr v6 = Ip("fd00:1::5");
  EXPECT_EQ(v6.family(), 6);
  EXPECT_EQ(v6.af(), AF_INET6);
  EXPECT_EQ(v6.size(), 16);
  EXPECT_EQ(IpAddr::FromBytes(6, v6.bytes().data()), v6);
  EXPECT_EQ(IpAddr().af(), AF_UNSPEC);
  EXPECT_FALSE(IpAddr().valid());
}

TEST(IpAddrTest, LinkLocalUnicast) {
  EXPECT_TRUE(Ip("fe80::1").IsLinkLocalUnicast());
  EXPECT_TRUE(Ip("febf::1").IsLinkLocalUnicast());
  EXPECT_FALSE(Ip("fec0::1").IsLinkLocalUnicast());
  EXPECT_FALSE(Ip("fd00::1").IsLinkLocalUnicast());
  EXPECT_TRUE(Ip("169.254.3.4").IsLinkLocalUnicast());
  EXPECT_FALSE(Ip("10.0.0.1").IsLinkLocalUnicast());
}

TEST(IpPrefixTest, ParseKeepsHostBitsOfAnInterfaceAddress) {
  IpPrefix a = Prefix("172.16.11.10/24");
  EXPECT_EQ(a.family(), 4);
  EXPECT_EQ(a.length(), 24);
  EXPECT_EQ(a.addr(), Ip("172.16.11.10"));
  EXPECT_EQ(a.ToString(), "172.16.11.10/24");
  EXPECT_EQ(a.Masked().ToString(), "172.16.11.0/24");
  EXPECT_FALSE(a.IsNetwork());
  IpPrefix c = Prefix("fd00:1::5/64");
  EXPECT_EQ(c.family(), 6);
  EXPECT_EQ(c.Masked().ToString(), "fd00:1::/64");
  EXPECT_EQ(Prefix("10.1.2.3/19").Masked().ToString(), "10.1.0.0/19");
  EXPECT_EQ(IpPrefix::Host(Ip("10.0.0.1")).ToString(), "10.0.0.1/32");
  EXPECT_TRUE(IpPrefix::Host(Ip("fd00::1")).IsHost());
}

TEST(IpPrefixTest, StrictNetworkParseRejectsHostBits) {
  auto net = IpPrefix::ParseNetwork("172.16.11.5/24");
  ASSERT_FALSE(net.ok());
  EXPECT_THAT(std::string(net.status().message()), HasSubstr("did you mean 172.16.11.0/24"));
  ASSERT_OK_AND_ASSIGN(IpPrefix loose, IpPrefix::ParseNetwork("172.16.11.5/24", false));
  EXPECT_EQ(loose.ToString(), "172.16.11.0/24");
  EXPECT_EQ(loose.Last().ToString(), "172.16.11.255");
  EXPECT_TRUE(loose.Contains(Ip("172.16.11.200")));
  EXPECT_FALSE(loose.Contains(Ip("172.16.12.1")));
  EXPECT_FALSE(loose.Contains(Ip("fd00::1")));
}

TEST(IpPrefixTest, RejectsMalformedText) {
  for (const std::string bad :
       {"", "1.2.3", "1.2.3.4/", "1.2.3.4/33", "fd00::1/129", "x/24", "1.2.3.4/2a", "1.2.3.4/-1",
        "10.0.0.0/x", "10.0.0.0/+8", "10.0.0.0", "fd00::/129"}) {
    EXPECT_THAT(IpPrefix::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad)))
        << bad;
    EXPECT_FALSE(IpPrefix::ParseNetwork(bad, false).ok()) << bad;
  }
  EXPECT_THAT(IpPrefix::Parse("10.0.0.1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no prefix length")));
}

TEST(IpPrefixTest, MembershipAndDefaultRoute) {
  IpPrefix net = *IpPrefix::ParseNetwork("172.16.11.0/24");
  EXPECT_TRUE(net.Contains(Ip("172.16.11.200")));
  EXPECT_FALSE(net.Contains(Ip("172.16.12.1")));
  // An interface address contains its subnet's addresses too.
  EXPECT_TRUE(Prefix("172.16.11.10/24").Contains(Ip("172.16.11.200")));
  EXPECT_TRUE(Prefix("0.0.0.0/0").IsDefault());
  EXPECT_EQ(IpPrefix::Default(6).ToString(), "::/0");
  EXPECT_FALSE(net.IsDefault());
  EXPECT_EQ(IpPrefix::Containing(Ip("10.9.8.7"), 16).ToString(), "10.9.0.0/16");
  EXPECT_EQ(IpPrefix::Containing(Ip("10.9.8.7"), 99).ToString(), "10.9.8.7/32");
}

}  // namespace
}  // namespace rdmashare
