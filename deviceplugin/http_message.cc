#include "deviceplugin/http_message.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace rdmashare::deviceplugin {
namespace {

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

// True for RFC 9110 "tchar" (token characters of a method).
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

}  // namespace

std::string MakeHttpResponse(int code, const std::string& content_type, const std::string& body,
                             bool head_only, const std::string& extra_headers) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      code, ReasonPhrase(code), content_type, body.size(), extra_headers,
      head_only ? std::string() : body);
}

std::string MakeTextHttpResponse(int code, const std::string& body, bool head_only,
                                 const std::string& extra_headers) {
  return MakeHttpResponse(code, "text/plain; charset=utf-8", body, head_only, extra_headers);
}

std::string HttpRequestLineProblem(const std::string& line, std::string* method,
                                   std::string* target) {
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
    return "request line is not '<method> <target> HTTP/1.x'";
  }
  *method = line.substr(0, sp1);
  *target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = line.substr(sp2 + 1);
  if (method->empty() || !std::all_of(method->begin(), method->end(), IsTokenChar)) {
    return "bad method";
  }
  if (target->empty() || target->front() != '/') return "target is not an absolute path";
  for (char c : *target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "bad character in target";
  }
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return "unsupported HTTP version";
  return "";
}

std::optional<std::string> HttpFirstLine(const std::string& data) {
  size_t nl = data.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  size_t end = nl > 0 && data[nl - 1] == '\r' ? nl - 1 : nl;
  return data.substr(0, end);
}

size_t HttpHeadEnd(const std::string& data, size_t from) {
  size_t a = data.find("\r\n\r\n", from);
  size_t b = data.find("\n\n", from);
  size_t ea = a == std::string::npos ? a : a + 4;
  size_t eb = b == std::string::npos ? b : b + 2;
  return std::min(ea, eb);
}

absl::StatusOr<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& address) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(fmt::format("address '{}': {}", address, why));
  };
  std::string host, port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos) return bad("missing ']' after the IPv6 address");
    if (close + 1 >= address.size() || address[close + 1] != ':') {
      return bad("expected ':<port>' after ']'");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    if (host.empty()) return bad("empty IPv6 address");
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return bad("expected <host>:<port>");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return bad("an IPv6 address must be written in brackets ([::1]:9090)");
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad(fmt::format("port '{}' is not a number", port));
  }
  unsigned long p = std::stoul(port);
  if (p > 65535) return bad(fmt::format("port {} is out of range", p));
  return std::make_pair(host, static_cast<uint16_t>(p));
}

absl::StatusOr<HttpRequestHead> ParseHttpRequestHead(const std::string& head) {
  auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(fmt::format("bad request: {}", why));
  };
  std::optional<std::string> line = HttpFirstLine(head);
  if (!line) {
    // A head without any line end is its request line alone.
    line = head;
  }
  HttpRequestHead req;
  std::string target;
  if (std::string p = HttpRequestLineProblem(*line, &req.method, &target); !p.empty())
    return bad(p);
  req.version = line->substr(line->rfind(' ') + 1);
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  size_t pos = head.find('\n');
  pos = pos == std::string::npos ? head.size() : pos + 1;
  while (pos < head.size()) {
    size_t nl = head.find('\n', pos);
    if (nl == std::string::npos) nl = head.size();
    std::string h = head.substr(pos, nl - pos);
    if (!h.empty() && h.back() == '\r') h.pop_back();
    if (!h.empty() && (h.find(':') == std::string::npos || h.front() == ':')) {
      return bad("malformed header line");
    }
    pos = nl + 1;
  }
  return req;
}

}  // namespace rdmashare::deviceplugin
