#include "cni/net/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::net {

absl::StatusOr<NetNs> NetNs::Open(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("netns path is empty");
  // A namespace file (nsfs, also through the /proc/<pid>/ns/net magic link) is a regular file.
  // Anything else is refused before it is opened: opening a FIFO for reading blocks until a
  // writer appears, and opening a device can have side effects. The open itself never blocks
  // (O_NONBLOCK) in case the path changes in between; fstatfs below then refuses it.
  struct stat pre {};
  if (::stat(path.c_str(), &pre) != 0) {
    int err = errno;
    std::string msg = fmt::format("netns {}: open failed: {}", path, std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    return absl::InternalError(msg);
  }
  if (!S_ISREG(pre.st_mode)) {
    return absl::InvalidArgumentError(
        fmt::format("netns {}: not a namespace file (it is {})", path, FileTypeName(pre.st_mode)));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int err = errno;
    std::string msg = fmt::format("netns {}: open failed: {}", path, std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    return absl::InternalError(msg);
  }
  UniqueFd ufd(fd);
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) != 0) {
    return absl::InternalError(
        fmt::format("netns {}: fstatfs failed: {}", path, std::strerror(errno)));
  }
  if (static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC) {
    return absl::InvalidArgumentError(
        fmt::format("netns {}: not a namespace file (filesystem magic 0x{:x})", path,
                    static_cast<unsigned long>(sfs.f_type)));
  }
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type < 0 || type != CLONE_NEWNET) {
    return absl::InvalidArgumentError(fmt::format("netns {}: not a network namespace", path));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return absl::InternalError(
        fmt::format("netns {}: fstat failed: {}", path, std::strerror(errno)));
  }
  return NetNs(std::move(ufd), path, st.st_ino);
}

absl::StatusOr<NetNs> NetNs::Current() { return Open("/proc/thread-self/ns/net"); }

absl::StatusOr<ScopedNetNs> ScopedNetNs::Enter(const NetNs& ns) {
  ASSIGN_OR_RETURN(NetNs previous, NetNs::Current());
  if (setns(ns.fd(), CLONE_NEWNET) != 0) {
    return absl::InternalError(
        fmt::format("netns {}: setns failed: {}", ns.path(), std::strerror(errno)));
  }
  return ScopedNetNs(std::move(previous));
}

ScopedNetNs::~ScopedNetNs() {
  if (!previous_) return;
  if (setns(previous_->fd(), CLONE_NEWNET) != 0) {
    spdlog::critical("netns {}: cannot restore the thread's namespace: {}", previous_->path(),
                     std::strerror(errno));
    std::abort();
  }
}

absl::StatusOr<std::string> CreateNamedNetNs(const std::string& name, const std::string& dir) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return absl::InvalidArgumentError(fmt::format("netns name \"{}\" is not valid", name));
  }
  RETURN_IF_ERROR(MakeDirs(dir));
  std::string path = JoinPath(dir, name);
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    std::string msg = fmt::format("netns {}: create failed: {}", path, std::strerror(errno));
    return errno == EEXIST ? absl::AlreadyExistsError(msg) : absl::InternalError(msg);
  }
  ::close(fd);
  absl::Status status;
  // A fresh thread unshares so the caller's thread never changes namespace.
  std::thread worker([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      status = absl::InternalError(
          fmt::format("netns {}: unshare failed: {}", path, std::strerror(errno)));
      return;
    }
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      status = absl::InternalError(
          fmt::format("netns {}: bind mount failed: {}", path, std::strerror(errno)));
    }
  });
  worker.join();
  if (!status.ok()) ::unlink(path.c_str());
  RETURN_IF_ERROR(status);
  return path;
}

absl::Status DeleteNamedNetNs(const std::string& path) {
  if (!PathExists(path)) return absl::NotFoundError(fmt::format("netns {}: not found", path));
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
    return absl::InternalError(
        fmt::format("netns {}: unmount failed: {}", path, std::strerror(errno)));
  }
  if (::unlink(path.c_str()) != 0) {
    return absl::InternalError(
        fmt::format("netns {}: unlink failed: {}", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status RunInNetNs(const NetNs& ns, const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(ScopedNetNs scope, ScopedNetNs::Enter(ns));
  return fn();
}

}  // namespace rdmashare::cni::net
