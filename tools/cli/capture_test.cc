// Tests of `rdmashare capture`: a captured fake node scans and pairs exactly like the source.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/device_scanner.h"
#include "tools/cli/cli.h"
#include "tools/cli/test_util.h"

namespace rdmashare::cli {
namespace {

using ::rdmashare::cli::testing::TestNode;
using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

// The inventory with dev paths made relative to their dev root, so two trees compare.
rdma::NodeInventory Normalized(const HostPaths& paths) {
  rdma::SysfsDeviceScanner scanner(paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  EXPECT_TRUE(inv.ok()) << inv.status().message();
  if (!inv.ok()) return {};
  auto fix = [&](std::optional<rdma::CharDevice>& d) {
    if (d && d->dev_path.rfind(paths.dev_root, 0) == 0) {
      d->dev_path = d->dev_path.substr(paths.dev_root.size());
    }
  };
  for (rdma::RdmaDevice& d : inv->devices) {
    fix(d.uverbs);
    for (rdma::RdmaPort& p : d.ports) {
      fix(p.umad);
      fix(p.issm);
    }
  }
  fix(inv->rdma_cm);
  return *inv;
}

HostPaths CapturePaths(const std::string& dir) {
  HostPaths p;
  p.sys_root = dir + "/sys";
  p.dev_root = dir + "/dev";
  p.host_dev_root = p.dev_root;
  return p;
}

class CaptureRoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CaptureRoundTripTest, ScanOfCaptureEqualsScanOfSource) {
  ASSERT_OK_AND_ASSIGN(fakenode::NodeSpec spec, fakenode::PresetByName(GetParam()));
  TestNode node(spec);
  std::string dir = node.dir().Sub("capture");
  ASSERT_OK_AND_ASSIGN(CaptureStats stats, Capture(node.paths(), dir));
  EXPECT_GT(stats.files, 0);
  rdma::NodeInventory source = Normalized(node.paths());
  rdma::NodeInventory copy = Normalized(CapturePaths(dir));
  EXPECT_EQ(copy, source);
  EXPECT_EQ(copy.devices.size(), source.devices.size());
  for (const rdma::RdmaDevice& d : copy.devices) {
    EXPECT_TRUE(d.usable()) << d.ibdev;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CaptureRoundTripTest,
                         ::testing::Values("walkthrough-8rail", "dual-port-ib", "no-netdev",
                                           "soft-roce", "no-rdma-cm", "dynamic-major"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

TEST(CaptureTest, CaptureKeepsGpusForRails) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string dir = node.dir().Sub("capture");
  ASSERT_OK(Capture(node.paths(), dir).status());
  HostPaths copy = CapturePaths(dir);
  rdma::SysfsDeviceScanner a(node.paths()), b(copy);
  ASSERT_OK_AND_ASSIGN(rdma::NodeInventory inv_a, a.Scan());
  ASSERT_OK_AND_ASSIGN(rdma::NodeInventory inv_b, b.Scan());
  ASSERT_OK_AND_ASSIGN(RailPlan want, PlanRails(node.paths(), inv_a));
  ASSERT_OK_AND_ASSIGN(RailPlan got, PlanRails(copy, inv_b));
  EXPECT_EQ(got.rails, want.rails);
  EXPECT_EQ(got.rails.size(), 8u);
}

TEST(CaptureTest, DeviceNumbersAreListedAndNodesMadeWithTheSameNumbers) {
  TestNode node(fakenode::DynamicMajor());
  std::string dir = node.dir().Sub("capture");
  ASSERT_OK_AND_ASSIGN(CaptureStats stats, Capture(node.paths(), dir));
  ASSERT_OK_AND_ASSIGN(std::string listing, ReadFile(dir + "/dev-numbers.txt"));
  EXPECT_THAT(listing, HasSubstr("uverbs0 511:0\n"));
  EXPECT_THAT(listing, HasSubstr("rdma_cm 10:58\n"));
  EXPECT_EQ(stats.listed, 4);  // uverbs0, umad0, issm0, rdma_cm
  if (geteuid() == 0) {
    EXPECT_EQ(stats.dev_nodes, 4);
    struct stat st;
    ASSERT_EQ(::stat((dir + "/dev/infiniband/uverbs0").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(major(st.st_rdev), 511u);
  }
}

TEST(CaptureTest, SymlinksStayRelative) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string dir = node.dir().Sub("capture");
  ASSERT_OK(Capture(node.paths(), dir).status());
  ASSERT_OK_AND_ASSIGN(std::string link, ReadLink(dir + "/sys/class/infiniband/mlx5_0"));
  EXPECT_EQ(link.rfind("../../devices/pci0000:00/", 0), 0u) << link;
}

TEST(CaptureTest, NonEmptyTargetIsFailedPrecondition) {
  TestNode node(fakenode::Walkthrough8Rail());
  std::string dir = node.dir().Sub("capture");
  rdmashare::testing::WriteTestFile(dir + "/keep", "x");
  EXPECT_THAT(Capture(node.paths(), dir),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is not empty")));
}

}  // namespace
}  // namespace rdmashare::cli
