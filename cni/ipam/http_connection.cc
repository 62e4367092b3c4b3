#include "cni/ipam/http_connection.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include "cni/ipam/name_lookup.h"
#include "cni/ipam/tcp_socket.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {

using Clock = std::chrono::steady_clock;

std::string FormatHttpJsonPost(const std::string& path, const std::string& host, int port,
                               const std::string& body) {
  return fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n"
      "Content-Length: {}\r\n\r\n{}",
      path, host.find(':') == std::string::npos ? host : "[" + host + "]", port, body.size(), body);
}

absl::StatusOr<std::unique_ptr<HttpConnection>> HttpConnection::Dial(
    const EtcdEndpoint& ep, const std::string& hosts_file, std::chrono::milliseconds dial_timeout,
    TlsClientContext* tls, Clock::time_point deadline) {
  ASSIGN_OR_RETURN(std::vector<SockAddr> addrs, ResolveHost(ep.host, ep.port, hosts_file));
  std::unique_ptr<HttpConnection> conn(new HttpConnection());
  std::string causes;
  for (const SockAddr& a : addrs) {
    int dial_ms =
        std::min<int>(static_cast<int>(dial_timeout.count()), std::max(1, RemainingMs(deadline)));
    absl::StatusOr<UniqueFd> fd = DialTcp(a, dial_ms);
    if (fd.ok()) {
      conn->fd_ = std::move(*fd);
      break;
    }
    if (!causes.empty()) causes += ", ";
    causes += addrs.size() == 1 ? std::string(fd.status().message())
                                : fmt::format("{}: {}", a.text, fd.status().message());
  }
  if (!conn->fd_.valid()) return absl::UnavailableError(causes);
  if (!ep.tls) return conn;
  ASSIGN_OR_RETURN(conn->tls_, TlsConnection::Handshake(tls, conn->fd_.get(), ep.host, ep.port,
                                                        ep.text, dial_timeout, deadline));
  return conn;
}

absl::Status HttpConnection::Send(const std::string& request, Clock::time_point deadline) {
  if (tls_ != nullptr) return tls_->SendAll(request, deadline);
  return SendAllTcp(fd_.get(), request, deadline);
}

absl::StatusOr<size_t> HttpConnection::ReadSome(char* buf, size_t cap, Clock::time_point deadline) {
  if (tls_ != nullptr) return tls_->ReadSome(buf, cap, deadline);
  return ReadSomeTcp(fd_.get(), buf, cap, deadline);
}

absl::StatusOr<HttpResponse> HttpConnection::ReadResponse(const HttpResponseLimits& limits,
                                                          Clock::time_point start,
                                                          Clock::time_point deadline) {
  HttpResponseParser parser(limits);
  char buf[16384];
  for (;;) {
    absl::StatusOr<size_t> n = Clock::now() < deadline
                                   ? ReadSome(buf, sizeof(buf), deadline)
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

}  // namespace rdmashare::cni::ipam
