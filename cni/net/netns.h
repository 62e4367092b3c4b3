// Network namespaces: open one by path (verified to really be a network namespace), enter it on
// the calling thread for a scope, and run a function inside it.
//
// NetNs owns its fd (O_CLOEXEC). ScopedNetNs switches only the calling thread (setns affects one
// thread) and restores the thread's previous namespace on destruction; it must be destroyed on
// the thread that created it. Netlink/packet sockets and /proc/sys/net files opened while inside
// stay bound to that namespace after leaving.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace rdmashare::cni::net {

// An open network namespace.
class NetNs {
 public:
  // Opens `path` (e.g. /var/run/netns/x or /proc/<pid>/ns/net). NotFound when it does not exist,
  // InvalidArgument when it is not a network namespace (not nsfs, or another namespace type).
  static absl::StatusOr<NetNs> Open(const std::string& path);
  // The calling thread's current network namespace.
  static absl::StatusOr<NetNs> Current();

  NetNs(NetNs&&) = default;
  NetNs& operator=(NetNs&&) = default;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Inode number identifying the namespace (two NetNs with equal inode are the same namespace).
  uint64_t inode() const { return inode_; }

 private:
  NetNs(UniqueFd fd, std::string path, uint64_t inode)
      : fd_(std::move(fd)), path_(std::move(path)), inode_(inode) {}
  UniqueFd fd_;
  std::string path_;
  uint64_t inode_ = 0;
};

// Enters a namespace on the calling thread for the lifetime of the object.
class ScopedNetNs {
 public:
  // Switches the calling thread into `ns`. Internal when setns fails.
  static absl::StatusOr<ScopedNetNs> Enter(const NetNs& ns);
  ScopedNetNs(ScopedNetNs&& o) noexcept : previous_(std::move(o.previous_)) { o.previous_.reset(); }
  ScopedNetNs& operator=(ScopedNetNs&&) = delete;
  ScopedNetNs(const ScopedNetNs&) = delete;
  // Restores the previous namespace (aborts the process if that is impossible: continuing on the
  // wrong namespace would configure the wrong host).
  ~ScopedNetNs();

 private:
  explicit ScopedNetNs(NetNs previous) : previous_(std::move(previous)) {}
  std::optional<NetNs> previous_;
};

// Creates a new, empty network namespace pinned by a bind mount at <dir>/<name> (the layout
// `ip netns` uses, so `ip netns exec <name>` works when dir is /run/netns). AlreadyExists when
// the file exists. Used by tests, the benchmark and tools; the CNI itself never creates one.
absl::StatusOr<std::string> CreateNamedNetNs(const std::string& name,
                                             const std::string& dir = "/run/netns");

// Unmounts and removes a namespace made by CreateNamedNetNs. NotFound when absent.
absl::Status DeleteNamedNetNs(const std::string& path);

// Runs `fn` with the calling thread inside `ns`, then restores it.
absl::Status RunInNetNs(const NetNs& ns, const std::function<absl::Status()>& fn);

}  // namespace rdmashare::cni::net
