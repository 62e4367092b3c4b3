#include "common/flock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fmt/format.h"

namespace rdmashare {
namespace {

absl::Status FlockError(const char* op, const std::string& what, int err) {
  return absl::InternalError(fmt::format("{}: {} failed: {}", what, op, std::strerror(err)));
}

}  // namespace

absl::StatusOr<ExclusiveFlock> ExclusiveFlock::Acquire(int fd, std::chrono::milliseconds timeout,
                                                       const std::string& what) {
  UniqueFd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!own.valid()) return FlockError("dup", what, errno);
  if (::flock(own.get(), LOCK_EX | LOCK_NB) == 0) return ExclusiveFlock(std::move(own));
  if (errno != EWOULDBLOCK && errno != EINTR) return FlockError("flock", what, errno);

  struct WaitState {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    bool abandoned ABSL_GUARDED_BY(mu) = false;
    int err ABSL_GUARDED_BY(mu) = 0;
  };
  int helper_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (helper_fd < 0) return FlockError("dup", what, errno);
  auto state = std::make_shared<WaitState>();
  std::thread([state, helper_fd] {
    int rc;
    do {
      rc = ::flock(helper_fd, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    int err = rc == 0 ? 0 : errno;
    absl::MutexLock lock(&state->mu);
    // Abandoned: the caller gave up and nobody will unlock what we just got.
    if (state->abandoned && rc == 0) ::flock(helper_fd, LOCK_UN);
    ::close(helper_fd);
    state->done = true;
    state->err = err;
  }).detach();
  absl::MutexLock lock(&state->mu);
  state->mu.AwaitWithTimeout(absl::Condition(&state->done),
                             absl::Milliseconds(static_cast<int64_t>(timeout.count())));
  if (!state->done) {
    state->abandoned = true;
    return absl::DeadlineExceededError(
        fmt::format("{}: still locked by another process after {} ms", what, timeout.count()));
  }
  if (state->err != 0) return FlockError("flock", what, state->err);
  return ExclusiveFlock(std::move(own));
}

ExclusiveFlock::~ExclusiveFlock() {
  if (fd_.valid()) ::flock(fd_.get(), LOCK_UN);
}

}  // namespace rdmashare
