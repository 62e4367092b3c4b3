#include "cni/ipam/tcp_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

absl::Status WaitFd(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    // Checked before polling too: a peer that keeps the fd ready (one byte at a time) must not
    // carry a loop past its deadline on poll(0)'s "ready" answers.
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(fmt::format("{} timed out", what));
    }
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r > 0) return absl::OkStatus();
    if (r == 0) return absl::DeadlineExceededError(fmt::format("{} timed out", what));
    if (errno != EINTR) return absl::UnavailableError(fmt::format("poll: {}", strerror(errno)));
  }
}

absl::StatusOr<UniqueFd> DialTcp(const SockAddr& addr, int timeout_ms) {
  UniqueFd fd(socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::UnavailableError(fmt::format("socket: {}", strerror(errno)));
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(fmt::format("connect: {}", strerror(errno)));
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0)
      return absl::UnavailableError(fmt::format("connect timed out after {} ms", timeout_ms));
    if (n < 0) return absl::UnavailableError(fmt::format("poll: {}", strerror(errno)));
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return absl::UnavailableError(fmt::format("connect: {}", strerror(err)));
  }
  return fd;
}

absl::Status SendAllTcp(int fd, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::Status st = WaitFd(fd, POLLOUT, deadline, "send");
      if (!st.ok()) return absl::UnavailableError(st.message());
      continue;
    }
    return absl::UnavailableError(fmt::format("send: {}", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> ReadSomeTcp(int fd, char* buf, size_t cap, Clock::time_point deadline) {
  for (;;) {
    ssize_t n = recv(fd, buf, cap, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(fmt::format("recv: {}", strerror(errno)));
    }
    RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline, "read"));
  }
}

}  // namespace rdmashare::cni::ipam
