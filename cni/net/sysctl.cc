#include "cni/net/sysctl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/files.h"
#include "common/unique_fd.h"
#include "fmt/format.h"

namespace rdmashare::cni::net {
namespace {

absl::StatusOr<std::string> SysctlPath(const std::string& proc_root, bool ipv6,
                                       const std::string& ifname, const std::string& key) {
  for (const std::string* part : {&ifname, &key}) {
    if (part->empty() || part->find('/') != std::string::npos || *part == "." || *part == "..") {
      return absl::InvalidArgumentError(
          fmt::format("sysctl {}/{}: invalid interface or key name", ifname, key));
    }
  }
  return JoinPath(proc_root,
                  fmt::format("sys/net/{}/conf/{}/{}", ipv6 ? "ipv6" : "ipv4", ifname, key));
}

}  // namespace

absl::Status SetInterfaceSysctl(const std::string& proc_root, bool ipv6, const std::string& ifname,
                                const std::string& key, const std::string& value) {
  auto path = SysctlPath(proc_root, ipv6, ifname, key);
  if (!path.ok()) return path.status();
  // /proc/sys entries are regular files; anything else under an injected proc root is refused
  // (opening a FIFO for writing would block until a reader appears).
  struct stat st;
  if (::stat(path->c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("sysctl {}: is {}, not a regular file", *path, FileTypeName(st.st_mode)));
  }
  UniqueFd fd(::open(path->c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    std::string msg = fmt::format("sysctl {}: open failed: {}", *path, std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg) : absl::InternalError(msg);
  }
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::InternalError(
        fmt::format("sysctl {}: writing \"{}\" failed: {}", *path, value, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetInterfaceSysctl(const std::string& proc_root, bool ipv6,
                                               const std::string& ifname, const std::string& key) {
  auto path = SysctlPath(proc_root, ipv6, ifname, key);
  if (!path.ok()) return path.status();
  return ReadAttr(*path);
}

}  // namespace rdmashare::cni::net
