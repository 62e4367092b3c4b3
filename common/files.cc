#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"

namespace rdmashare {
namespace {

absl::Status ErrnoStatus(int err, const std::string& op, const std::string& path) {
  std::string msg = fmt::format("{} {}: {}", op, path, std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EROFS:
      return absl::FailedPreconditionError(msg);
    case ELOOP:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  std::string left = a;
  while (left.size() > 1 && left.back() == '/') left.pop_back();
  size_t start = 0;
  while (start < b.size() && b[start] == '/') ++start;
  if (left == "/") return "/" + b.substr(start);
  return left + "/" + b.substr(start);
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open", path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return absl::InvalidArgumentError(
          fmt::format("read {}: larger than {} bytes", path, max_bytes));
    }
  }
  return out;
}

absl::StatusOr<std::string> ReadAttr(const std::string& path) {
  ASSIGN_OR_RETURN(std::string content, ReadFile(path, 4096));
  if (content.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("read {}: contains a NUL byte", path));
  }
  while (!content.empty() && (content.back() == '\n' || content.back() == ' ' ||
                              content.back() == '\t' || content.back() == '\r')) {
    content.pop_back();
  }
  return content;
}

absl::StatusOr<int64_t> ReadIntAttr(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadAttr(path));
  if (text.empty()) return absl::InvalidArgumentError(fmt::format("read {}: empty", path));
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0') {
    return absl::InvalidArgumentError(
        fmt::format("read {}: '{}' is not a decimal integer", path, text));
  }
  return static_cast<int64_t>(v);
}

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return ErrnoStatus(errno, "readlink", path);
  return std::string(buf, static_cast<size_t>(n));
}

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return ErrnoStatus(errno, "realpath", path);
  return std::string(buf);
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, "opendir", path);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* ent = ::readdir(dir)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoStatus(err, "readdir", path);
  std::sort(names.begin(), names.end());
  return names;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd.valid()) return ErrnoStatus(errno, "create", tmp);
    size_t off = 0;
    while (off < content.size()) {
      ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        absl::Status st = ErrnoStatus(errno, "write", tmp);
        ::unlink(tmp.c_str());
        return st;
      }
      off += static_cast<size_t>(n);
    }
    if (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0) {
      absl::Status st = ErrnoStatus(errno, "fsync", tmp);
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = ErrnoStatus(errno, "rename to " + path, tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) ::fsync(dfd.get());
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir: empty path");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = path.find('/', pos + 1);
    cur = path.substr(0, next);
    pos = next;
    if (cur.empty() || cur == "/") continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, "mkdir", cur);
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("mkdir {}: exists and is not a directory", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<uint32_t, uint32_t>> ParseDevNumber(const std::string& text) {
  unsigned long major = 0, minor = 0;
  size_t colon = text.find(':');
  auto bad = [&] {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a major:minor device number", text));
  };
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return bad();
  std::string a = text.substr(0, colon), b = text.substr(colon + 1);
  for (const std::string* s : {&a, &b}) {
    if (s->size() > 10) return bad();
    for (char c : *s) {
      if (c < '0' || c > '9') return bad();
    }
  }
  major = std::stoul(a);
  minor = std::stoul(b);
  // Linux dev_t: 12-bit major, 20-bit minor.
  if (major >= (1UL << 12) || minor >= (1UL << 20)) return bad();
  return std::make_pair(static_cast<uint32_t>(major), static_cast<uint32_t>(minor));
}

}  // namespace rdmashare
