#include "rdma/netns_mode.h"

#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "fmt/format.h"

namespace rdmashare::rdma {
namespace {

constexpr uint16_t kSysGetType = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_SYS_GET);
constexpr size_t kAlign = 4;

size_t Align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

absl::Status ErrnoStatus(const char* op, int err) {
  return absl::UnavailableError(
      fmt::format("RDMA netns mode: {} on NETLINK_RDMA socket: {}", op, std::strerror(err)));
}

// Finds RDMA_NLDEV_SYS_ATTR_NETNS_MODE among the attributes of a SYS_GET reply.
absl::StatusOr<NetnsMode> ParseSysAttrs(const uint8_t* p, size_t len) {
  size_t off = 0;
  while (off + sizeof(struct nlattr) <= len) {
    struct nlattr attr;
    std::memcpy(&attr, p + off, sizeof(attr));
    if (attr.nla_len < sizeof(struct nlattr) || attr.nla_len > len - off) {
      return absl::InvalidArgumentError(fmt::format(
          "RDMA netns mode: reply attribute at offset {} has bad length {}", off, attr.nla_len));
    }
    if ((attr.nla_type & NLA_TYPE_MASK) == RDMA_NLDEV_SYS_ATTR_NETNS_MODE) {
      if (attr.nla_len < sizeof(struct nlattr) + 1) {
        return absl::InvalidArgumentError("RDMA netns mode: empty netns mode attribute");
      }
      uint8_t v = p[off + sizeof(struct nlattr)];
      if (v == 1) return NetnsMode::kShared;
      if (v == 0) return NetnsMode::kExclusive;
      return absl::InvalidArgumentError(
          fmt::format("RDMA netns mode: unknown netns mode value {}", v));
    }
    off += Align(attr.nla_len);
  }
  return absl::InvalidArgumentError("RDMA netns mode: reply has no netns mode attribute");
}

}  // namespace

const char* NetnsModeName(NetnsMode mode) {
  switch (mode) {
    case NetnsMode::kShared:
      return "shared";
    case NetnsMode::kExclusive:
      return "exclusive";
    case NetnsMode::kUnavailable:
      break;
  }
  return "unavailable";
}

absl::StatusOr<std::optional<NetnsMode>> ParseNetnsModeReply(const uint8_t* data, size_t len,
                                                             uint32_t seq) {
  size_t off = 0;
  while (off + sizeof(struct nlmsghdr) <= len) {
    struct nlmsghdr h;
    std::memcpy(&h, data + off, sizeof(h));
    if (h.nlmsg_len < sizeof(struct nlmsghdr) || h.nlmsg_len > len - off) {
      return absl::InvalidArgumentError(fmt::format(
          "RDMA netns mode: netlink message at offset {} has bad length {}", off, h.nlmsg_len));
    }
    const uint8_t* payload = data + off + sizeof(struct nlmsghdr);
    size_t payload_len = h.nlmsg_len - sizeof(struct nlmsghdr);
    if (h.nlmsg_seq == seq) {
      if (h.nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr err;
        if (payload_len < sizeof(err.error)) {
          return absl::InvalidArgumentError("RDMA netns mode: truncated netlink error message");
        }
        std::memcpy(&err.error, payload, sizeof(err.error));
        if (err.error > 0 || err.error < -4095) {
          // The kernel only sends 0 or -errno (MAX_ERRNO is 4095).
          return absl::InvalidArgumentError(
              fmt::format("RDMA netns mode: netlink error code {} is not -errno", err.error));
        }
        if (err.error != 0) {
          int e = -err.error;
          // Kernels before 5.2 have no SYS_GET and so no netns isolation to report.
          if (e == EINVAL || e == EOPNOTSUPP)
            return std::optional<NetnsMode>(NetnsMode::kUnavailable);
          return absl::UnavailableError(
              fmt::format("RDMA netns mode: kernel refused SYS_GET: {}", std::strerror(e)));
        }
      } else if (h.nlmsg_type == kSysGetType) {
        auto mode = ParseSysAttrs(payload, payload_len);
        if (!mode.ok()) return mode.status();
        return std::optional<NetnsMode>(*mode);
      }
    }
    off += Align(h.nlmsg_len);
  }
  return std::optional<NetnsMode>();
}

NetlinkNetnsModeReader::NetlinkNetnsModeReader(std::chrono::milliseconds timeout)
    : timeout_(timeout) {}

absl::StatusOr<NetnsMode> NetlinkNetnsModeReader::Read() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA));
  if (!fd.valid()) {
    int err = errno;
    // No RDMA netlink in this kernel (ib_core absent): nothing to check.
    if (err == EPROTONOSUPPORT || err == EAFNOSUPPORT) return NetnsMode::kUnavailable;
    return ErrnoStatus("socket", err);
  }
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoStatus("setsockopt(SO_RCVTIMEO)", errno);
  }
  uint32_t seq = next_seq_.fetch_add(1);
  struct nlmsghdr req;
  std::memset(&req, 0, sizeof(req));
  req.nlmsg_len = sizeof(req);
  req.nlmsg_type = kSysGetType;
  req.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nlmsg_seq = seq;
  struct sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd.get(), &req, sizeof(req), 0, reinterpret_cast<struct sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return ErrnoStatus("sendto", errno);
  }
  alignas(struct nlmsghdr) uint8_t buf[8192];
  for (int attempt = 0; attempt < 16; ++attempt) {
    struct sockaddr_nl from;
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd.get(), buf, sizeof(buf), 0, reinterpret_cast<struct sockaddr*>(&from),
                           &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::UnavailableError(fmt::format(
            "RDMA netns mode: no reply from the kernel within {} ms", timeout_.count()));
      }
      return ErrnoStatus("recvfrom", errno);
    }
    if (from.nl_pid != 0) continue;  // Only the kernel may answer.
    auto parsed = ParseNetnsModeReply(buf, static_cast<size_t>(n), seq);
    if (!parsed.ok()) return parsed.status();
    if (parsed->has_value()) return **parsed;
  }
  return absl::UnavailableError("RDMA netns mode: kernel sent no SYS_GET reply");
}

absl::StatusOr<NetnsMode> FakeNetnsModeReader::Read() {
  absl::MutexLock lock(&mu_);
  ++reads_;
  return result_;
}

void FakeNetnsModeReader::Set(absl::StatusOr<NetnsMode> result) {
  absl::MutexLock lock(&mu_);
  result_ = std::move(result);
}

int FakeNetnsModeReader::reads() const {
  absl::MutexLock lock(&mu_);
  return reads_;
}

absl::Status CheckNetnsModeForSharing(NetnsMode mode) {
  if (mode != NetnsMode::kExclusive) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "RDMA netns mode is exclusive: pod network namespaces cannot see the host's RDMA devices, "
      "so shared RDMA over macvlan cannot work. Switch to shared mode with `rdma system set "
      "netns shared` (before other namespaces use RDMA), or load ib_core with netns_mode=1; to "
      "make it persistent add `options ib_core netns_mode=1` to /etc/modprobe.d/ib_core.conf "
      "(and rebuild the initramfs)");
}

}  // namespace rdmashare::rdma
