// HTTP/1.x message text for the metrics endpoint (metrics_http.h): parsing an untrusted request
// head, checking a request line as soon as it is complete, finding the end of a head, building
// the "Connection: close" responses, and splitting the "host:port" listen address. Pure
// functions: thread-safe, no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace rdmashare::deviceplugin {

// Splits "host:port" ("127.0.0.1:9090", "[::1]:0", "localhost:9090", ":9090" = all
// interfaces) into host and port. InvalidArgument naming the address otherwise.
absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& address);

// A parsed HTTP/1.x request head.
struct HttpRequestHead {
  std::string method;   // "GET"
  std::string path;     // "/metrics" (the target without its query)
  std::string query;    // what followed '?', without it; may be empty
  std::string version;  // "HTTP/1.0" or "HTTP/1.1"

  bool operator==(const HttpRequestHead& o) const {
    return method == o.method && path == o.path && query == o.query && version == o.version;
  }
};

// Parses an untrusted request head: the request line and the header lines (CRLF or bare LF line
// ends; a trailing blank line is optional). InvalidArgument naming the problem: a request line
// that is not "<method> <target> HTTP/1.x", a method that is not a token, a target that is not
// an absolute path or holds control characters or spaces, another HTTP version, a header line
// without "name:".
absl::StatusOr<HttpRequestHead> ParseHttpRequestHead(const std::string& head);

// Why a request line is malformed ("bad method", "unsupported HTTP version", ...), or "" when it
// is "<method> <target> HTTP/1.x"; then `method` and `target` hold its parts.
std::string HttpRequestLineProblem(const std::string& line, std::string* method,
                                   std::string* target);

// The first line of `data` without its terminator (LF or CRLF), when a full line is present.
std::optional<std::string> HttpFirstLine(const std::string& data);

// End of the request head in `data` (index after the blank line), or npos. Searches from `from`
// on: a caller reading incrementally passes where new bytes begin minus 3, since an end found
// earlier was already answered.
size_t HttpHeadEnd(const std::string& data, size_t from = 0);

// A complete HTTP/1.1 response with "Connection: close": status line (reason phrase of `code`),
// Content-Type, Content-Length of `body`, `extra_headers` (each ending in CRLF), then the body
// unless `head_only` (a HEAD request).
std::string MakeHttpResponse(int code, const std::string& content_type, const std::string& body,
                             bool head_only = false, const std::string& extra_headers = "");

// MakeHttpResponse with Content-Type "text/plain; charset=utf-8".
std::string MakeTextHttpResponse(int code, const std::string& body, bool head_only = false,
                                 const std::string& extra_headers = "");

}  // namespace rdmashare::deviceplugin
