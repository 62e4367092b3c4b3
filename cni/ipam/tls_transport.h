// The etcd client's TLS transport (OpenSSL, linked statically): a TlsClientContext built from
// the configured PEM files (store.tls: CA, optional client certificate and key) and, per
// connection, a TlsConnection that handshakes over an already connected TCP socket and then
// reads and writes through TLS.
//
// TLS 1.2+ only; the server certificate must chain to the CA and be issued for the endpoint's
// host name or IP address (no partial wildcards); the client certificate, when configured, is
// presented when the server asks for one. A failed handshake is Unauthenticated with OpenSSL's
// reason in the message (certificate verify failed, a missing client certificate, ...): the
// caller treats the endpoint as unusable, like a refused connection. With session caching
// enabled (TlsSessionCacheOptions), each endpoint's session is offered from and saved to
// tls_session_cache.h's files, so a new process skips the full handshake; stats() counts the
// handshakes of both kinds.
//
// Ownership: TlsClientContext owns the SSL_CTX and the session cache and must outlive every
// TlsConnection made from it. A TlsConnection owns its SSL but not the socket it runs over (the
// caller's, which must outlive it). Every read and write waits at most until the caller's
// deadline. Threading: a TlsClientContext may be shared (its counters are atomic); a
// TlsConnection is used by one thread at a time. SIGPIPE is blocked in the calling thread while
// OpenSSL writes (its socket BIO uses write(2)), and a SIGPIPE raised meanwhile is consumed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cni/ipam/tls_session_cache.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace rdmashare::cni::ipam {

// PEM files of the TLS client ("store.tls": {"ca", "cert", "key"}). `ca` is required for TLS;
// `cert` and `key` come together or not at all.
struct EtcdTlsFiles {
  std::string ca, cert, key;
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

// TLS handshakes of one EtcdClient: full ones, resumed ones (a cached session was accepted) and
// sessions saved to the cache.
struct EtcdTlsStats {
  int64_t full_handshakes = 0;
  int64_t resumed_handshakes = 0;
  int64_t sessions_saved = 0;
  bool operator==(const EtcdTlsStats& o) const {
    return full_handshakes == o.full_handshakes && resumed_handshakes == o.resumed_handshakes &&
           sessions_saved == o.sessions_saved;
  }
};

// The SSL_CTX shared by one etcd client's TLS connections, with its session cache and counters.
class TlsClientContext {
 public:
  // Loads the CA bundle and the optional client certificate/key, and enables the session cache
  // when `sessions` is enabled. CNI code 7 naming the store.tls field and file for a missing,
  // unreadable or invalid file (or a key that does not match the certificate).
  static absl::StatusOr<std::unique_ptr<TlsClientContext>> Create(
      const EtcdTlsFiles& files, const TlsSessionCacheOptions& sessions);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // Handshake counters so far.
  EtcdTlsStats stats() const;

  // Appended to TLS failures: a hint to configure a client certificate when none is ("" when one
  // is).
  std::string ClientCertHint() const;

 private:
  friend class TlsConnection;
  TlsClientContext() = default;

  // OpenSSL's new-session callback (see tls_transport.cc).
  static int OnNewSession(SSL* ssl, SSL_SESSION* session);

  SSL_CTX* ctx_ = nullptr;
  std::string ca_path_;  // for verify failure messages
  bool client_cert_ = false;
  // SHA-256 of the CA, certificate and key contents (part of every session's binding).
  std::string files_digest_;
  std::unique_ptr<TlsSessionCache> sessions_;  // null: no session cache
  std::atomic<int64_t> full_handshakes_{0};
  std::atomic<int64_t> resumed_handshakes_{0};
  std::atomic<int64_t> sessions_saved_{0};
};

// One TLS session over a connected, non-blocking TCP socket.
class TlsConnection {
 public:
  // Handshakes over `fd` with the server at `host`:`port` (the certificate is verified against
  // `host`, which is also sent as SNI when it is a name), offering the cached session of that
  // endpoint when there is one. The handshake gets at most `dial_timeout`, and never past
  // `deadline`. `endpoint_text` names the endpoint in logs. Unauthenticated for a TLS failure
  // (with ClientCertHint()), Unavailable for a timeout or a closed connection.
  static absl::StatusOr<std::unique_ptr<TlsConnection>> Handshake(
      TlsClientContext* ctx, int fd, const std::string& host, int port,
      const std::string& endpoint_text, std::chrono::milliseconds dial_timeout,
      std::chrono::steady_clock::time_point deadline);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // Writes all of `data` before `deadline`. DeadlineExceeded on timeout, Unavailable when the
  // connection broke, Unauthenticated for a TLS protocol failure (e.g. an alert).
  absl::Status SendAll(const std::string& data, std::chrono::steady_clock::time_point deadline);

  // Reads what arrives next into `buf` (at most `cap` bytes), waiting at most until `deadline`.
  // The byte count, 0 for a close_notify (a peer that just drops the connection may have
  // truncated the answer, so that is Unavailable). Errors as for SendAll.
  absl::StatusOr<size_t> ReadSome(char* buf, size_t cap,
                                  std::chrono::steady_clock::time_point deadline);

 private:
  friend class TlsClientContext;
  // What the new-session callback needs to save this connection's session (the SSL's app data).
  struct SessionSlot {
    TlsClientContext* tls = nullptr;
    std::string file_name;
    std::string binding;
    int64_t loaded_expires = 0;  // expiry of the cached session offered (0: none)
  };

  explicit TlsConnection(int fd) : fd_(fd) {}

  const int fd_;
  SSL* ssl_ = nullptr;
  SessionSlot slot_;
};

}  // namespace rdmashare::cni::ipam
