// Block geometry (no store): alignment, narrowing a pool to blocks, the first free block, key
// segments.
#include "cni/ipam/blocks.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace rdmashare::cni::ipam {
namespace {

IpAddr A(const std::string& s) { return *IpAddr::Parse(s); }
IpPrefix N(const std::string& s) { return *IpPrefix::ParseNetwork(s); }

Pool PoolOf(const std::string& ipam) {
  auto conf = ParseIpamConfig(nlohmann::json::parse(ipam));
  EXPECT_TRUE(conf.ok()) << conf.status();
  return conf->pools.at(0);
}

TEST(BlocksTest, PrefixAndAlignment) {
  EXPECT_EQ(BlockPrefix(4, 16), 28);
  EXPECT_EQ(BlockPrefix(4, 4), 30);
  EXPECT_EQ(BlockPrefix(6, 16), 124);
  EXPECT_EQ(BlockPrefix(4, 65536), 16);
  EXPECT_EQ(BlockOf(A("10.40.0.17"), 16), N("10.40.0.16/28"));
  EXPECT_EQ(BlockOf(A("10.40.0.15"), 16), N("10.40.0.0/28"));
  EXPECT_EQ(BlockOf(A("fd00::1f"), 16), N("fd00::10/124"));
  EXPECT_EQ(IpPrefix::Containing(A("10.1.2.3"), 0), N("0.0.0.0/0"));
  EXPECT_EQ(IpPrefix::Containing(A("10.1.2.3"), 40), N("10.1.2.3/32"));  // clamped
}

TEST(BlocksTest, NarrowKeepsSubnetGatewayAndOrder) {
  Pool pool = PoolOf(R"({"subnet":"10.40.0.0/24","ips":["10.40.0.10-10.40.0.40"],
                         "gateway":"10.40.0.17"})");
  Pool narrow = NarrowToBlocks(pool, {N("10.40.0.32/28"), N("10.40.0.16/28"), N("10.50.0.0/28")});
  ASSERT_EQ(narrow.ranges.size(), 2u);
  EXPECT_EQ(narrow.ranges[0].start, A("10.40.0.16"));
  EXPECT_EQ(narrow.ranges[0].end, A("10.40.0.31"));
  EXPECT_EQ(narrow.ranges[1].start, A("10.40.0.32"));
  EXPECT_EQ(narrow.ranges[1].end, A("10.40.0.40"));   // cut at the range's end
  EXPECT_FALSE(narrow.Allocatable(A("10.40.0.17")));  // the gateway stays excluded
  EXPECT_TRUE(narrow.Allocatable(A("10.40.0.18")));
  EXPECT_FALSE(narrow.Allocatable(A("10.40.0.12")));  // outside the blocks
  EXPECT_TRUE(NarrowToBlocks(pool, {N("10.40.1.0/28")}).ranges.empty());
  EXPECT_TRUE(NarrowToBlocks(pool, {N("fd00::/124")}).ranges.empty());
}

TEST(BlocksTest, FirstFreeBlockSkipsClaimedAndFullBlocks) {
  Pool pool = PoolOf(R"({"subnet":"10.40.0.0/24","ips":["10.40.0.1-10.40.0.50"]})");
  EXPECT_EQ(FirstFreeBlock(pool, 16, {}, {}), N("10.40.0.0/28"));
  EXPECT_EQ(FirstFreeBlock(pool, 16, {N("10.40.0.0/28")}, {}), N("10.40.0.16/28"));
  // Every allocatable address of 10.40.0.16/28 is taken: the next one.
  std::set<IpAddr> taken;
  for (int i = 16; i < 32; ++i) taken.insert(A("10.40.0." + std::to_string(i)));
  EXPECT_EQ(FirstFreeBlock(pool, 16, {N("10.40.0.0/28")}, taken), N("10.40.0.32/28"));
  EXPECT_EQ(
      FirstFreeBlock(
          pool, 16, {N("10.40.0.0/28"), N("10.40.0.16/28"), N("10.40.0.32/28"), N("10.40.0.48/28")},
          {}),
      std::nullopt);
  // A block holding only the range's last address (10.40.0.48/28 has .48-.50) still counts.
  EXPECT_EQ(
      FirstFreeBlock(pool, 16, {N("10.40.0.0/28"), N("10.40.0.16/28"), N("10.40.0.32/28")}, {}),
      N("10.40.0.48/28"));
}

TEST(BlocksTest, FirstFreeBlockOfAHugeIpv6PoolIsFoundEarlyAndBounded) {
  Pool pool = PoolOf(R"({"subnet":"fd00::/64"})");
  std::set<IpPrefix> claimed;
  for (int i = 0; i < 4; ++i) claimed.insert(BlockOf(A("fd00::" + std::to_string(i * 10)), 16));
  auto b = FirstFreeBlock(pool, 16, claimed, {});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->length(), 124);
  EXPECT_EQ(claimed.count(*b), 0u);
  // The visit budget ends the search instead of walking 2^60 blocks.
  EXPECT_EQ(FirstFreeBlock(pool, 16, claimed, {}, /*max_visits=*/2), std::nullopt);
}

TEST(BlocksTest, KeySegmentRoundTripAndBadSegments) {
  EXPECT_EQ(BlockKeySegment(N("10.40.0.16/28")), "10.40.0.16_28");
  EXPECT_EQ(BlockKeySegment(N("fd00::10/124")), "fd00::10_124");
  EXPECT_EQ(*ParseBlockKeySegment("10.40.0.16_28"), N("10.40.0.16/28"));
  EXPECT_EQ(*ParseBlockKeySegment("fd00::10_124"), N("fd00::10/124"));
  for (const char* bad : {"", "10.40.0.16", "10.40.0.17_28", "10.40.0.16_33", "x_28", "10.40.0.16_",
                          "10.40.0.16_-1", "10.40.0.16_2 8"}) {
    EXPECT_FALSE(ParseBlockKeySegment(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace rdmashare::cni::ipam
