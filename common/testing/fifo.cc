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
  // Readers blocked in open(2) wake when a writer opens, and read EOF once it closes. Writers
  // blocked in open(2) wake when a reader opens; those read ends stay open until `fn` returns,
  // so a late write lands in the pipe buffer instead of raising SIGPIPE.
  std::vector<int> read_ends;
  while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    for (const std::string& f : fifos) {
      int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) ::close(fd);
      if (read_ends.size() < 64) {
        fd = ::open(f.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) read_ends.push_back(fd);
      }
    }
  }
  done.get();
  for (int fd : read_ends) ::close(fd);
  return false;
}

}  // namespace rdmashare::testing
