#include "cni/ipam/etcd_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/escaping.h"
#include "cni/ipam/http_response.h"
#include "cni/protocol/error.h"
#include "common/files.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::cni::ipam {
namespace {

// An etcd v3 JSON gateway answer (range answers hold base64 keys/values, at most 4 levels).
absl::StatusOr<nlohmann::json> ParseEtcdJson(const std::string& body) {
  JsonLimits limits;
  limits.max_depth = 16;
  limits.max_bytes = 64 << 20;
  return ParseJsonBounded(body, "etcd answer", limits);
}

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

absl::StatusOr<std::string> UnB64(const json& v, const char* what) {
  if (v.is_null()) return std::string();
  std::string out;
  if (!v.is_string() || !absl::Base64Unescape(v.get<std::string>(), &out)) {
    return CniError(kIoFailure, fmt::format("etcd: answer has a malformed base64 {}", what));
  }
  return out;
}

// etcd's gateway encodes int64 as strings; absent means 0.
int64_t Int64Field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    try {
      return std::stoll(it->get<std::string>());
    } catch (const std::exception&) {
      return -1;
    }
  }
  return -1;
}

absl::StatusOr<KeyValue> ParseKv(const json& kv) {
  if (!kv.is_object()) return CniError(kIoFailure, "etcd: answer has a non-object kv");
  KeyValue out;
  ASSIGN_OR_RETURN(out.key, UnB64(kv.value("key", json()), "key"));
  ASSIGN_OR_RETURN(out.value, UnB64(kv.value("value", json()), "value"));
  out.create_revision = Int64Field(kv, "create_revision");
  out.mod_revision = Int64Field(kv, "mod_revision");
  return out;
}

absl::StatusOr<std::vector<KeyValue>> ParseKvs(const json& range_response) {
  std::vector<KeyValue> out;
  auto it = range_response.find("kvs");
  if (it == range_response.end()) return out;
  if (!it->is_array()) return CniError(kIoFailure, "etcd: range answer has a non-array kvs");
  for (const json& kv : *it) {
    ASSIGN_OR_RETURN(KeyValue parsed, ParseKv(kv));
    out.push_back(std::move(parsed));
  }
  return out;
}

// Parsed endpoint: host (numeric or name, no brackets), port, TLS or not.
struct ParsedEndpoint {
  std::string host;
  int port = 0;
  bool tls = false;
};

bool IsNumericHost(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// RFC 1123 host name: labels of [A-Za-z0-9-] (not starting or ending with '-'), at most 63
// characters each, 253 in all.
bool IsHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  char prev = '.';
  for (char c : host) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-') {
      if (label == 0 && c == '-') return false;
      if (++label > 63) return false;
    } else {
      return false;
    }
    prev = c;
  }
  return prev != '-';
}

// Parses "http://host:port", "https://host:port", "host:port", "[v6]:port". A bare "host:port"
// uses TLS when `tls_configured`.
absl::StatusOr<ParsedEndpoint> ParseEndpoint(const std::string& text, bool tls_configured) {
  std::string rest = text;
  ParsedEndpoint out;
  out.tls = tls_configured;
  if (rest.rfind("https://", 0) == 0) {
    rest = rest.substr(8);
    out.tls = true;
    if (!tls_configured) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' uses TLS: set store.tls.ca to the "
                                  "CA certificate that signed etcd's server certificate",
                                  text));
    }
  } else if (rest.rfind("http://", 0) == 0) {
    rest = rest.substr(7);
    if (tls_configured) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' is plain http but store.tls is set; "
                                  "use https:// (or drop store.tls)",
                                  text));
    }
    out.tls = false;
  } else if (rest.find("://") != std::string::npos) {
    return CniError(kInvalidNetworkConfig,
                    fmt::format("ipam: etcd endpoint '{}': scheme must be http or https", text));
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' is not [address]:port", text));
    }
    out.host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) {
      return CniError(
          kInvalidNetworkConfig,
          fmt::format("ipam: etcd endpoint '{}': '{}' is not an IPv6 address", text, out.host));
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}' has no port", text));
    }
    out.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (!IsNumericHost(out.host) && !IsHostName(out.host)) {
      return CniError(kInvalidNetworkConfig,
                      fmt::format("ipam: etcd endpoint '{}': host '{}' is neither an IP address "
                                  "nor a valid host name",
                                  text, out.host));
    }
  }
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) digits = digits && c >= '0' && c <= '9';
  if (digits) out.port = std::stoi(port);
  if (!digits || out.port <= 0 || out.port > 65535) {
    return CniError(
        kInvalidNetworkConfig,
        fmt::format("ipam: etcd endpoint '{}': port '{}' is not in 1..65535", text, port));
  }
  return out;
}

std::string LowerAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One resolved address of an endpoint.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string text;  // "127.0.0.1" / "::1"
};

std::optional<SockAddr> NumericAddr(const std::string& host, int port) {
  SockAddr a;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(*s4);
  } else if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    a.len = sizeof(*s6);
  } else {
    return std::nullopt;
  }
  a.text = host;
  return a;
}

// Addresses of `host`: numeric as is; names from the hosts file, else getaddrinfo, else (for
// localhost) the loopback addresses. Unavailable naming the host when nothing resolves.
absl::StatusOr<std::vector<SockAddr>> Resolve(const std::string& host, int port,
                                              const std::string& hosts_file) {
  std::vector<SockAddr> out;
  if (auto a = NumericAddr(host, port)) {
    out.push_back(*a);
    return out;
  }
  if (!hosts_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(hosts_file);
    if (text.ok()) {
      for (const std::string& ip : HostsFileAddresses(*text, host)) {
        if (auto a = NumericAddr(ip, port)) out.push_back(*a);
      }
    }
    if (!out.empty()) return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc == 0) {
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      SockAddr a;
      std::memcpy(&a.ss, ai->ai_addr, ai->ai_addrlen);
      a.len = ai->ai_addrlen;
      char buf[INET6_ADDRSTRLEN] = {};
      const void* src =
          ai->ai_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
      inet_ntop(ai->ai_family, src, buf, sizeof(buf));
      a.text = buf;
      bool dup = false;
      for (const SockAddr& o : out) dup = dup || o.text == a.text;
      if (!dup) out.push_back(a);
    }
    freeaddrinfo(res);
  }
  if (out.empty() && LowerAscii(host) == "localhost") {
    out.push_back(*NumericAddr("127.0.0.1", port));
    out.push_back(*NumericAddr("::1", port));
  }
  if (out.empty()) {
    return absl::UnavailableError(
        fmt::format("cannot resolve host name '{}' (not in {}; getaddrinfo: {})", host,
                    hosts_file.empty() ? "any hosts file" : hosts_file,
                    rc == 0 ? "no IPv4/IPv6 address" : gai_strerror(rc)));
  }
  return out;
}

absl::StatusOr<UniqueFd> DialOne(const SockAddr& addr, int timeout_ms) {
  UniqueFd fd(socket(addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::UnavailableError(fmt::format("socket: {}", strerror(errno)));
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0) {
    if (errno != EINPROGRESS) {
      return absl::UnavailableError(fmt::format("connect: {}", strerror(errno)));
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0)
      return absl::UnavailableError(fmt::format("connect timed out after {} ms", timeout_ms));
    if (n < 0) return absl::UnavailableError(fmt::format("poll: {}", strerror(errno)));
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return absl::UnavailableError(fmt::format("connect: {}", strerror(err)));
  }
  return fd;
}

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

// A socket, plus its TLS session for https endpoints. Non-blocking; every wait is a poll
// bounded by the caller's deadline.
struct Transport {
  UniqueFd fd;
  SSL* ssl = nullptr;
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport() {
    if (ssl != nullptr) SSL_free(ssl);
  }
};

// Waits until `fd` is ready for `events`; Unavailable/DeadlineExceeded otherwise.
absl::Status WaitFd(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    // Checked before polling too: a peer that keeps the fd ready (one byte at a time) must not
    // carry a loop past its deadline on poll(0)'s "ready" answers.
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(fmt::format("{} timed out", what));
    }
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r > 0) return absl::OkStatus();
    if (r == 0) return absl::DeadlineExceededError(fmt::format("{} timed out", what));
    if (errno != EINTR) return absl::UnavailableError(fmt::format("poll: {}", strerror(errno)));
  }
}

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

absl::Status SendAll(Transport& t, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  if (t.ssl != nullptr) {
    SigpipeGuard guard;
    while (off < data.size()) {
      ERR_clear_error();
      errno = 0;
      size_t written = 0;
      int rc = SSL_write_ex(t.ssl, data.data() + off, data.size() - off, &written);
      if (rc == 1) {
        off += written;
        continue;
      }
      int err = SSL_get_error(t.ssl, rc);
      if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        RETURN_IF_ERROR(
            WaitFd(t.fd.get(), err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline, "send"));
        continue;
      }
      return SslFailure(t.ssl, rc, "write");
    }
    return absl::OkStatus();
  }
  while (off < data.size()) {
    ssize_t n = send(t.fd.get(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      absl::Status st = WaitFd(t.fd.get(), POLLOUT, deadline, "send");
      if (!st.ok()) return absl::UnavailableError(st.message());
      continue;
    }
    return absl::UnavailableError(fmt::format("send: {}", strerror(errno)));
  }
  return absl::OkStatus();
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

// Reads what arrives next into `buf` (at most `cap` bytes), waiting at most until `deadline`.
// Returns the byte count, 0 for a clean end of stream (TCP FIN; for TLS, a close_notify: a TLS
// peer that just drops the connection may have truncated the answer, so that is an error).
// Unavailable on errors, DeadlineExceeded on timeout.
absl::StatusOr<size_t> ReadSome(Transport& t, char* buf, size_t cap, Clock::time_point deadline) {
  if (t.ssl != nullptr) {
    SigpipeGuard guard;  // a read may write (key updates, alerts)
    for (;;) {
      ERR_clear_error();
      errno = 0;
      size_t n = 0;
      int rc = SSL_read_ex(t.ssl, buf, cap, &n);
      if (rc == 1) return n;
      int err = SSL_get_error(t.ssl, rc);
      if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        RETURN_IF_ERROR(
            WaitFd(t.fd.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "read"));
        continue;
      }
      if (SslUnexpectedEof(err, rc)) {
        ERR_clear_error();
        return absl::UnavailableError(
            "connection closed by the server without a TLS close_notify (answer truncated?)");
      }
      return SslFailure(t.ssl, rc, "read");
    }
  }
  for (;;) {
    ssize_t n = recv(t.fd.get(), buf, cap, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(fmt::format("recv: {}", strerror(errno)));
    }
    RETURN_IF_ERROR(WaitFd(t.fd.get(), POLLIN, deadline, "read"));
  }
}

// Reads one response through HttpResponseParser (see http_response.h for the framing rules and
// limits). The deadline is checked before every read and every read waits at most the time left,
// so neither a silent peer, a slow drip nor an endless stream outlives it. Parser errors keep
// their codes (InvalidArgument, ResourceExhausted: the peer broke the protocol); a timeout is
// DeadlineExceeded naming the stage reached; transport errors are Unavailable.
absl::StatusOr<HttpResponse> ReadResponse(Transport& t, const HttpResponseLimits& limits,
                                          Clock::time_point start, Clock::time_point deadline) {
  HttpResponseParser parser(limits);
  char buf[16384];
  for (;;) {
    absl::StatusOr<size_t> n = Clock::now() < deadline
                                   ? ReadSome(t, buf, sizeof(buf), deadline)
                                   : absl::StatusOr<size_t>(absl::DeadlineExceededError("late"));
    if (absl::IsDeadlineExceeded(n.status())) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      return absl::DeadlineExceededError(
          fmt::format("timed out after {} ms reading the response's {} ({} bytes received)",
                      ms.count(), parser.stage(), parser.consumed()));
    }
    RETURN_IF_ERROR(n.status());
    if (*n == 0) {
      RETURN_IF_ERROR(parser.OnEof());
      return parser.TakeResponse();
    }
    ASSIGN_OR_RETURN(size_t used, parser.Feed(std::string_view(buf, *n)));
    if (parser.done()) {
      HttpResponse resp = parser.TakeResponse();
      // Bytes after the response were never asked for: the connection cannot be trusted.
      if (used < *n) resp.keep_alive = false;
      return resp;
    }
  }
}

}  // namespace

bool IsEtcdUnreachable(const absl::Status& status) {
  return !status.ok() && CniCode(status) == kTryAgainLater &&
         CniDetails(status) == kEtcdUnreachableDetails;
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

std::vector<std::string> HostsFileAddresses(const std::string& hosts_text,
                                            const std::string& name) {
  std::vector<std::string> out;
  std::string want = LowerAscii(name);
  size_t pos = 0;
  while (pos <= hosts_text.size()) {
    size_t eol = hosts_text.find('\n', pos);
    if (eol == std::string::npos) eol = hosts_text.size();
    std::string line = hosts_text.substr(pos, eol - pos);
    pos = eol + 1;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::vector<std::string> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) fields.push_back(line.substr(i, j - i));
      i = j;
    }
    if (fields.size() < 2 || !IsNumericHost(fields[0])) continue;
    for (size_t k = 1; k < fields.size(); ++k) {
      if (LowerAscii(fields[k]) == want &&
          std::find(out.begin(), out.end(), fields[0]) == out.end()) {
        out.push_back(fields[0]);
      }
    }
  }
  return out;
}

struct EtcdClient::TlsContext {
  SSL_CTX* ctx = nullptr;
  bool client_cert = false;
  // SHA-256 of the CA, certificate and key contents (part of every session's binding).
  std::string files_digest;
  std::unique_ptr<TlsSessionCache> sessions;  // null: no session cache
  std::atomic<int64_t> full_handshakes{0};
  std::atomic<int64_t> resumed_handshakes{0};
  std::atomic<int64_t> sessions_saved{0};
  ~TlsContext() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
};

namespace {

// What the new-session callback needs to save a connection's session (its SSL's app data).
struct TlsSessionSlot {
  EtcdClient::TlsContext* tls = nullptr;
  std::string file_name;
  std::string binding;
  int64_t loaded_expires = 0;  // expiry of the cached session offered (0: none)
};

}  // namespace

struct EtcdClient::Conn : Transport {
  TlsSessionSlot session_slot;
  ~Conn() {
    if (ssl != nullptr) SSL_set_app_data(ssl, nullptr);
  }
};

namespace {

// OpenSSL's new-session callback (SSL_SESS_CACHE_CLIENT): after a TLS 1.2 handshake, and for
// TLS 1.3 whenever a NewSessionTicket arrives (after the handshake, read with the first answer).
// The newest session replaces the endpoint's cache entry. Returns 0: OpenSSL keeps ownership.
int OnNewTlsSession(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<TlsSessionSlot*>(SSL_get_app_data(ssl));
  if (slot == nullptr || slot->tls == nullptr || slot->tls->sessions == nullptr) return 0;
  if (!slot->tls->sessions->ShouldSave(SSL_session_reused(ssl) == 1, slot->loaded_expires)) {
    return 0;
  }
  absl::Status st = slot->tls->sessions->Save(slot->file_name, slot->binding, session);
  if (st.ok()) {
    slot->tls->sessions_saved.fetch_add(1, std::memory_order_relaxed);
  } else {
    spdlog::warn("etcd: TLS session not cached: {}", st.message());
  }
  return 0;
}

absl::Status BadTlsFile(const char* field, const std::string& path, const std::string& problem) {
  return CniError(kInvalidNetworkConfig,
                  fmt::format("ipam: etcd store.tls.{} {}: {}", field, path, problem));
}

// Loads the CA bundle and the optional client certificate/key into a new SSL_CTX.
absl::StatusOr<std::unique_ptr<EtcdClient::TlsContext>> LoadTls(const EtcdTlsFiles& files) {
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
  auto tls = std::make_unique<EtcdClient::TlsContext>();
  tls->ctx = SSL_CTX_new(TLS_client_method());
  if (tls->ctx == nullptr) {
    return CniError(kIoFailure, fmt::format("ipam: etcd TLS: SSL_CTX_new: {}", SslErrors()));
  }
  SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  absl::StatusOr<std::string> ca = ReadFile(files.ca);
  if (!ca.ok()) return BadTlsFile("ca", files.ca, std::string(ca.status().message()));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(ca->data(), static_cast<int>(ca->size())), &BIO_free);
  X509_STORE* store = SSL_CTX_get_cert_store(tls->ctx);
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
    if (SSL_CTX_use_certificate_chain_file(tls->ctx, files.cert.c_str()) != 1) {
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
    if (SSL_CTX_use_PrivateKey(tls->ctx, pkey.get()) != 1 ||
        SSL_CTX_check_private_key(tls->ctx) != 1) {
      return BadTlsFile(
          "key", files.key,
          fmt::format("does not match the certificate {}: {}", files.cert, SslErrors()));
    }
    tls->client_cert = true;
  }
  tls->files_digest = TlsFilesDigest(*ca, cert_pem, key_pem);
  return tls;
}

// Client-side session caching through OnNewTlsSession only (no OpenSSL internal store: each
// process makes one connection per endpoint).
void EnableSessionCache(EtcdClient::TlsContext* tls, const TlsSessionCacheOptions& options) {
  if (!options.enabled()) return;
  tls->sessions = std::make_unique<TlsSessionCache>(options);
  SSL_CTX_set_session_cache_mode(tls->ctx,
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(tls->ctx, OnNewTlsSession);
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return CniError(kInvalidNetworkConfig, "ipam: etcd store needs at least one endpoint");
  }
  std::vector<Endpoint> eps;
  for (const std::string& text : options.endpoints) {
    ASSIGN_OR_RETURN(ParsedEndpoint p, ParseEndpoint(text, options.tls.enabled()));
    eps.push_back(Endpoint{text, p.host, p.port, p.tls});
  }
  std::unique_ptr<TlsContext> tls;
  if (options.tls.enabled()) {
    ASSIGN_OR_RETURN(tls, LoadTls(options.tls));
    EnableSessionCache(tls.get(), options.tls_sessions);
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(std::move(options), std::move(eps), std::move(tls)));
}

EtcdClient::EtcdClient(EtcdOptions options, std::vector<Endpoint> endpoints,
                       std::unique_ptr<TlsContext> tls)
    : options_(std::move(options)), endpoints_(std::move(endpoints)), tls_(std::move(tls)) {}

EtcdClient::~EtcdClient() = default;

EtcdTlsStats EtcdClient::tls_stats() const {
  EtcdTlsStats out;
  if (tls_ == nullptr) return out;
  out.full_handshakes = tls_->full_handshakes.load(std::memory_order_relaxed);
  out.resumed_handshakes = tls_->resumed_handshakes.load(std::memory_order_relaxed);
  out.sessions_saved = tls_->sessions_saved.load(std::memory_order_relaxed);
  return out;
}

absl::StatusOr<std::unique_ptr<EtcdClient::Conn>> EtcdClient::Connect(const Endpoint& ep,
                                                                      Clock::time_point deadline) {
  ASSIGN_OR_RETURN(std::vector<SockAddr> addrs, Resolve(ep.host, ep.port, options_.hosts_file));
  auto conn = std::make_unique<Conn>();
  std::string causes;
  for (const SockAddr& a : addrs) {
    int dial_ms = std::min<int>(static_cast<int>(options_.dial_timeout.count()),
                                std::max(1, RemainingMs(deadline)));
    absl::StatusOr<UniqueFd> fd = DialOne(a, dial_ms);
    if (fd.ok()) {
      conn->fd = std::move(*fd);
      break;
    }
    if (!causes.empty()) causes += ", ";
    causes += addrs.size() == 1 ? std::string(fd.status().message())
                                : fmt::format("{}: {}", a.text, fd.status().message());
  }
  if (!conn->fd.valid()) return absl::UnavailableError(causes);
  if (!ep.tls) return conn;

  // TLS: verify the chain against the CA and the certificate against the endpoint's host.
  ERR_clear_error();
  conn->ssl = SSL_new(tls_->ctx);
  if (conn->ssl == nullptr) return absl::UnavailableError("SSL_new: " + SslErrors());
  SSL_set_fd(conn->ssl, conn->fd.get());
  X509_VERIFY_PARAM* param = SSL_get0_param(conn->ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (IsNumericHost(ep.host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, ep.host.c_str()) != 1) {
      return absl::UnavailableError("TLS: cannot set the expected IP address: " + SslErrors());
    }
  } else {
    if (SSL_set1_host(conn->ssl, ep.host.c_str()) != 1) {
      return absl::UnavailableError("TLS: cannot set the expected host name: " + SslErrors());
    }
    SSL_set_tlsext_host_name(conn->ssl, ep.host.c_str());
  }
  // Offers the session an earlier process saved for this endpoint, bound to these TLS files.
  if (tls_->sessions != nullptr) {
    conn->session_slot = {tls_.get(), TlsSessionFileName(ep.host, ep.port),
                          TlsSessionBinding(tls_->files_digest, ep.host, ep.port, ep.host)};
    SSL_set_app_data(conn->ssl, &conn->session_slot);
    SslSessionPtr cached =
        tls_->sessions->Load(conn->session_slot.file_name, conn->session_slot.binding,
                             &conn->session_slot.loaded_expires);
    if (cached != nullptr && SSL_set_session(conn->ssl, cached.get()) != 1) {
      spdlog::warn("etcd: endpoint={} cached TLS session refused: {}", ep.text, SslErrors());
    }
  }
  int dial_ms = std::min<int>(static_cast<int>(options_.dial_timeout.count()),
                              std::max(1, RemainingMs(deadline)));
  auto hs_deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(dial_ms));
  SigpipeGuard guard;
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_connect(conn->ssl);
    if (rc == 1) break;
    int err = SSL_get_error(conn->ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      absl::Status st = WaitFd(conn->fd.get(), err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                               hs_deadline, "TLS handshake");
      if (!st.ok()) return absl::UnavailableError(st.message());
      continue;
    }
    long verify = SSL_get_verify_result(conn->ssl);
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return absl::UnauthenticatedError(fmt::format(
          "TLS handshake: certificate verify failed: {} (server certificate checked against "
          "CA {} and host {})",
          X509_verify_cert_error_string(verify), options_.tls.ca, ep.host));
    }
    absl::Status st = SslFailure(conn->ssl, rc, "handshake");
    return absl::Status(st.code(), fmt::format("{}{}", st.message(), ClientCertHint()));
  }
  bool resumed = SSL_session_reused(conn->ssl) == 1;
  (resumed ? tls_->resumed_handshakes : tls_->full_handshakes)
      .fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("etcd: endpoint={} {} TLS handshake ({})", ep.text,
                resumed ? "resumed (cached session)" : "full", SSL_get_version(conn->ssl));
  return conn;
}

std::string EtcdClient::ClientCertHint() const {
  if (tls_ == nullptr || tls_->client_cert) return "";
  return " (if etcd requires client certificates, set store.tls.cert and store.tls.key)";
}

absl::StatusOr<json> EtcdClient::Exchange(size_t idx, const std::string& request,
                                          Clock::time_point deadline, bool* retryable,
                                          bool* dial_failed, bool* broken) {
  *retryable = true;
  *dial_failed = false;
  *broken = false;
  HttpResponseLimits limits;
  limits.max_body_bytes = options_.max_response_bytes;
  const Endpoint& ep = endpoints_[idx];
  bool reused = conn_ != nullptr && conn_endpoint_ == idx;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (conn_ == nullptr || conn_endpoint_ != idx) {
      conn_.reset();
      auto conn = Connect(ep, deadline);
      if (!conn.ok()) {
        *dial_failed = true;
        return conn.status();
      }
      conn_ = std::move(*conn);
      conn_endpoint_ = idx;
      reused = false;
    }
    const Clock::time_point start = Clock::now();
    absl::Status st = SendAll(*conn_, request, deadline);
    absl::StatusOr<HttpResponse> resp =
        st.ok() ? ReadResponse(*conn_, limits, start, deadline) : absl::StatusOr<HttpResponse>(st);
    if (!resp.ok()) {
      conn_.reset();
      // TLS 1.3 servers reject a client certificate (or its absence) after the client's side
      // of the handshake: the alert arrives with the first answer. The endpoint is unusable.
      if (absl::IsUnauthenticated(resp.status())) {
        *dial_failed = true;
        return absl::Status(resp.status().code(),
                            fmt::format("{}{}", resp.status().message(), ClientCertHint()));
      }
      // The peer broke HTTP framing or a limit: it answered, so this is no stale connection,
      // and asking again would only fetch the same garbage.
      if (absl::IsInvalidArgument(resp.status()) || absl::IsResourceExhausted(resp.status())) {
        *broken = true;
        return resp.status();
      }
      // A kept-alive connection the server closed meanwhile: redial once.
      if (reused && !absl::IsDeadlineExceeded(resp.status())) continue;
      return resp.status();
    }
    if (!resp->keep_alive) conn_.reset();
    json body = ParseEtcdJson(resp->body).value_or(json());
    if (resp->status != 200) {
      std::string msg = body.is_object() && body.contains("error") && body["error"].is_string()
                            ? body["error"].get<std::string>()
                            : resp->body.substr(0, 200);
      int grpc_code = body.is_object() ? static_cast<int>(Int64Field(body, "code")) : 0;
      // 14 Unavailable, 4 DeadlineExceeded, 10 Aborted (leader changes, no quorum): next one.
      *retryable = resp->status >= 500 || grpc_code == 14 || grpc_code == 4 || grpc_code == 10;
      return absl::UnavailableError(fmt::format("HTTP {}: {}", resp->status, msg));
    }
    if (!body.is_object()) {
      return absl::UnavailableError(
          fmt::format("answer is not a JSON object: {}", resp->body.substr(0, 200)));
    }
    return body;
  }
  return absl::UnavailableError("connection lost");
}

void EtcdClient::Prepare() {
  absl::MutexLock lock(&mu_);
  if (conn_ != nullptr || endpoints_.empty()) return;
  size_t idx = preferred_ % endpoints_.size();
  auto conn = Connect(endpoints_[idx], Clock::now() + options_.dial_timeout);
  if (!conn.ok()) return;
  conn_ = std::move(*conn);
  conn_endpoint_ = idx;
}

absl::StatusOr<json> EtcdClient::Call(const std::string& path, const json& body) {
  std::string payload = body.dump();
  absl::MutexLock lock(&mu_);
  auto deadline = Clock::now() + options_.request_timeout;
  std::vector<std::string> causes(endpoints_.size());
  auto backoff = std::chrono::milliseconds(20);
  const auto attempt_budget =
      std::max(std::chrono::milliseconds(250), options_.request_timeout / 3);
  // Passes in which no endpoint even accepted a connection: after two, give up early (etcd is
  // down; a DEL journals, an ADD fails fast) instead of waiting for the whole request timeout.
  int refused_passes = 0;
  // Endpoints that broke the protocol in this call: not asked again (their answer is garbage,
  // possibly megabytes of it); the others still are.
  std::vector<bool> broken(endpoints_.size(), false);
  for (;;) {
    bool all_dial_failed = true;
    for (size_t step = 0; step < endpoints_.size(); ++step) {
      size_t idx = (preferred_ + step) % endpoints_.size();
      if (broken[idx]) continue;
      const Endpoint& ep = endpoints_[idx];
      std::string request = fmt::format(
          "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
          "Content-Length: {}\r\n\r\n{}",
          path, ep.host.find(':') == std::string::npos ? ep.host : "[" + ep.host + "]", ep.port,
          payload.size(), payload);
      bool retryable = true, dial_failed = false, protocol_error = false;
      // One endpoint may hang (a member cut off from the leader keeps a proposal until its own
      // timeout): give each attempt a third of the budget so the others still get their turn.
      auto attempt_deadline = std::min(deadline, Clock::now() + attempt_budget);
      auto out =
          Exchange(idx, request, attempt_deadline, &retryable, &dial_failed, &protocol_error);
      broken[idx] = protocol_error;
      all_dial_failed = all_dial_failed && dial_failed;
      if (out.ok()) {
        preferred_ = idx;
        return out;
      }
      causes[idx] = std::string(out.status().message());
      if (!retryable) {
        return CniError(kIoFailure, fmt::format("etcd {} {}: {}", ep.text, path, causes[idx]));
      }
      if (RemainingMs(deadline) == 0) break;
    }
    if (std::all_of(broken.begin(), broken.end(), [](bool b) { return b; })) break;
    if (all_dial_failed && ++refused_passes >= 2) break;
    if (RemainingMs(deadline) <= backoff.count()) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
  std::string tried;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (!tried.empty()) tried += "; ";
    tried += endpoints_[i].text + ": " + (causes[i].empty() ? "not tried" : causes[i]);
  }
  return CniError(kTryAgainLater, fmt::format("etcd unreachable ({}): tried {}", path, tried),
                  kEtcdUnreachableDetails);
}

absl::StatusOr<std::vector<KeyValue>> EtcdClient::RangePrefix(const std::string& prefix) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", {{"key", B64(prefix)},
                                                 {"range_end", B64(PrefixRangeEnd(prefix))}}));
  return ParseKvs(r);
}

absl::StatusOr<std::optional<KeyValue>> EtcdClient::Get(const std::string& key) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/range", {{"key", B64(key)}}));
  ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseKvs(r));
  if (kvs.empty()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(kvs.front());
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key, const std::string& value) {
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/put", {{"key", B64(key)}, {"value", B64(value)}}));
  return r.contains("header") ? Int64Field(r["header"], "revision") : 0;
}

absl::StatusOr<std::optional<int64_t>> EtcdClient::CreateIfAbsent(const std::string& key,
                                                                  const std::string& value) {
  json txn = {
      {"compare", json::array({{{"key", B64(key)},
                                {"target", "CREATE"},
                                {"result", "EQUAL"},
                                {"create_revision", "0"}}})},
      {"success", json::array({{{"request_put", {{"key", B64(key)}, {"value", B64(value)}}}}})},
      {"failure", json::array({{{"request_range", {{"key", B64(key)}}}}})}};
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", txn));
  if (r.value("succeeded", false)) {
    return std::optional<int64_t>(r.contains("header") ? Int64Field(r["header"], "revision") : 0);
  }
  // Lost the race, or our own earlier attempt (a retried request) created it.
  auto responses = r.find("responses");
  if (responses != r.end() && responses->is_array() && !responses->empty()) {
    const json& first = (*responses)[0];
    if (first.contains("response_range")) {
      ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseKvs(first["response_range"]));
      if (!kvs.empty() && kvs[0].value == value) {
        return std::optional<int64_t>(kvs[0].mod_revision);
      }
    }
  }
  return std::optional<int64_t>();
}

absl::StatusOr<bool> EtcdClient::DeleteIfUnchanged(const std::string& key, int64_t mod_revision) {
  json txn = {{"compare", json::array({{{"key", B64(key)},
                                        {"target", "MOD"},
                                        {"result", "EQUAL"},
                                        {"mod_revision", std::to_string(mod_revision)}}})},
              {"success", json::array({{{"request_delete_range", {{"key", B64(key)}}}}})}};
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", txn));
  return r.value("succeeded", false);
}

absl::StatusOr<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compares,
                                              const std::vector<EtcdOp>& success,
                                              const std::vector<EtcdOp>& failure) {
  json cmp = json::array();
  for (const EtcdCompare& c : compares) {
    json one = {{"key", B64(c.key)}, {"result", "EQUAL"}};
    switch (c.target) {
      case EtcdCompare::Target::kCreate:
        one["target"] = "CREATE";
        one["create_revision"] = std::to_string(c.revision);
        break;
      case EtcdCompare::Target::kMod:
        one["target"] = "MOD";
        one["mod_revision"] = std::to_string(c.revision);
        break;
      case EtcdCompare::Target::kValue:
        one["target"] = "VALUE";
        one["value"] = B64(c.value);
        break;
    }
    cmp.push_back(std::move(one));
  }
  auto ops = [](const std::vector<EtcdOp>& list) {
    json out = json::array();
    for (const EtcdOp& op : list) {
      switch (op.kind) {
        case EtcdOp::Kind::kPut:
          out.push_back({{"request_put", {{"key", B64(op.key)}, {"value", B64(op.value)}}}});
          break;
        case EtcdOp::Kind::kDelete:
          out.push_back({{"request_delete_range", {{"key", B64(op.key)}}}});
          break;
        case EtcdOp::Kind::kGet:
          out.push_back({{"request_range", {{"key", B64(op.key)}}}});
          break;
        case EtcdOp::Kind::kGetPrefix:
          out.push_back({{"request_range",
                          {{"key", B64(op.key)}, {"range_end", B64(PrefixRangeEnd(op.key))}}}});
          break;
      }
    }
    return out;
  };
  json txn = {{"compare", cmp}, {"success", ops(success)}, {"failure", ops(failure)}};
  ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", txn));
  EtcdTxnResult out;
  out.succeeded = r.value("succeeded", false);
  out.revision = r.contains("header") ? Int64Field(r["header"], "revision") : 0;
  const std::vector<EtcdOp>& taken = out.succeeded ? success : failure;
  auto responses = r.find("responses");
  size_t i = 0;
  for (const EtcdOp& op : taken) {
    if (op.kind != EtcdOp::Kind::kGet && op.kind != EtcdOp::Kind::kGetPrefix) {
      ++i;
      continue;
    }
    if (responses == r.end() || !responses->is_array() || i >= responses->size() ||
        !(*responses)[i].is_object() || !(*responses)[i].contains("response_range")) {
      return CniError(kIoFailure, "etcd: transaction answer lacks a range response");
    }
    ASSIGN_OR_RETURN(std::vector<KeyValue> kvs, ParseKvs((*responses)[i]["response_range"]));
    out.reads.push_back(std::move(kvs));
    ++i;
  }
  return out;
}

absl::StatusOr<std::vector<KeyValue>> ParseEtcdRangeResponse(const std::string& body) {
  json j = ParseEtcdJson(body).value_or(json());
  if (j.is_null() || !j.is_object()) {
    return CniError(kIoFailure, "etcd: range answer is not a JSON object");
  }
  return ParseKvs(j);
}

}  // namespace rdmashare::cni::ipam
