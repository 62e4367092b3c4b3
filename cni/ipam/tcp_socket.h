// Deadline-bounded I/O on non-blocking TCP sockets, the layer under the etcd client's HTTP
// connections (plain, and under TLS): dialing one address, waiting for readiness, sending and
// receiving. Every wait is a poll(2) bounded by the caller's deadline (or timeout), which is also
// checked before each poll, so a peer that keeps a socket ready a byte at a time cannot carry an
// operation past it.
//
// Plain functions over descriptors the caller owns (DialTcp returns an owning UniqueFd, opened
// O_CLOEXEC | O_NONBLOCK); no state. Thread-safe for distinct sockets.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cni/ipam/name_lookup.h"
#include "common/unique_fd.h"

namespace rdmashare::cni::ipam {

// Milliseconds left until `deadline`, 0 once it has passed.
int RemainingMs(std::chrono::steady_clock::time_point deadline);

// Waits until `fd` is ready for `events` (POLLIN / POLLOUT). DeadlineExceeded "<what> timed
// out" at the deadline, Unavailable when poll fails.
absl::Status WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline,
                    const char* what);

// Connects a new non-blocking TCP socket (TCP_NODELAY) to `addr` within `timeout_ms`.
// Unavailable with the cause ("connect: Connection refused", "connect timed out after N ms").
absl::StatusOr<UniqueFd> DialTcp(const SockAddr& addr, int timeout_ms);

// Sends all of `data` (MSG_NOSIGNAL) before `deadline`; Unavailable otherwise (a timeout too).
absl::Status SendAllTcp(int fd, const std::string& data,
                        std::chrono::steady_clock::time_point deadline);

// Receives what arrives next into `buf` (at most `cap` bytes), waiting at most until
// `deadline`. The byte count, 0 at end of stream; Unavailable on errors, DeadlineExceeded on
// timeout.
absl::StatusOr<size_t> ReadSomeTcp(int fd, char* buf, size_t cap,
                                   std::chrono::steady_clock::time_point deadline);

}  // namespace rdmashare::cni::ipam
