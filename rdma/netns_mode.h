// The RDMA subsystem's network-namespace mode ("rdma system" netns shared|exclusive).
//
// rdmashare needs the shared mode: macvlan interfaces in pod namespaces use the host's RDMA
// devices, which exclusive mode hides from every namespace but the one owning the device.
// NetnsModeReader is the interface; NetlinkNetnsModeReader asks the kernel over RDMA netlink
// (NETLINK_RDMA, RDMA_NLDEV_CMD_SYS_GET); FakeNetnsModeReader serves tests.
//
// Threading: NetlinkNetnsModeReader opens a fresh socket per Read, so concurrent Reads are fine.
// FakeNetnsModeReader is guarded by a mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rdmashare::rdma {

enum class NetnsMode {
  // Every network namespace sees every RDMA device (ib_core netns_mode=1, the default).
  kShared,
  // Each RDMA device belongs to exactly one namespace (netns_mode=0).
  kExclusive,
  // The kernel cannot tell: no RDMA netlink (no ib_core) or a kernel before 5.2.
  kUnavailable,
};

// "shared", "exclusive" or "unavailable".
const char* NetnsModeName(NetnsMode mode);

// Source of the node's RDMA netns mode.
class NetnsModeReader {
 public:
  virtual ~NetnsModeReader() = default;
  // The current mode. Errors: Unavailable (timeout, socket failure), InvalidArgument (a reply
  // the kernel should never send).
  virtual absl::StatusOr<NetnsMode> Read() = 0;
};

// Reads the mode with one RDMA netlink request on a raw NETLINK_RDMA socket. A kernel without
// RDMA netlink (socket() fails with EPROTONOSUPPORT/EAFNOSUPPORT) yields kUnavailable.
class NetlinkNetnsModeReader final : public NetnsModeReader {
 public:
  explicit NetlinkNetnsModeReader(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  absl::StatusOr<NetnsMode> Read() override;

 private:
  const std::chrono::milliseconds timeout_;
  // Netlink sequence numbers of this reader's requests.
  std::atomic<uint32_t> next_seq_{1};
};

// Parses one datagram received after a RDMA_NLDEV_CMD_SYS_GET request with sequence `seq`
// (untrusted bytes; also the fuzzing entry point). Returns the mode when the datagram holds the
// reply, nullopt when it holds nothing conclusive (an ACK, other sequence numbers), an error for
// a kernel error or malformed bytes. A kernel that does not know the command (EINVAL/EOPNOTSUPP,
// kernels before 5.2) yields kUnavailable.
absl::StatusOr<std::optional<NetnsMode>> ParseNetnsModeReply(const uint8_t* data, size_t len,
                                                             uint32_t seq);

// Test double returning a configured result.
class FakeNetnsModeReader final : public NetnsModeReader {
 public:
  explicit FakeNetnsModeReader(absl::StatusOr<NetnsMode> result) : result_(std::move(result)) {}
  absl::StatusOr<NetnsMode> Read() override;
  // Changes what later Reads return.
  void Set(absl::StatusOr<NetnsMode> result);
  // Number of Read calls so far.
  int reads() const;

 private:
  mutable absl::Mutex mu_;
  absl::StatusOr<NetnsMode> result_ ABSL_GUARDED_BY(mu_);
  int reads_ ABSL_GUARDED_BY(mu_) = 0;
};

// OK for kShared and kUnavailable (the caller warns that it could not check); FailedPrecondition
// for kExclusive, with the commands that fix it.
absl::Status CheckNetnsModeForSharing(NetnsMode mode);

}  // namespace rdmashare::rdma
