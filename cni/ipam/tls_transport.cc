#include "cni/ipam/tls_transport.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cni/ipam/name_lookup.h"
#include "cni/ipam/tcp_socket.h"
#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

using Clock = std::chrono::steady_clock;

// Every queued OpenSSL error as "reason; reason" (clears the queue).
std::string SslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    char buf[256];
    if (reason == nullptr) {
      ERR_error_string_n(e, buf, sizeof(buf));
      reason = buf;
    }
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

// Blocks SIGPIPE in this thread while OpenSSL writes to a socket a peer may have closed (its
// socket BIO uses write(2), not send(MSG_NOSIGNAL)); a SIGPIPE raised meanwhile is consumed.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, SIGPIPE);
        timespec zero{0, 0};
        while (sigtimedwait(&only, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// Status of a failed SSL_* call `rc` on `ssl` (the queue of OpenSSL errors in the message). TLS
// protocol failures are Unauthenticated (the endpoint is unusable, like a refused connection).
absl::Status SslFailure(SSL* ssl, int rc, const char* op) {
  int err = SSL_get_error(ssl, rc);
  std::string queued = SslErrors();
  if (err == SSL_ERROR_ZERO_RETURN)
    return absl::UnavailableError("connection closed by the server");
  if (err == SSL_ERROR_SYSCALL) {
    if (errno != 0 && rc < 0) {
      return absl::UnavailableError(fmt::format("TLS {}: {}", op, strerror(errno)));
    }
    return absl::UnavailableError(queued.empty() ? std::string("connection closed by the server")
                                                 : fmt::format("TLS {}: {}", op, queued));
  }
  return absl::UnauthenticatedError(
      fmt::format("TLS {}: {}", op, queued.empty() ? "protocol error" : queued));
}

// The reason of the first queued OpenSSL error is "unexpected EOF while reading": the peer closed
// the TCP connection without a TLS close_notify (OpenSSL 3 reports it as SSL_ERROR_SSL).
bool SslUnexpectedEof(int err, int rc) {
  if (err == SSL_ERROR_SSL) {
    return ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
  }
  // OpenSSL 1.1 reports it as SSL_ERROR_SYSCALL with nothing queued and no errno.
  return err == SSL_ERROR_SYSCALL && rc == 0 && ERR_peek_error() == 0 && errno == 0;
}

absl::Status BadTlsFile(const char* field, const std::string& path, const std::string& problem) {
  return CniError(kInvalidNetworkConfig,
                  fmt::format("ipam: etcd store.tls.{} {}: {}", field, path, problem));
}

}  // namespace

// OpenSSL's new-session callback (SSL_SESS_CACHE_CLIENT): after a TLS 1.2 handshake, and for
// TLS 1.3 whenever a NewSessionTicket arrives (after the handshake, read with the first answer).
// The newest session replaces the endpoint's cache entry. Returns 0: OpenSSL keeps ownership.
int TlsClientContext::OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<TlsConnection::SessionSlot*>(SSL_get_app_data(ssl));
  if (slot == nullptr || slot->tls == nullptr || slot->tls->sessions_ == nullptr) return 0;
  if (!slot->tls->sessions_->ShouldSave(SSL_session_reused(ssl) == 1, slot->loaded_expires)) {
    return 0;
  }
  absl::Status st = slot->tls->sessions_->Save(slot->file_name, slot->binding, session);
  if (st.ok()) {
    slot->tls->sessions_saved_.fetch_add(1, std::memory_order_relaxed);
  } else {
    spdlog::warn("etcd: TLS session not cached: {}", st.message());
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<TlsClientContext>> TlsClientContext::Create(
    const EtcdTlsFiles& files, const TlsSessionCacheOptions& sessions) {
  if (files.ca.empty()) {
    return CniError(kInvalidNetworkConfig,
                    "ipam: etcd store.tls.ca is required for TLS (the CA certificate that signed "
                    "etcd's server certificate)");
  }
  if (files.cert.empty() != files.key.empty()) {
    return CniError(kInvalidNetworkConfig,
                    "ipam: etcd store.tls.cert and store.tls.key go together (a client "
                    "certificate needs its private key)");
  }
  ERR_clear_error();
  std::unique_ptr<TlsClientContext> tls(new TlsClientContext());
  tls->ca_path_ = files.ca;
  tls->ctx_ = SSL_CTX_new(TLS_client_method());
  if (tls->ctx_ == nullptr) {
    return CniError(kIoFailure, fmt::format("ipam: etcd TLS: SSL_CTX_new: {}", SslErrors()));
  }
  SSL_CTX_set_min_proto_version(tls->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls->ctx_, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(tls->ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  absl::StatusOr<std::string> ca = ReadFile(files.ca);
  if (!ca.ok()) return BadTlsFile("ca", files.ca, std::string(ca.status().message()));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(ca->data(), static_cast<int>(ca->size())), &BIO_free);
  X509_STORE* store = SSL_CTX_get_cert_store(tls->ctx_);
  int certs = 0;
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) break;
    int ok = X509_STORE_add_cert(store, cert);
    X509_free(cert);
    if (ok != 1) return BadTlsFile("ca", files.ca, "cannot add certificate: " + SslErrors());
    ++certs;
  }
  ERR_clear_error();  // end of file
  if (certs == 0) return BadTlsFile("ca", files.ca, "contains no PEM certificate");

  std::string cert_pem, key_pem;
  if (!files.cert.empty()) {
    for (const auto& [field, path] :
         {std::make_pair("cert", files.cert), std::make_pair("key", files.key)}) {
      absl::StatusOr<std::string> text = ReadFile(path);
      if (!text.ok()) return BadTlsFile(field, path, std::string(text.status().message()));
      (std::strcmp(field, "cert") == 0 ? cert_pem : key_pem) = std::move(*text);
    }
    if (SSL_CTX_use_certificate_chain_file(tls->ctx_, files.cert.c_str()) != 1) {
      return BadTlsFile("cert", files.cert, "not a PEM certificate: " + SslErrors());
    }
    absl::StatusOr<std::string> key_text = ReadFile(files.key);
    if (!key_text.ok())
      return BadTlsFile("key", files.key, std::string(key_text.status().message()));
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
        BIO_new_mem_buf(key_text->data(), static_cast<int>(key_text->size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
        PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    if (pkey == nullptr) {
      return BadTlsFile("key", files.key, "not a PEM private key: " + SslErrors());
    }
    if (SSL_CTX_use_PrivateKey(tls->ctx_, pkey.get()) != 1 ||
        SSL_CTX_check_private_key(tls->ctx_) != 1) {
      return BadTlsFile(
          "key", files.key,
          fmt::format("does not match the certificate {}: {}", files.cert, SslErrors()));
    }
    tls->client_cert_ = true;
  }
  tls->files_digest_ = TlsFilesDigest(*ca, cert_pem, key_pem);

  // Client-side session caching through OnNewSession only (no OpenSSL internal store: each
  // process makes one connection per endpoint).
  if (sessions.enabled()) {
    tls->sessions_ = std::make_unique<TlsSessionCache>(sessions);
    SSL_CTX_set_session_cache_mode(tls->ctx_,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tls->ctx_, OnNewSession);
  }
  return tls;
}

TlsClientContext::~TlsClientContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

EtcdTlsStats TlsClientContext::stats() const {
  EtcdTlsStats out;
  out.full_handshakes = full_handshakes_.load(std::memory_order_relaxed);
  out.resumed_handshakes = resumed_handshakes_.load(std::memory_order_relaxed);
  out.sessions_saved = sessions_saved_.load(std::memory_order_relaxed);
  return out;
}

std::string TlsClientContext::ClientCertHint() const {
  if (client_cert_) return "";
  return " (if etcd requires client certificates, set store.tls.cert and store.tls.key)";
}

absl::StatusOr<std::unique_ptr<TlsConnection>> TlsConnection::Handshake(
    TlsClientContext* ctx, int fd, const std::string& host, int port,
    const std::string& endpoint_text, std::chrono::milliseconds dial_timeout,
    Clock::time_point deadline) {
  // Verify the chain against the CA and the certificate against the endpoint's host.
  ERR_clear_error();
  std::unique_ptr<TlsConnection> conn(new TlsConnection(fd));
  conn->ssl_ = SSL_new(ctx->ctx_);
  if (conn->ssl_ == nullptr) return absl::UnavailableError("SSL_new: " + SslErrors());
  SSL_set_fd(conn->ssl_, fd);
  X509_VERIFY_PARAM* param = SSL_get0_param(conn->ssl_);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (IsNumericHost(host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      return absl::UnavailableError("TLS: cannot set the expected IP address: " + SslErrors());
    }
  } else {
    if (SSL_set1_host(conn->ssl_, host.c_str()) != 1) {
      return absl::UnavailableError("TLS: cannot set the expected host name: " + SslErrors());
    }
    SSL_set_tlsext_host_name(conn->ssl_, host.c_str());
  }
  // Offers the session an earlier process saved for this endpoint, bound to these TLS files.
  if (ctx->sessions_ != nullptr) {
    conn->slot_ = {ctx, TlsSessionFileName(host, port),
                   TlsSessionBinding(ctx->files_digest_, host, port, host)};
    SSL_set_app_data(conn->ssl_, &conn->slot_);
    SslSessionPtr cached = ctx->sessions_->Load(conn->slot_.file_name, conn->slot_.binding,
                                                &conn->slot_.loaded_expires);
    if (cached != nullptr && SSL_set_session(conn->ssl_, cached.get()) != 1) {
      spdlog::warn("etcd: endpoint={} cached TLS session refused: {}", endpoint_text, SslErrors());
    }
  }
  int dial_ms =
      std::min<int>(static_cast<int>(dial_timeout.count()), std::max(1, RemainingMs(deadline)));
  auto hs_deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(dial_ms));
  SigpipeGuard guard;
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_connect(conn->ssl_);
    if (rc == 1) break;
    int err = SSL_get_error(conn->ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      absl::Status st =
          WaitFd(fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, hs_deadline, "TLS handshake");
      if (!st.ok()) return absl::UnavailableError(st.message());
      continue;
    }
    long verify = SSL_get_verify_result(conn->ssl_);
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return absl::UnauthenticatedError(fmt::format(
          "TLS handshake: certificate verify failed: {} (server certificate checked against "
          "CA {} and host {})",
          X509_verify_cert_error_string(verify), ctx->ca_path_, host));
    }
    absl::Status st = SslFailure(conn->ssl_, rc, "handshake");
    return absl::Status(st.code(), fmt::format("{}{}", st.message(), ctx->ClientCertHint()));
  }
  bool resumed = SSL_session_reused(conn->ssl_) == 1;
  (resumed ? ctx->resumed_handshakes_ : ctx->full_handshakes_)
      .fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("etcd: endpoint={} {} TLS handshake ({})", endpoint_text,
                resumed ? "resumed (cached session)" : "full", SSL_get_version(conn->ssl_));
  return conn;
}

TlsConnection::~TlsConnection() {
  if (ssl_ != nullptr) {
    SSL_set_app_data(ssl_, nullptr);
    SSL_free(ssl_);
  }
}

absl::Status TlsConnection::SendAll(const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  SigpipeGuard guard;
  while (off < data.size()) {
    ERR_clear_error();
    errno = 0;
    size_t written = 0;
    int rc = SSL_write_ex(ssl_, data.data() + off, data.size() - off, &written);
    if (rc == 1) {
      off += written;
      continue;
    }
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      RETURN_IF_ERROR(
          WaitFd(fd_, err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline, "send"));
      continue;
    }
    return SslFailure(ssl_, rc, "write");
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> TlsConnection::ReadSome(char* buf, size_t cap, Clock::time_point deadline) {
  SigpipeGuard guard;  // a read may write (key updates, alerts)
  for (;;) {
    ERR_clear_error();
    errno = 0;
    size_t n = 0;
    int rc = SSL_read_ex(ssl_, buf, cap, &n);
    if (rc == 1) return n;
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      RETURN_IF_ERROR(WaitFd(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "read"));
      continue;
    }
    if (SslUnexpectedEof(err, rc)) {
      ERR_clear_error();
      return absl::UnavailableError(
          "connection closed by the server without a TLS close_notify (answer truncated?)");
    }
    return SslFailure(ssl_, rc, "read");
  }
}

}  // namespace rdmashare::cni::ipam
