// TlsSessionCache: the etcd client's TLS sessions (session tickets) kept on disk, one file per
// endpoint, so that the next plugin process (every CNI call is a new process) resumes the
// session instead of paying a full handshake.
//
// Layout: <base_dir>/<sub_dir>/<endpoint file>, e.g. /var/lib/cni/networks/gpu1-net11/
// .tls-sessions/10.0.0.2_2379. base_dir (the IPAM dataDir) is opened following symbolic links
// like any configured path; every component of sub_dir and the file are opened without
// following one, the directories are created 0700 and must belong to our effective uid and not be
// writable by group or others, the file must be a regular file of ours, 0600 and at most
// kMaxTlsSessionFileBytes (read non-blocking: a FIFO cannot hang us). Anything else is logged once
// and ignored: the connection does a full handshake, and its new session replaces the entry.
//
// A file holds one record (text, see EncodeTlsSessionRecord): a binding, an expiry and the
// session in DER (i2d_SSL_SESSION). The binding is a SHA-256 over the endpoint (host:port), the
// name the server certificate was verified against, and the contents of the CA, client
// certificate and key files: a session is only offered to the same endpoint with the same trust
// and identity, so a rotated CA or client certificate always means a full handshake (and a new
// entry). With a client key the binding depends on a secret, so a record cannot be forged by
// whoever can only read the configuration. The expiry is the ticket's lifetime hint, capped at the
// configured lifetime (default 1 hour).
//
// An entry is replaced after every full handshake, and after a resumed one once it is past half
// its lifetime. Entries are written through a temp file created exclusively under a random name
// (O_EXCL | O_NOFOLLOW), mode 0600, and renamed over the entry; not fsynced: losing or truncating a
// cache entry in a crash only costs one full handshake (a truncated record is rejected).
//
// Stateless apart from its options; thread-safe (concurrent processes replace entries atomically).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

typedef struct ssl_session_st SSL_SESSION;

namespace rdmashare::cni::ipam {

// The cache directory's name inside <dataDir>/<pool>.
inline constexpr char kTlsSessionDirName[] = ".tls-sessions";

// Largest cache file read (a session with the server's certificate chain is a few KiB).
inline constexpr size_t kMaxTlsSessionFileBytes = 64 << 10;
// Default and largest lifetime of a cached session (store.tls.sessionCacheSeconds).
inline constexpr std::chrono::seconds kDefaultTlsSessionLifetime{3600};
inline constexpr std::chrono::seconds kMaxTlsSessionLifetime{86400};

// Where and how long sessions are kept. An empty base_dir or a zero lifetime disables the cache.
struct TlsSessionCacheOptions {
  std::string base_dir;
  // Relative path under base_dir ("gpu1-net11/.tls-sessions"); no component is followed when it
  // is a symbolic link.
  std::string sub_dir;
  std::chrono::seconds lifetime = kDefaultTlsSessionLifetime;
  bool enabled() const { return !base_dir.empty() && lifetime.count() > 0; }
  bool operator==(const TlsSessionCacheOptions& o) const {
    return base_dir == o.base_dir && sub_dir == o.sub_dir && lifetime == o.lifetime;
  }
};

// One cache file's content.
struct TlsSessionRecord {
  std::string binding;  // 64 lowercase hexadecimal digits (TlsSessionBinding)
  int64_t expires = 0;  // Unix time, seconds
  std::string session;  // DER of the SSL_SESSION
  bool operator==(const TlsSessionRecord& o) const {
    return binding == o.binding && expires == o.expires && session == o.session;
  }
};

// The file format: "rdmashare-tls-session 1\nbinding <hex>\nexpires <decimal>\nsession
// <base64 DER>\n", exactly these lines in this order (canonical: parsing and encoding again gives
// the same bytes).
std::string EncodeTlsSessionRecord(const TlsSessionRecord& record);

// Parses a cache file (untrusted bytes: the data directory is shared with whatever can write
// there). InvalidArgument naming the problem for anything but the exact format (including a
// truncated file, extra lines, a bad binding, expiry or base64, or more than
// kMaxTlsSessionFileBytes).
absl::StatusOr<TlsSessionRecord> ParseTlsSessionRecord(const std::string& bytes);

// Owns an SSL_SESSION (SSL_SESSION_free).
struct SslSessionFree {
  void operator()(SSL_SESSION* s) const;
};
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

// The session of `record` when it may be offered at Unix time `now`: the binding must equal
// `binding` (FailedPrecondition otherwise), the expiry lie in (now, now + lifetime]
// (FailedPrecondition "expired" / "expires too far ahead"), and the DER decode to a resumable
// session with nothing after it (InvalidArgument).
absl::StatusOr<SslSessionPtr> UsableTlsSession(const TlsSessionRecord& record,
                                               const std::string& binding, int64_t now,
                                               std::chrono::seconds lifetime);

// SHA-256 (hex) binding a session to an endpoint and the TLS files' contents (see above).
// `files_digest` is TlsFilesDigest of the CA, certificate and key contents.
std::string TlsSessionBinding(const std::string& files_digest, const std::string& host, int port,
                              const std::string& server_name);

// SHA-256 (raw bytes) of the CA, client certificate and key file contents, length-prefixed.
std::string TlsFilesDigest(const std::string& ca, const std::string& cert, const std::string& key);

// The cache file name of an endpoint: the host with every character outside [A-Za-z0-9.-]
// replaced by '_' (host names never contain '_'), then '_' and the port ("::1", 2379 ->
// "__1_2379").
std::string TlsSessionFileName(const std::string& host, int port);

class TlsSessionCache {
 public:
  explicit TlsSessionCache(TlsSessionCacheOptions options);

  // The cached session of `file_name` usable with `binding` now, or null: no entry (silently),
  // or an entry that is unusable (expired, bound to other TLS files or endpoint, corrupt, not a
  // regular file of ours, too large, in an unsafe directory: logged as a warning, never an
  // error; the caller does a full handshake).
  // `expires` (optional) receives the entry's expiry when a session is returned.
  SslSessionPtr Load(const std::string& file_name, const std::string& binding,
                     int64_t* expires = nullptr) const;

  // Whether a new session should replace the entry: always after a full handshake; after
  // resuming an entry that expires at `loaded_expires`, only once it is past half its lifetime
  // (a TLS 1.3 server sends a new ticket on every connection; rewriting the file each time would
  // only cost I/O).
  bool ShouldSave(bool resumed, int64_t loaded_expires) const;

  // Saves `session` as the entry of `file_name` (creating the directories), with the expiry
  // min(its ticket lifetime hint, the configured lifetime). Non-resumable sessions are skipped
  // (OkStatus). Errors name the path.
  absl::Status Save(const std::string& file_name, const std::string& binding,
                    SSL_SESSION* session) const;

  // "<base_dir>/<sub_dir>/<file_name>", for messages.
  std::string PathOf(const std::string& file_name) const;

  const TlsSessionCacheOptions& options() const { return options_; }

 private:
  // Opens (with `create`: creating) the cache directory and checks it is safe.
  absl::StatusOr<UniqueFd> OpenCacheDir(bool create) const;

  const TlsSessionCacheOptions options_;
};

}  // namespace rdmashare::cni::ipam
