// HttpConnection: one HTTP/1.1 client connection from the etcd client to one endpoint, plain TCP
// or TLS (tls_transport.h): dialing every address of the endpoint's host in turn (name_lookup.h),
// writing a request and reading one response, which HttpResponseParser (http_response.h) frames
// strictly, the same for plain and TLS connections.
//
// Answers are untrusted: every read waits at most until the caller's deadline, which is also
// checked between reads, so a silent, slow-drip or endless peer ends the exchange on time. A body
// without Content-Length or chunked framing counts only when the server closes the connection
// cleanly (TLS: close_notify). Bytes after the response make the connection unusable for another
// request (HttpResponse::keep_alive false).
//
// Ownership: the connection owns its socket and TLS session; the TlsClientContext it was dialed
// with must outlive it. Not thread-safe (the etcd client serializes its use).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cni/ipam/etcd_endpoint.h"
#include "cni/ipam/http_response.h"
#include "cni/ipam/tls_transport.h"
#include "common/unique_fd.h"

namespace rdmashare::cni::ipam {

// "POST <path> HTTP/1.1" with Host (an IPv6 address in brackets), Content-Type
// application/json and Content-Length headers, then `body`.
std::string FormatHttpJsonPost(const std::string& path, const std::string& host, int port,
                               const std::string& body);

class HttpConnection {
 public:
  // Resolves the endpoint's host (consulting `hosts_file` first) and connects to its addresses in
  // turn, each within `dial_timeout` and never past `deadline`; for a TLS endpoint then
  // handshakes through `tls` (required then, unused otherwise). Unavailable listing every
  // address's cause when none accepted; Unauthenticated for a TLS failure.
  static absl::StatusOr<std::unique_ptr<HttpConnection>> Dial(
      const EtcdEndpoint& endpoint, const std::string& hosts_file,
      std::chrono::milliseconds dial_timeout, TlsClientContext* tls,
      std::chrono::steady_clock::time_point deadline);

  // Writes all of `request` before `deadline`. Unavailable when the connection broke or timed
  // out (TLS: DeadlineExceeded on timeout, Unauthenticated for a protocol failure).
  absl::Status Send(const std::string& request, std::chrono::steady_clock::time_point deadline);

  // Reads one response within `limits` before `deadline`. Parser errors keep their codes
  // (InvalidArgument, ResourceExhausted: the peer broke the protocol); a timeout is
  // DeadlineExceeded naming the stage reached and the time since `start`; transport errors are
  // Unavailable (Unauthenticated for a TLS alert).
  absl::StatusOr<HttpResponse> ReadResponse(const HttpResponseLimits& limits,
                                            std::chrono::steady_clock::time_point start,
                                            std::chrono::steady_clock::time_point deadline);

 private:
  HttpConnection() = default;

  // Reads what arrives next (plain or TLS), 0 at a clean end of stream.
  absl::StatusOr<size_t> ReadSome(char* buf, size_t cap,
                                  std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  // Destroyed before fd_ (declared after it): the TLS session runs over the socket.
  std::unique_ptr<TlsConnection> tls_;  // null for plain http
};

}  // namespace rdmashare::cni::ipam
