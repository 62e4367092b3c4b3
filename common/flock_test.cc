#include "common/flock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare {
namespace {

using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;
using ::rdmashare::testing::TempDir;
using ::testing::HasSubstr;

// A fresh open file description of `path` (flock conflicts between descriptions, not fds).
UniqueFd OpenLockFile(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
}

TEST(ExclusiveFlockTest, FreeLockIsTakenAtOnce) {
  TempDir dir;
  UniqueFd fd = OpenLockFile(dir.Sub("lock"));
  ASSERT_TRUE(fd.valid());
  EXPECT_THAT(ExclusiveFlock::Acquire(fd.get(), std::chrono::milliseconds(0), "lock").status(),
              IsOk());
}

TEST(ExclusiveFlockTest, HeldLockTimesOutWithDeadlineExceededNamingTheObject) {
  TempDir dir;
  UniqueFd a = OpenLockFile(dir.Sub("lock")), b = OpenLockFile(dir.Sub("lock"));
  auto held = ExclusiveFlock::Acquire(a.get(), std::chrono::milliseconds(0), "lock a");
  ASSERT_THAT(held.status(), IsOk());
  auto second = ExclusiveFlock::Acquire(b.get(), std::chrono::milliseconds(50), "pod netns x");
  EXPECT_THAT(second.status(), StatusIs(absl::StatusCode::kDeadlineExceeded,
                                        HasSubstr("pod netns x: still locked by another process "
                                                  "after 50 ms")));
}

TEST(ExclusiveFlockTest, DestructionUnlocksEvenWhileTheCallersDescriptorStaysOpen) {
  TempDir dir;
  UniqueFd a = OpenLockFile(dir.Sub("lock")), b = OpenLockFile(dir.Sub("lock"));
  {
    auto held = ExclusiveFlock::Acquire(a.get(), std::chrono::milliseconds(0), "lock");
    ASSERT_THAT(held.status(), IsOk());
    EXPECT_NE(::flock(b.get(), LOCK_EX | LOCK_NB), 0);
  }
  ASSERT_TRUE(a.valid());
  EXPECT_EQ(::flock(b.get(), LOCK_EX | LOCK_NB), 0);
}

TEST(ExclusiveFlockTest, WaiterGetsTheLockWhenTheHolderReleasesIt) {
  TempDir dir;
  UniqueFd a = OpenLockFile(dir.Sub("lock")), b = OpenLockFile(dir.Sub("lock"));
  std::optional<ExclusiveFlock> held;
  {
    auto h = ExclusiveFlock::Acquire(a.get(), std::chrono::milliseconds(0), "lock");
    ASSERT_THAT(h.status(), IsOk());
    held.emplace(std::move(*h));
  }
  absl::Status waited;
  std::thread waiter([&] {
    waited = ExclusiveFlock::Acquire(b.get(), std::chrono::seconds(30), "lock").status();
  });
  held.reset();
  waiter.join();
  EXPECT_THAT(waited, IsOk());
}

}  // namespace
}  // namespace rdmashare
