#include "cni/ipam/local_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/flock.h"
#include "common/ip.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

constexpr char kLockFile[] = "lock";
constexpr char kLastPrefix[] = "last_reserved_ip.";
constexpr char kMetaDir[] = ".meta";
constexpr char kLineBreak[] = "\r\n";

absl::Status IoError(const std::string& op, const std::string& path, int err) {
  return CniError(kIoFailure, fmt::format("ipam store: {} {}: {}", op, path, std::strerror(err)));
}

class FileLock : public StoreLock {
 public:
  FileLock(UniqueFd fd, ExclusiveFlock lock) : fd_(std::move(fd)), lock_(std::move(lock)) {}

 private:
  UniqueFd fd_;
  ExclusiveFlock lock_;  // destroyed (unlocked) before fd_ closes
};

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    if (std::isprint(static_cast<unsigned char>(c))) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Store-level refusal of what a files.h helper reported (symlink, FIFO, ...), as an I/O failure.
absl::Status StoreError(const absl::Status& st) {
  return CniError(kIoFailure, fmt::format("ipam store: {}", st.message()));
}

// Fails when `name` in `dir_fd` exists and is not a regular file (a symlink included): the store
// never follows a link out of its directory nor opens a FIFO or device planted in it.
absl::Status RequireRegularOrAbsent(int dir_fd, const std::string& dir_path,
                                    const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return IoError("stat", JoinPath(dir_path, name), errno);
  }
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  return CniError(kIoFailure,
                  fmt::format("ipam store: {} is {}, not a regular file; refusing to use it "
                              "(remove it if nothing should be there)",
                              JoinPath(dir_path, name), FileTypeName(st.st_mode)));
}

// The sidecar directory <network dir>/.meta, never followed when a symlink. NotFound passes
// through when it is absent and `create` is false.
absl::StatusOr<UniqueFd> OpenMetaDir(int net_fd, const std::string& net_path, bool create) {
  if (create && ::mkdirat(net_fd, kMetaDir, 0700) != 0 && errno != EEXIST) {
    return IoError("mkdir", JoinPath(net_path, kMetaDir), errno);
  }
  auto fd = OpenDirAt(net_fd, net_path, kMetaDir);
  if (!fd.ok() && fd.status().code() != absl::StatusCode::kNotFound) {
    return StoreError(fd.status());
  }
  return fd;
}

void ReadMeta(int meta_fd, const std::string& meta_path, const std::string& ip, Reservation* r) {
  auto text = ReadFileAt(meta_fd, meta_path, ip, 64 * 1024);
  if (!text.ok() && text.status().code() == absl::StatusCode::kNotFound) return;
  JsonLimits limits;
  limits.max_depth = 8;
  limits.max_bytes = 64 * 1024;
  nlohmann::json meta =
      text.ok()
          ? ParseJsonBounded(*text, JoinPath(meta_path, ip), limits).value_or(nlohmann::json())
          : nlohmann::json();
  if (!meta.is_object()) {
    spdlog::warn("ipam store: sidecar {} is unreadable; ignoring it{}", JoinPath(meta_path, ip),
                 text.ok() ? "" : fmt::format(" ({})", text.status().message()));
    return;
  }
  auto str = [&meta](const char* key) {
    auto it = meta.find(key);
    return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  r->netns = str("netns");
  r->pod_namespace = str("podNamespace");
  r->pod_name = str("podName");
  r->pod_uid = str("podUid");
}

constexpr char kTempPrefix[] = ".tmp-";

// Removes temp files (kTempPrefix) of `dir` older than kStaleTempAge: a writer finishes within
// milliseconds, so an old one was left by a process killed between write and rename/link. Age,
// not the pid in the name, decides: the caller may live in another pid namespace.
void SweepStaleTemps(int dir_fd, const std::string& dir, const std::vector<std::string>& names) {
  const time_t now = ::time(nullptr);
  for (const std::string& name : names) {
    if (name.rfind(kTempPrefix, 0) != 0) continue;
    std::string path = JoinPath(dir, name);
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    if (now - st.st_mtime < LocalStore::kStaleTempAge.count()) continue;
    if (::unlinkat(dir_fd, name.c_str(), 0) == 0) {
      spdlog::info("ipam store: removed {} (left by a writer killed mid-write)", path);
    }
  }
}

// Writes `content` to a fresh hidden temp file ".tmp-<name>-<random>" in `dir_fd`, created
// exclusively (fdatasync'ed when `sync`), and returns its name.
absl::StatusOr<std::string> WriteTemp(int dir_fd, const std::string& dir, const std::string& name,
                                      const std::string& content, bool sync) {
  auto tmp = CreateTempFileAt(dir_fd, dir, fmt::format("{}{}-", kTempPrefix, name), 0600);
  if (!tmp.ok()) return StoreError(tmp.status());
  if (::write(tmp->fd.get(), content.data(), content.size()) !=
          static_cast<ssize_t>(content.size()) ||
      (sync && ::fdatasync(tmp->fd.get()) != 0)) {
    int err = errno;
    ::unlinkat(dir_fd, tmp->name.c_str(), 0);
    return IoError("write", JoinPath(dir, tmp->name), err);
  }
  return tmp->name;
}

// Atomically replaces `name` in `dir_fd` (temp file + renameat(2), which replaces a symlink
// there instead of following it), without fsync: used for the sidecar and last_reserved_ip,
// which are hints (a lost or torn one is ignored on read).
absl::Status ReplaceFile(int dir_fd, const std::string& dir, const std::string& name,
                         const std::string& content) {
  ASSIGN_OR_RETURN(std::string tmp, WriteTemp(dir_fd, dir, name, content, /*sync=*/false));
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return IoError("rename", JoinPath(dir, name), err);
  }
  return absl::OkStatus();
}

}  // namespace

Reservation ParseRecord(const std::string& ip, const std::string& content,
                        const std::string& path) {
  Reservation r;
  r.ip = ip;
  // Only trailing whitespace is insignificant: a record starting with a line break has no id.
  std::string text = content;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t br = text.find(kLineBreak);
  std::string id = br == std::string::npos ? text : text.substr(0, br);
  std::string second = br == std::string::npos ? "" : text.substr(br + 2);
  auto corrupt = [&](const std::string& why) {
    Reservation bad;
    bad.ip = ip;
    bad.error =
        fmt::format("record {} is corrupt ({}): content '{}'", path, why, Printable(content));
    return bad;
  };
  if (id == kQuarantineOwner) {
    if (!AllDigits(second)) return corrupt("quarantine record without an expiry");
    r.container_id = id;
    r.quarantine_until = std::strtoll(second.c_str(), nullptr, 10);
    return r;
  }
  if (!ValidateContainerId(id).ok()) return corrupt("no valid container id");
  if (br != std::string::npos && !ValidateIfName(second).ok()) {
    return corrupt("no valid interface name");
  }
  r.container_id = id;
  r.ifname = second;
  return r;
}

std::string EncodeRecord(const Reservation& r) {
  if (r.quarantined())
    return fmt::format("{}{}{}", kQuarantineOwner, kLineBreak, r.quarantine_until);
  return r.container_id + kLineBreak + r.ifname;
}

std::vector<Reservation> FilterByOwner(const std::vector<Reservation>& all,
                                       const std::string& container_id, const std::string& ifname) {
  std::vector<Reservation> out;
  for (const Reservation& r : all) {
    if (r.OwnedBy(container_id, ifname)) out.push_back(r);
  }
  return out;
}

LocalStore::LocalStore(std::string data_dir, bool durable)
    : data_dir_(std::move(data_dir)), durable_(durable) {}

absl::StatusOr<Reservation> LocalStore::Get(const std::string& network, const std::string& ip) {
  std::string dir = NetworkDir(network);
  std::string path = JoinPath(dir, ip);
  auto not_reserved = [&] {
    return CniError(kUnknownContainer,
                    fmt::format("ipam store: network {}: {} is not reserved", network, ip));
  };
  auto dir_fd = OpenNetworkDir(network, /*create=*/false);
  if (!dir_fd.ok()) {
    if (dir_fd.status().code() == absl::StatusCode::kNotFound) return not_reserved();
    return dir_fd.status();
  }
  auto content = ReadFileAt(dir_fd->get(), dir, ip, 4096);
  if (!content.ok()) {
    if (content.status().code() == absl::StatusCode::kNotFound) return not_reserved();
    return StoreError(content.status());
  }
  Reservation r = ParseRecord(ip, *content, path);
  if (!r.error.empty()) return r;
  auto meta_fd = OpenMetaDir(dir_fd->get(), dir, /*create=*/false);
  if (meta_fd.ok()) {
    ReadMeta(meta_fd->get(), JoinPath(dir, kMetaDir), ip, &r);
  } else if (meta_fd.status().code() != absl::StatusCode::kNotFound) {
    spdlog::warn("{}; sidecar of {} ignored", meta_fd.status().message(), ip);
  }
  return r;
}

std::string LocalStore::NetworkDir(const std::string& network) const {
  return JoinPath(data_dir_, network);
}

absl::StatusOr<UniqueFd> LocalStore::OpenNetworkDir(const std::string& network, bool create) {
  const std::string dir = NetworkDir(network);
  if (create) {
    absl::Status st = MakeDirs(dir, 0700);
    if (!st.ok()) {
      return CniError(kIoFailure,
                      fmt::format("ipam store: cannot create {}: {}", dir, st.message()));
    }
  }
  // data_dir itself may be reached through a link (an operator's choice); the network's directory
  // may not: every record, the lock and the sidecars live in it.
  auto fd = OpenDir(dir, /*follow_last=*/false);
  if (!fd.ok() && (create || fd.status().code() != absl::StatusCode::kNotFound)) {
    return StoreError(fd.status());
  }
  return fd;
}

absl::StatusOr<std::unique_ptr<StoreLock>> LocalStore::Lock(const std::string& network,
                                                            std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(UniqueFd dir_fd, OpenNetworkDir(network, /*create=*/true));
  const std::string dir = NetworkDir(network);
  std::string path = JoinPath(dir, kLockFile);
  RETURN_IF_ERROR(RequireRegularOrAbsent(dir_fd.get(), dir, kLockFile));
  // O_NOFOLLOW|O_NONBLOCK: a symlink or FIFO swapped in after the check is refused, not opened.
  UniqueFd fd(::openat(dir_fd.get(), kLockFile,
                       O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600));
  if (!fd.valid()) return IoError("open", path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IoError("fstat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return CniError(kIoFailure, fmt::format("ipam store: {} is {}, not a regular file", path,
                                            FileTypeName(st.st_mode)));
  }
  // The wait wakes the moment the holder unlocks (common/flock.h), bounded by `timeout`.
  absl::StatusOr<ExclusiveFlock> lock = ExclusiveFlock::Acquire(fd.get(), timeout, path);
  if (!lock.ok()) {
    if (absl::IsDeadlineExceeded(lock.status())) {
      return CniError(kTryAgainLater, fmt::format("ipam store: network {}: lock {} still held by "
                                                  "another process after {} ms",
                                                  network, path, timeout.count()));
    }
    return CniError(kIoFailure, fmt::format("ipam store: {}", lock.status().message()));
  }
  return std::unique_ptr<StoreLock>(new FileLock(std::move(fd), *std::move(lock)));
}

absl::StatusOr<std::vector<Reservation>> LocalStore::List(const std::string& network) {
  std::string dir = NetworkDir(network);
  std::vector<Reservation> out;
  auto dir_fd = OpenNetworkDir(network, /*create=*/false);
  if (!dir_fd.ok()) {
    if (dir_fd.status().code() == absl::StatusCode::kNotFound) return out;
    return dir_fd.status();
  }
  auto names = ListDirAt(dir_fd->get(), dir);
  if (!names.ok()) {
    return CniError(kIoFailure,
                    fmt::format("ipam store: list {}: {}", dir, names.status().message()));
  }
  SweepStaleTemps(dir_fd->get(), dir, *names);
  if (auto meta_fd = OpenMetaDir(dir_fd->get(), dir, /*create=*/false); meta_fd.ok()) {
    const std::string meta_dir = JoinPath(dir, kMetaDir);
    if (auto meta = ListDirAt(meta_fd->get(), meta_dir); meta.ok()) {
      SweepStaleTemps(meta_fd->get(), meta_dir, *meta);
    }
  }
  for (const std::string& name : *names) {
    if (name.empty() || name[0] == '.' || name == kLockFile || name.rfind(kLastPrefix, 0) == 0) {
      continue;
    }
    auto ip = IpAddr::Parse(name);
    if (!ip.ok()) continue;
    std::string path = JoinPath(dir, name);
    auto content = ReadFileAt(dir_fd->get(), dir, name, 4096);
    Reservation r;
    if (!content.ok()) {
      r.ip = ip->ToString();
      r.error = fmt::format("record {} is unreadable: {}", path, content.status().message());
    } else {
      r = ParseRecord(ip->ToString(), *content, path);
    }
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<bool> LocalStore::Reserve(const std::string& network, const Reservation& r) {
  ASSIGN_OR_RETURN(UniqueFd dir_fd, OpenNetworkDir(network, /*create=*/true));
  std::string dir = NetworkDir(network);
  std::string path = JoinPath(dir, r.ip);
  struct stat existing;
  if (::fstatat(dir_fd.get(), r.ip.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) return false;
  // The record's content is made durable before it becomes visible (fdatasync, then link(2)),
  // so a crash never leaves a torn record (unless the store was built non-durable). The directory
  // itself is not fsync'ed: a record lost to a power cut belonged to a pod that did not survive it
  // either (the next GC or a DEL cleans up anyway), and each fsync costs milliseconds on the ADD
  // path.
  ASSIGN_OR_RETURN(std::string tmp, WriteTemp(dir_fd.get(), dir, r.ip, EncodeRecord(r), durable_));
  RDMASHARE_FAILPOINT("ipam.store.reserve.after_temp");
  // link(2) fails with EEXIST instead of replacing: a record is never overwritten, even by a
  // process that does not honour our lock.
  int rc = ::linkat(dir_fd.get(), tmp.c_str(), dir_fd.get(), r.ip.c_str(), 0);
  int err = errno;
  ::unlinkat(dir_fd.get(), tmp.c_str(), 0);
  if (rc != 0) {
    if (err == EEXIST) return false;
    return IoError("link", path, err);
  }
  RDMASHARE_FAILPOINT("ipam.store.reserve.after_record");
  if (r.quarantined()) return true;
  nlohmann::json meta = {{"containerID", r.container_id},
                         {"ifname", r.ifname},
                         {"netns", r.netns},
                         {"podNamespace", r.pod_namespace},
                         {"podName", r.pod_name},
                         {"podUid", r.pod_uid},
                         {"network", network}};
  std::string meta_dir = JoinPath(dir, kMetaDir);
  auto meta_fd = OpenMetaDir(dir_fd.get(), dir, /*create=*/true);
  absl::Status st = meta_fd.status();
  if (st.ok()) {
    st = ReplaceFile(meta_fd->get(), meta_dir, r.ip,
                     meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (!st.ok()) {
    ::unlinkat(dir_fd.get(), r.ip.c_str(), 0);
    return CniError(kIoFailure, fmt::format("ipam store: write sidecar for {} in {}: {}", r.ip,
                                            meta_dir, st.message()));
  }
  return true;
}

absl::Status LocalStore::Release(const std::string& network, const std::string& ip) {
  std::string dir = NetworkDir(network);
  auto dir_fd = OpenNetworkDir(network, /*create=*/false);
  if (!dir_fd.ok()) {
    return dir_fd.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus()
                                                                 : dir_fd.status();
  }
  auto meta_fd = OpenMetaDir(dir_fd->get(), dir, /*create=*/false);
  if (meta_fd.ok()) {
    if (::unlinkat(meta_fd->get(), ip.c_str(), 0) != 0 && errno != ENOENT) {
      return IoError("remove", JoinPath(JoinPath(dir, kMetaDir), ip), errno);
    }
  } else if (meta_fd.status().code() != absl::StatusCode::kNotFound) {
    return meta_fd.status();
  }
  RDMASHARE_FAILPOINT("ipam.store.release.after_sidecar");
  if (::unlinkat(dir_fd->get(), ip.c_str(), 0) != 0 && errno != ENOENT) {
    return IoError("remove", JoinPath(dir, ip), errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LocalStore::LastReserved(const std::string& network, int pool_index) {
  auto dir_fd = OpenNetworkDir(network, /*create=*/false);
  if (!dir_fd.ok()) {
    if (dir_fd.status().code() == absl::StatusCode::kNotFound) return std::string();
    return dir_fd.status();
  }
  auto text = ReadFileAt(dir_fd->get(), NetworkDir(network),
                         fmt::format("{}{}", kLastPrefix, pool_index), 4096);
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) return std::string();
    return StoreError(text.status());
  }
  return Trim(*text);
}

absl::Status LocalStore::SetLastReserved(const std::string& network, int pool_index,
                                         const std::string& ip) {
  ASSIGN_OR_RETURN(UniqueFd dir_fd, OpenNetworkDir(network, /*create=*/true));
  return ReplaceFile(dir_fd.get(), NetworkDir(network),
                     fmt::format("{}{}", kLastPrefix, pool_index), ip);
}

}  // namespace rdmashare::cni::ipam
