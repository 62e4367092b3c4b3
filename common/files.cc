#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

// `name` must be one plain path component.
absl::Status CheckComponent(const std::string& dir_path, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: '{}' is not a file name in the directory", dir_path, name));
  }
  return absl::OkStatus();
}

absl::Status NotRegular(const std::string& path, mode_t mode) {
  if (S_ISLNK(mode)) {
    return absl::FailedPreconditionError(
        fmt::format("open {}: is a symbolic link (not followed)", path));
  }
  return absl::FailedPreconditionError(
      fmt::format("open {}: is {}, not a regular file", path, FileTypeName(mode)));
}

// Reads `name` relative to `dir_fd` (AT_FDCWD: a path), only if it is a regular file.
absl::StatusOr<std::string> ReadRegular(int dir_fd, const std::string& name,
                                        const std::string& display, size_t max_bytes, bool follow) {
  // Refuse before opening: opening a FIFO for reading blocks until a writer appears, and opening
  // a device can have side effects. The descriptor is checked again (the name may change in
  // between), and the open itself never blocks.
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, "stat", display);
  }
  if (!S_ISREG(st.st_mode)) return NotRegular(display, st.st_mode);
  int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (follow ? 0 : O_NOFOLLOW);
  UniqueFd fd(::openat(dir_fd, name.c_str(), flags));
  if (!fd.valid()) {
    if (errno == ELOOP && !follow) return NotRegular(display, S_IFLNK);
    return ErrnoStatus(errno, "open", display);
  }
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, "fstat", display);
  if (!S_ISREG(st.st_mode)) return NotRegular(display, st.st_mode);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", display);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return absl::InvalidArgumentError(
          fmt::format("read {}: larger than {} bytes", display, max_bytes));
    }
  }
  return out;
}

absl::StatusOr<UniqueFd> OpenDirectory(int dir_fd, const std::string& name,
                                       const std::string& display, bool follow_last) {
  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow_last ? 0 : O_NOFOLLOW);
  UniqueFd fd(::openat(dir_fd, name.c_str(), flags));
  if (fd.valid()) return fd;
  int err = errno;
  struct stat st;
  if ((err == ELOOP || err == ENOTDIR) &&
      ::fstatat(dir_fd, name.c_str(), &st, follow_last ? 0 : AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return absl::FailedPreconditionError(
          fmt::format("opendir {}: is a symbolic link (not followed)", display));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          fmt::format("opendir {}: is {}, not a directory", display, FileTypeName(st.st_mode)));
    }
  }
  return ErrnoStatus(err, "opendir", display);
}

// Reads and closes `dir`.
absl::StatusOr<std::vector<std::string>> ReadDirectory(DIR* dir, const std::string& path) {
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

// Writes all of `content`; 0 or the errno of the failure.
int WriteAll(int fd, const std::string& content) {
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    off += static_cast<size_t>(n);
  }
  return 0;
}

std::string RandomHex() {
  uint64_t bits = 0;
  if (::getrandom(&bits, sizeof(bits), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(bits))) {
    // Entropy pool not ready (early boot): still distinct per call; O_EXCL keeps it safe.
    static std::atomic<uint64_t> counter{0};
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    bits = (static_cast<uint64_t>(ts.tv_nsec) << 20) ^ static_cast<uint64_t>(ts.tv_sec) ^
           (static_cast<uint64_t>(::getpid()) << 40) ^ (++counter * 0x9e3779b97f4a7c15ULL);
  }
  return fmt::format("{:016x}", bits);
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

std::string FileTypeName(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return fmt::format("of unknown type {:o}", mode & S_IFMT);
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  return ReadRegular(AT_FDCWD, path, path, max_bytes, /*follow=*/true);
}

absl::StatusOr<std::string> ReadFileNoFollow(const std::string& path, size_t max_bytes) {
  return ReadRegular(AT_FDCWD, path, path, max_bytes, /*follow=*/false);
}

absl::StatusOr<std::string> ReadFileAt(int dir_fd, const std::string& dir_path,
                                       const std::string& name, size_t max_bytes) {
  RETURN_IF_ERROR(CheckComponent(dir_path, name));
  return ReadRegular(dir_fd, name, JoinPath(dir_path, name), max_bytes, /*follow=*/false);
}

absl::StatusOr<UniqueFd> OpenDir(const std::string& path, bool follow_last) {
  return OpenDirectory(AT_FDCWD, path, path, follow_last);
}

absl::StatusOr<UniqueFd> OpenDirAt(int dir_fd, const std::string& dir_path,
                                   const std::string& name) {
  RETURN_IF_ERROR(CheckComponent(dir_path, name));
  return OpenDirectory(dir_fd, name, JoinPath(dir_path, name), /*follow_last=*/false);
}

absl::StatusOr<std::vector<std::string>> ListDirAt(int dir_fd, const std::string& dir_path) {
  // fdopendir takes ownership of its descriptor: give it a fresh one of the same directory.
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "opendir", dir_path);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "opendir", dir_path);
  }
  return ReadDirectory(dir, dir_path);
}

absl::StatusOr<TempFile> CreateTempFileAt(int dir_fd, const std::string& dir_path,
                                          const std::string& prefix, mode_t mode) {
  // O_EXCL makes a taken name (a planted symlink, a FIFO, a leftover) fail instead of being
  // opened; a random suffix makes the next name unguessable, so a few attempts always suffice
  // unless something fills the directory on purpose.
  constexpr int kAttempts = 16;
  for (int i = 0; i < kAttempts; ++i) {
    std::string name = prefix + RandomHex();
    int fd = ::openat(dir_fd, name.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
    if (fd >= 0) return TempFile{UniqueFd(fd), std::move(name)};
    if (errno != EEXIST) return ErrnoStatus(errno, "create", JoinPath(dir_path, name));
  }
  return absl::InternalError(fmt::format("create {}: {} random names were all taken",
                                         JoinPath(dir_path, prefix + "*"), kAttempts));
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
  return ReadDirectory(dir, path);
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
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    return absl::InvalidArgumentError(fmt::format("write {}: not a file name", path));
  }
  ASSIGN_OR_RETURN(UniqueFd dfd, OpenDir(dir));
  ASSIGN_OR_RETURN(TempFile tmp,
                   CreateTempFileAt(dfd.get(), dir, "." + base + kAtomicTempInfix, 0600));
  const std::string tmp_path = JoinPath(dir, tmp.name);
  auto fail = [&](int err, const std::string& op) {
    absl::Status st = ErrnoStatus(err, op, tmp_path);
    ::unlinkat(dfd.get(), tmp.name.c_str(), 0);
    return st;
  };
  if (int err = WriteAll(tmp.fd.get(), content); err != 0) return fail(err, "write");
  // Explicit fchmod: the mode asked for, whatever the umask.
  if (::fchmod(tmp.fd.get(), mode) != 0) return fail(errno, "chmod");
  if (::fsync(tmp.fd.get()) != 0) return fail(errno, "fsync");
  tmp.fd.Reset();
  if (::renameat(dfd.get(), tmp.name.c_str(), dfd.get(), base.c_str()) != 0) {
    if (errno == EISDIR) {
      ::unlinkat(dfd.get(), tmp.name.c_str(), 0);
      return absl::FailedPreconditionError(
          fmt::format("write {}: is a directory, not a regular file", path));
    }
    return fail(errno, "rename to " + path + " from");
  }
  ::fsync(dfd.get());
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
