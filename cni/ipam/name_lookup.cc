#include "cni/ipam/name_lookup.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/files.h"
#include "common/ip.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {
namespace {

std::string LowerAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool IsNumericHost(const std::string& host) { return IpAddr::Parse(host).ok(); }

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

std::optional<SockAddr> NumericSockAddr(const std::string& host, int port) {
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

absl::StatusOr<std::vector<SockAddr>> ResolveHost(const std::string& host, int port,
                                                  const std::string& hosts_file) {
  std::vector<SockAddr> out;
  if (auto a = NumericSockAddr(host, port)) {
    out.push_back(*a);
    return out;
  }
  if (!hosts_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(hosts_file);
    if (text.ok()) {
      for (const std::string& ip : HostsFileAddresses(*text, host)) {
        if (auto a = NumericSockAddr(ip, port)) out.push_back(*a);
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
    out.push_back(*NumericSockAddr("127.0.0.1", port));
    out.push_back(*NumericSockAddr("::1", port));
  }
  if (out.empty()) {
    return absl::UnavailableError(
        fmt::format("cannot resolve host name '{}' (not in {}; getaddrinfo: {})", host,
                    hosts_file.empty() ? "any hosts file" : hosts_file,
                    rc == 0 ? "no IPv4/IPv6 address" : gai_strerror(rc)));
  }
  return out;
}

}  // namespace rdmashare::cni::ipam
