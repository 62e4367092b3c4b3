#include "cni/ipam/local_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "cni/ipam/ip.h"
#include "cni/protocol/error.h"
#include "cni/protocol/request.h"
#include "common/failpoint.h"
#include "common/files.h"
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
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  ~FileLock() override { ::flock(fd_.get(), LOCK_UN); }

 private:
  UniqueFd fd_;
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

void ReadMeta(const std::string& path, Reservation* r) {
  if (!PathExists(path)) return;
  auto text = ReadFile(path, 64 * 1024);
  JsonLimits limits;
  limits.max_depth = 8;
  limits.max_bytes = 64 * 1024;
  nlohmann::json meta = text.ok() ? ParseJsonBounded(*text, path, limits).value_or(nlohmann::json())
                                  : nlohmann::json();
  if (!meta.is_object()) {
    spdlog::warn("ipam store: sidecar {} is unreadable; ignoring it", path);
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

std::atomic<uint64_t> g_tmp_counter{0};

constexpr char kTempPrefix[] = ".tmp-";

// Removes temp files (kTempPrefix) of `dir` older than kStaleTempAge: a writer finishes within
// milliseconds, so an old one was left by a process killed between write and rename/link. Age,
// not the pid in the name, decides: the caller may live in another pid namespace.
void SweepStaleTemps(const std::string& dir, const std::vector<std::string>& names) {
  const time_t now = ::time(nullptr);
  for (const std::string& name : names) {
    if (name.rfind(kTempPrefix, 0) != 0) continue;
    std::string path = JoinPath(dir, name);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - st.st_mtime < LocalStore::kStaleTempAge.count()) continue;
    if (::unlink(path.c_str()) == 0) {
      spdlog::info("ipam store: removed {} (left by a writer killed mid-write)", path);
    }
  }
}

// Writes `content` to a fresh hidden temp file in `dir` (fdatasync'ed when `sync`) and returns
// its path.
absl::StatusOr<std::string> WriteTemp(const std::string& dir, const std::string& name,
                                      const std::string& content, bool sync) {
  std::string tmp =
      JoinPath(dir, fmt::format("{}{}-{}-{}", kTempPrefix, name, ::getpid(), ++g_tmp_counter));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return IoError("create", tmp, errno);
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      (sync && ::fdatasync(fd.get()) != 0)) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("write", tmp, err);
  }
  return tmp;
}

// Atomically replaces `dir`/`name` (temp file + rename(2)), without fsync: used for the
// sidecar and last_reserved_ip, which are hints (a lost or torn one is ignored on read).
absl::Status ReplaceFile(const std::string& dir, const std::string& name,
                         const std::string& content) {
  ASSIGN_OR_RETURN(std::string tmp, WriteTemp(dir, name, content, /*sync=*/false));
  std::string path = JoinPath(dir, name);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return IoError("rename", path, err);
  }
  return absl::OkStatus();
}

// Waits for the exclusive flock on `fd` for at most `timeout`. The blocking flock(2) runs in a
// helper thread on a dup of the descriptor (same open file description, so the lock it gets is
// ours): the kernel wakes it the moment the holder unlocks, unlike polling with LOCK_NB, which
// leaves the lock idle between polls and serialises parallel ADDs badly. On timeout the helper
// is abandoned; if it acquires the lock later it releases it at once.
absl::Status WaitForFlock(int fd, const std::string& path, const std::string& network,
                          std::chrono::milliseconds timeout) {
  struct WaitState {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    bool abandoned ABSL_GUARDED_BY(mu) = false;
    int err ABSL_GUARDED_BY(mu) = 0;
  };
  int helper_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (helper_fd < 0) return IoError("dup", path, errno);
  auto state = std::make_shared<WaitState>();
  std::thread([state, helper_fd] {
    int rc;
    do {
      rc = ::flock(helper_fd, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    int err = rc == 0 ? 0 : errno;
    absl::MutexLock lock(&state->mu);
    if (state->abandoned && rc == 0) ::flock(helper_fd, LOCK_UN);
    ::close(helper_fd);
    state->done = true;
    state->err = err;
  }).detach();
  absl::MutexLock lock(&state->mu);
  state->mu.AwaitWithTimeout(absl::Condition(&state->done),
                             absl::Milliseconds(static_cast<int64_t>(timeout.count())));
  if (!state->done) {
    state->abandoned = true;
    return CniError(kTryAgainLater, fmt::format("ipam store: network {}: lock {} still held by "
                                                "another process after {} ms",
                                                network, path, timeout.count()));
  }
  if (state->err != 0) return IoError("flock", path, state->err);
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
  auto content = ReadFile(path, 4096);
  if (!content.ok()) {
    if (content.status().code() == absl::StatusCode::kNotFound) {
      return CniError(kUnknownContainer,
                      fmt::format("ipam store: network {}: {} is not reserved", network, ip));
    }
    return CniError(kIoFailure,
                    fmt::format("ipam store: read {}: {}", path, content.status().message()));
  }
  Reservation r = ParseRecord(ip, *content, path);
  if (r.error.empty()) ReadMeta(JoinPath(JoinPath(dir, kMetaDir), ip), &r);
  return r;
}

std::string LocalStore::NetworkDir(const std::string& network) const {
  return JoinPath(data_dir_, network);
}

absl::Status LocalStore::EnsureNetworkDir(const std::string& network) {
  absl::Status st = MakeDirs(NetworkDir(network), 0700);
  if (!st.ok()) {
    return CniError(kIoFailure, fmt::format("ipam store: cannot create {}: {}", NetworkDir(network),
                                            st.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StoreLock>> LocalStore::Lock(const std::string& network,
                                                            std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(EnsureNetworkDir(network));
  std::string path = JoinPath(NetworkDir(network), kLockFile);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return IoError("open", path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return IoError("flock", path, errno);
    RETURN_IF_ERROR(WaitForFlock(fd.get(), path, network, timeout));
  }
  return std::unique_ptr<StoreLock>(new FileLock(std::move(fd)));
}

absl::StatusOr<std::vector<Reservation>> LocalStore::List(const std::string& network) {
  std::string dir = NetworkDir(network);
  std::vector<Reservation> out;
  auto names = ListDir(dir);
  if (!names.ok()) {
    if (names.status().code() == absl::StatusCode::kNotFound) return out;
    return CniError(kIoFailure,
                    fmt::format("ipam store: list {}: {}", dir, names.status().message()));
  }
  SweepStaleTemps(dir, *names);
  if (auto meta = ListDir(JoinPath(dir, kMetaDir)); meta.ok()) {
    SweepStaleTemps(JoinPath(dir, kMetaDir), *meta);
  }
  for (const std::string& name : *names) {
    if (name.empty() || name[0] == '.' || name == kLockFile || name.rfind(kLastPrefix, 0) == 0) {
      continue;
    }
    auto ip = IpAddr::Parse(name);
    if (!ip.ok()) continue;
    std::string path = JoinPath(dir, name);
    auto content = ReadFile(path, 4096);
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
  RETURN_IF_ERROR(EnsureNetworkDir(network));
  std::string dir = NetworkDir(network);
  std::string path = JoinPath(dir, r.ip);
  if (PathExists(path)) return false;
  // The record's content is made durable before it becomes visible (fdatasync, then link(2)),
  // so a crash never leaves a torn record (unless the store was built non-durable). The directory
  // itself is not fsync'ed: a record lost to a power cut belonged to a pod that did not survive it
  // either (the next GC or a DEL cleans up anyway), and each fsync costs milliseconds on the ADD
  // path.
  ASSIGN_OR_RETURN(std::string tmp, WriteTemp(dir, r.ip, EncodeRecord(r), durable_));
  RDMASHARE_FAILPOINT("ipam.store.reserve.after_temp");
  // link(2) fails with EEXIST instead of replacing: a record is never overwritten, even by a
  // process that does not honour our lock.
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
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
  absl::Status st = MakeDirs(meta_dir, 0700);
  if (st.ok()) {
    st = ReplaceFile(meta_dir, r.ip,
                     meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (!st.ok()) {
    ::unlink(path.c_str());
    return CniError(kIoFailure, fmt::format("ipam store: write sidecar for {} in {}: {}", r.ip,
                                            meta_dir, st.message()));
  }
  return true;
}

absl::Status LocalStore::Release(const std::string& network, const std::string& ip) {
  std::string dir = NetworkDir(network);
  std::string meta = JoinPath(JoinPath(dir, kMetaDir), ip);
  if (::unlink(meta.c_str()) != 0 && errno != ENOENT) return IoError("remove", meta, errno);
  RDMASHARE_FAILPOINT("ipam.store.release.after_sidecar");
  std::string path = JoinPath(dir, ip);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("remove", path, errno);
  return absl::OkStatus();
}

absl::StatusOr<std::string> LocalStore::LastReserved(const std::string& network, int pool_index) {
  std::string path = JoinPath(NetworkDir(network), fmt::format("{}{}", kLastPrefix, pool_index));
  auto text = ReadFile(path, 4096);
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) return std::string();
    return CniError(kIoFailure,
                    fmt::format("ipam store: read {}: {}", path, text.status().message()));
  }
  return Trim(*text);
}

absl::Status LocalStore::SetLastReserved(const std::string& network, int pool_index,
                                         const std::string& ip) {
  return ReplaceFile(NetworkDir(network), fmt::format("{}{}", kLastPrefix, pool_index), ip);
}

}  // namespace rdmashare::cni::ipam
