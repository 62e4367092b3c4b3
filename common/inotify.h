// Reading an inotify descriptor: every queued event, record by record.
//
// Stateless free function; the caller owns the descriptor (IN_NONBLOCK, so draining ends when
// the queue is empty). Thread-safe as far as the descriptor is used by one thread at a time.
#pragma once

#include <sys/inotify.h>

#include "absl/functional/function_ref.h"

namespace rdmashare {

// Reads `fd` until it has nothing queued (or fails) and calls `fn` once per event, in order. The
// kernel returns whole events per read; a record whose length would run past what was read is
// dropped with the rest of that read rather than read out of bounds.
void DrainInotify(int fd, absl::FunctionRef<void(const struct inotify_event&)> fn);

}  // namespace rdmashare
