#include "cni/ipam/tls_session_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

constexpr char kMagic[] = "rdmashare-tls-session 1";
constexpr size_t kBindingHexLength = 64;

absl::Status Corrupt(const std::string& why) {
  return absl::InvalidArgumentError(fmt::format("TLS session record: {}", why));
}

bool IsLowerHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsBase64(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
  });
}

std::string Sha256(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  return std::string(reinterpret_cast<const char*>(md), len);
}

// Appends `s` with its length in front, so that distinct tuples never hash alike.
void AppendField(std::string* out, const std::string& s) {
  *out += fmt::format("{}:", s.size());
  *out += s;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status ErrnoError(int err, const std::string& op, const std::string& path) {
  std::string msg = fmt::format("{} {}: {}", op, path, strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

}  // namespace

void SslSessionFree::operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }

std::string EncodeTlsSessionRecord(const TlsSessionRecord& record) {
  return fmt::format("{}\nbinding {}\nexpires {}\nsession {}\n", kMagic, record.binding,
                     record.expires, absl::Base64Escape(record.session));
}

absl::StatusOr<TlsSessionRecord> ParseTlsSessionRecord(const std::string& bytes) {
  if (bytes.size() > kMaxTlsSessionFileBytes) {
    return Corrupt(
        fmt::format("{} bytes, more than the {} allowed", bytes.size(), kMaxTlsSessionFileBytes));
  }
  if (bytes.empty() || bytes.back() != '\n') return Corrupt("truncated (no final newline)");
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t eol = bytes.find('\n', pos);
    lines.push_back(bytes.substr(pos, eol - pos));
    pos = eol + 1;
    if (lines.size() > 4) return Corrupt("more than 4 lines");
  }
  if (lines.size() != 4) return Corrupt(fmt::format("{} lines, 4 expected", lines.size()));
  if (lines[0] != kMagic) return Corrupt(fmt::format("first line is not '{}'", kMagic));
  auto field = [&](size_t i, const char* name) -> absl::StatusOr<std::string> {
    std::string prefix = std::string(name) + " ";
    if (lines[i].rfind(prefix, 0) != 0) {
      return Corrupt(fmt::format("line {} does not start with '{}'", i + 1, prefix));
    }
    return lines[i].substr(prefix.size());
  };
  TlsSessionRecord out;
  ASSIGN_OR_RETURN(out.binding, field(1, "binding"));
  if (out.binding.size() != kBindingHexLength || !IsLowerHex(out.binding)) {
    return Corrupt("binding is not 64 lowercase hexadecimal digits");
  }
  ASSIGN_OR_RETURN(std::string expires, field(2, "expires"));
  if (expires.empty() || expires.size() > 18 || (expires[0] == '0' && expires.size() > 1) ||
      !std::all_of(expires.begin(), expires.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Corrupt("expires is not a decimal number of at most 18 digits (no leading zero)");
  }
  out.expires = std::stoll(expires);
  ASSIGN_OR_RETURN(std::string session, field(3, "session"));
  if (session.empty() || !IsBase64(session) || !absl::Base64Unescape(session, &out.session) ||
      out.session.empty() || absl::Base64Escape(out.session) != session) {
    return Corrupt("session is not canonical base64 of a non-empty value");
  }
  return out;
}

absl::StatusOr<SslSessionPtr> UsableTlsSession(const TlsSessionRecord& record,
                                               const std::string& binding, int64_t now,
                                               std::chrono::seconds lifetime) {
  if (record.binding != binding) {
    return absl::FailedPreconditionError(
        "saved for other TLS files (CA, certificate or key changed) or another endpoint");
  }
  if (record.expires <= now) {
    return absl::FailedPreconditionError(
        fmt::format("expired {} s ago", static_cast<long long>(now - record.expires)));
  }
  if (record.expires - now > lifetime.count()) {
    return absl::FailedPreconditionError(fmt::format("expires in {} s, beyond the {} s lifetime",
                                                     static_cast<long long>(record.expires - now),
                                                     lifetime.count()));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(record.session.data());
  const unsigned char* const start = p;
  SslSessionPtr session(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(record.session.size())));
  if (session == nullptr) {
    return absl::InvalidArgumentError("session is not a DER SSL_SESSION");
  }
  if (static_cast<size_t>(p - start) != record.session.size()) {
    return absl::InvalidArgumentError("session has bytes after its DER encoding");
  }
  if (SSL_SESSION_is_resumable(session.get()) != 1) {
    return absl::InvalidArgumentError("session is not resumable");
  }
  if (SSL_SESSION_get_protocol_version(session.get()) < TLS1_2_VERSION) {
    return absl::InvalidArgumentError("session is older than TLS 1.2");
  }
  return session;
}

std::string TlsFilesDigest(const std::string& ca, const std::string& cert, const std::string& key) {
  std::string data;
  AppendField(&data, ca);
  AppendField(&data, cert);
  AppendField(&data, key);
  return Sha256(data);
}

std::string TlsSessionBinding(const std::string& files_digest, const std::string& host, int port,
                              const std::string& server_name) {
  std::string data = kMagic;
  AppendField(&data, files_digest);
  AppendField(&data, fmt::format("{}:{}", host, port));
  AppendField(&data, server_name);
  std::string digest = Sha256(data);
  std::string hex;
  for (unsigned char c : digest) hex += fmt::format("{:02x}", c);
  return hex;
}

std::string TlsSessionFileName(const std::string& host, int port) {
  std::string name = host;
  for (char& c : name) {
    bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-';
    if (!safe) c = '_';
  }
  return fmt::format("{}_{}", name, port);
}

TlsSessionCache::TlsSessionCache(TlsSessionCacheOptions options) : options_(std::move(options)) {}

std::string TlsSessionCache::PathOf(const std::string& file_name) const {
  return JoinPath(JoinPath(options_.base_dir, options_.sub_dir), file_name);
}

absl::StatusOr<UniqueFd> TlsSessionCache::OpenCacheDir(bool create) const {
  if (create) RETURN_IF_ERROR(MakeDirs(options_.base_dir, 0700));
  ASSIGN_OR_RETURN(UniqueFd dir, OpenDir(options_.base_dir));
  std::string path = options_.base_dir;
  size_t pos = 0;
  while (pos <= options_.sub_dir.size()) {
    size_t slash = options_.sub_dir.find('/', pos);
    if (slash == std::string::npos) slash = options_.sub_dir.size();
    std::string part = options_.sub_dir.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") {
      return absl::InvalidArgumentError(
          fmt::format("TLS session directory {}: '{}' in its path", options_.sub_dir, part));
    }
    if (create && ::mkdirat(dir.get(), part.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir", JoinPath(path, part));
    }
    ASSIGN_OR_RETURN(UniqueFd next, OpenDirAt(dir.get(), path, part));
    dir = std::move(next);
    path = JoinPath(path, part);
  }
  // Only we may add, replace or read entries: whoever can plant a session could make us resume
  // a session whose keys they know.
  struct stat st;
  if (::fstat(dir.get(), &st) != 0) return ErrnoError(errno, "stat", path);
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        fmt::format("{} belongs to uid {}, not to us (uid {})", path, st.st_uid, ::geteuid()));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(fmt::format(
        "{} has mode {:04o}; group and others must have no access", path, st.st_mode & 07777));
  }
  return dir;
}

bool TlsSessionCache::ShouldSave(bool resumed, int64_t loaded_expires) const {
  return !resumed || loaded_expires - UnixNow() <= options_.lifetime.count() / 2;
}

SslSessionPtr TlsSessionCache::Load(const std::string& file_name, const std::string& binding,
                                    int64_t* expires) const {
  if (!options_.enabled()) return nullptr;
  const std::string path = PathOf(file_name);
  auto ignored = [&](const std::string& why) {
    spdlog::warn("etcd: TLS session cache {} ignored (full handshake): {}", path, why);
    return nullptr;
  };
  absl::StatusOr<UniqueFd> dir = OpenCacheDir(/*create=*/false);
  if (absl::IsNotFound(dir.status())) return nullptr;
  if (!dir.ok()) return ignored(std::string(dir.status().message()));
  struct stat st;
  if (::fstatat(dir->get(), file_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return nullptr;
    return ignored(fmt::format("stat: {}", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return ignored(fmt::format("is {}", FileTypeName(st.st_mode)));
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return ignored(fmt::format("owner uid {} mode {:04o}; ours with 0600 expected", st.st_uid,
                               st.st_mode & 07777));
  }
  absl::StatusOr<std::string> text =
      ReadFileAt(dir->get(), JoinPath(options_.base_dir, options_.sub_dir), file_name,
                 kMaxTlsSessionFileBytes);
  if (!text.ok()) return ignored(std::string(text.status().message()));
  absl::StatusOr<TlsSessionRecord> record = ParseTlsSessionRecord(*text);
  if (!record.ok()) return ignored(std::string(record.status().message()));
  absl::StatusOr<SslSessionPtr> session =
      UsableTlsSession(*record, binding, UnixNow(), options_.lifetime);
  if (!session.ok()) {
    // A rotated certificate or an old entry is routine: no warning for those.
    if (absl::IsFailedPrecondition(session.status())) {
      spdlog::info("etcd: TLS session cache {} not used (full handshake): {}", path,
                   session.status().message());
      return nullptr;
    }
    return ignored(std::string(session.status().message()));
  }
  if (expires != nullptr) *expires = record->expires;
  return std::move(*session);
}

absl::Status TlsSessionCache::Save(const std::string& file_name, const std::string& binding,
                                   SSL_SESSION* session) const {
  if (!options_.enabled() || SSL_SESSION_is_resumable(session) != 1) return absl::OkStatus();
  const std::string path = PathOf(file_name);
  int der_len = i2d_SSL_SESSION(session, nullptr);
  // The base64 of the DER must fit in a file Load reads.
  if (der_len <= 0 || static_cast<size_t>(der_len) > kMaxTlsSessionFileBytes / 4 * 3 - 1024) {
    return absl::InvalidArgumentError(
        fmt::format("save TLS session {}: DER encoding of {} bytes", path, der_len));
  }
  TlsSessionRecord record;
  record.binding = binding;
  record.session.resize(static_cast<size_t>(der_len));
  auto* out = reinterpret_cast<unsigned char*>(record.session.data());
  if (i2d_SSL_SESSION(session, &out) != der_len) {
    return absl::InternalError(fmt::format("save TLS session {}: i2d_SSL_SESSION failed", path));
  }
  int64_t lifetime = options_.lifetime.count();
  if (uint32_t hint = SSL_SESSION_get_ticket_lifetime_hint(session); hint > 0) {
    lifetime = std::min<int64_t>(lifetime, hint);
  }
  if (long timeout = SSL_SESSION_get_timeout(session); timeout > 0) {
    lifetime = std::min<int64_t>(lifetime, timeout);
  }
  record.expires = UnixNow() + lifetime;

  ASSIGN_OR_RETURN(UniqueFd dir, OpenCacheDir(/*create=*/true));
  const std::string dir_path = JoinPath(options_.base_dir, options_.sub_dir);
  ASSIGN_OR_RETURN(TempFile tmp,
                   CreateTempFileAt(dir.get(), dir_path, "." + file_name + kAtomicTempInfix, 0600));
  auto fail = [&](int err, const std::string& op) {
    ::unlinkat(dir.get(), tmp.name.c_str(), 0);
    return ErrnoError(err, op, JoinPath(dir_path, tmp.name));
  };
  const std::string content = EncodeTlsSessionRecord(record);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(tmp.fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(n < 0 ? errno : EIO, "write");
    off += static_cast<size_t>(n);
  }
  if (::fchmod(tmp.fd.get(), 0600) != 0) return fail(errno, "chmod");
  tmp.fd.Reset();
  // rename replaces whatever holds the name (a planted symlink or FIFO too) without following it.
  if (::renameat(dir.get(), tmp.name.c_str(), dir.get(), file_name.c_str()) != 0) {
    return fail(errno, "rename to " + path + " from");
  }
  return absl::OkStatus();
}

}  // namespace rdmashare::cni::ipam
