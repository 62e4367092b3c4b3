#include "common/testing/fifo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>

namespace rdmashare::testing {

void MakeFifo(const std::string& path) {
  if (::mkfifo(path.c_str(), 0600) != 0) {
    std::fprintf(stderr, "mkfifo %s: %s\n", path.c_str(), std::strerror(errno));
    std::abort();
  }
}

bool FinishesWithin(const std::function<void()>& fn, const std::vector<std::string>& fifos,
                    std::chrono::milliseconds timeout) {
  std::future<void> done = std::async(std::launch::async, fn);
  if (done.wait_for(timeout) == std::future_status::ready) {
    done.get();
    return true;
  }
  while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    for (const std::string& f : fifos) {
      int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) ::close(fd);
    }
  }
  done.get();
  return false;
}

}  // namespace rdmashare::testing
