// ExclusiveFlock: an exclusive flock(2) on an open file description, taken with a deadline and
// released when the object goes away.
//
// The wait is a blocking flock(2) in a helper thread on a dup of the descriptor (same open file
// description, so the lock it gets is ours): the kernel wakes it the moment the holder unlocks,
// unlike polling with LOCK_NB. On timeout the helper is abandoned; if it gets the lock later it
// drops it at once. A held ExclusiveFlock is a plain move-only value; it must not be shared by
// threads without external synchronisation.
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace rdmashare {

class ExclusiveFlock {
 public:
  // Locks the open file description of `fd` (the object keeps a dup of it; the caller keeps
  // `fd`), waiting at most `timeout`. DeadlineExceeded when another holder still has it after
  // `timeout`, Internal for any other failure. `what` names the locked object in messages.
  static absl::StatusOr<ExclusiveFlock> Acquire(int fd, std::chrono::milliseconds timeout,
                                                const std::string& what);

  ExclusiveFlock(ExclusiveFlock&&) = default;
  // Deleted: replacing a held lock would close its descriptor without unlocking.
  ExclusiveFlock& operator=(ExclusiveFlock&&) = delete;
  // Unlocks (explicitly: other descriptors of the same open file description may stay open).
  ~ExclusiveFlock();

 private:
  explicit ExclusiveFlock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace rdmashare
