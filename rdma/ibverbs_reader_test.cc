// The real IbverbsReader on this machine. Build and CI machines have no RDMA hardware: the test
// documents that libibverbs (static, with its providers) then lists nothing and reports no
// error, which is what `rdmashare doctor` shows as its sysfs-only line.
#include "rdma/ibverbs_reader.h"

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::rdma {
namespace {

bool HostHasRdmaDevices() {
  absl::StatusOr<std::vector<std::string>> names = ListDir("/sys/class/infiniband");
  return names.ok() && !names->empty();
}

TEST(IbverbsReaderTest, HostWithoutRdmaListsNoDeviceWithoutError) {
  if (HostHasRdmaDevices()) GTEST_SKIP() << "this host has RDMA devices in /sys/class/infiniband";
  IbverbsReader reader;
  ASSERT_OK_AND_ASSIGN(std::vector<VerbsDevice> devices, reader.Devices());
  EXPECT_THAT(devices, ::testing::IsEmpty());
}

TEST(IbverbsReaderTest, HostWithRdmaListsTheSysfsDevices) {
  if (!HostHasRdmaDevices()) GTEST_SKIP() << "no RDMA device in /sys/class/infiniband";
  IbverbsReader reader;
  ASSERT_OK_AND_ASSIGN(std::vector<VerbsDevice> devices, reader.Devices());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, ListDir("/sys/class/infiniband"));
  std::vector<std::string> listed;
  for (const VerbsDevice& d : devices) listed.push_back(d.ibdev);
  EXPECT_THAT(listed, ::testing::UnorderedElementsAreArray(names));
}

}  // namespace
}  // namespace rdmashare::rdma
