#include "common/inotify.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::TempDir;
using ::testing::IsEmpty;

// An IN_NONBLOCK inotify descriptor watching `dir` for created files.
UniqueFd WatchCreates(const std::string& dir) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  EXPECT_GE(fd.get(), 0);
  EXPECT_GE(::inotify_add_watch(fd.get(), dir.c_str(), IN_CREATE), 0);
  return fd;
}

void Touch(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  ::close(fd);
}

TEST(DrainInotifyTest, CallsOncePerQueuedEventInOrderThenStops) {
  TempDir t;
  UniqueFd fd = WatchCreates(t.path());
  const std::vector<std::string> created = {"a", "bb", std::string(200, 'c')};
  for (const std::string& name : created) Touch(t.path() + "/" + name);
  std::vector<std::string> names;
  DrainInotify(fd.get(), [&](const struct inotify_event& ev) {
    EXPECT_TRUE(ev.mask & IN_CREATE);
    names.push_back(ev.len > 0 ? ev.name : "");
  });
  EXPECT_EQ(names, created);
  // The queue is empty now: a second drain returns at once without calls.
  names.clear();
  DrainInotify(fd.get(), [&](const struct inotify_event& ev) { names.push_back(ev.name); });
  EXPECT_THAT(names, IsEmpty());
}

TEST(DrainInotifyTest, MoreEventsThanOneReadHoldsAreAllDelivered) {
  TempDir t;
  UniqueFd fd = WatchCreates(t.path());
  // 400 events of 16 + 32 bytes each: more than the 8 KiB one read takes.
  for (int i = 0; i < 400; ++i) Touch(t.path() + "/" + std::string(20, 'f') + std::to_string(i));
  int count = 0;
  DrainInotify(fd.get(), [&](const struct inotify_event&) { ++count; });
  EXPECT_EQ(count, 400);
}

TEST(DrainInotifyTest, ClosedOrBadDescriptorMakesNoCall) {
  int calls = 0;
  DrainInotify(-1, [&](const struct inotify_event&) { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace rdmashare
