#include "common/inotify.h"

#include <unistd.h>

#include <cstddef>

namespace rdmashare {

void DrainInotify(int fd, absl::FunctionRef<void(const struct inotify_event&)> fn) {
  // Room for at least one event with the longest name (NAME_MAX + 1) and many short ones.
  alignas(struct inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    const char* end = buf + n;
    for (const char* p = buf; p + sizeof(struct inotify_event) <= end;) {
      const auto* ev = reinterpret_cast<const struct inotify_event*>(p);
      if (ev->len > static_cast<size_t>(end - p) - sizeof(struct inotify_event)) break;
      fn(*ev);
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
}

}  // namespace rdmashare
