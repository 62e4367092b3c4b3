#include "cni/net/ip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdlib>

#include "absl/status/status.h"
#include "fmt/format.h"

namespace rdmashare::cni::net {

int IpAddress::Size() const { return family == AF_INET6 ? 16 : 4; }

bool IpAddress::IsV4() const { return family == AF_INET; }

std::string IpAddress::AddrString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family != AF_INET && family != AF_INET6) return "";
  inet_ntop(family, bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string IpAddress::CidrString() const { return fmt::format("{}/{}", AddrString(), prefix_len); }

IpAddress IpAddress::Network() const {
  IpAddress n = *this;
  for (int i = 0; i < Size(); ++i) {
    int bits = prefix_len - i * 8;
    if (bits >= 8) continue;
    n.bytes[i] = bits <= 0 ? 0 : static_cast<uint8_t>(n.bytes[i] & (0xff << (8 - bits)));
  }
  return n;
}

bool IpAddress::InPrefix(const IpAddress& prefix) const {
  if (family != prefix.family) return false;
  IpAddress a = *this;
  a.prefix_len = prefix.prefix_len;
  return a.Network().bytes == prefix.Network().bytes;
}

bool IpAddress::IsDefaultRoute() const {
  return prefix_len == 0 && Network().bytes == std::array<uint8_t, 16>{};
}

absl::StatusOr<IpAddress> ParseIp(const std::string& text) {
  std::string addr = text;
  int len = -1;
  size_t slash = text.find('/');
  if (slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string l = text.substr(slash + 1);
    if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("IP address \"{}\": prefix length is not a number", text));
    }
    len = std::atoi(l.c_str());
  }
  IpAddress ip;
  if (inet_pton(AF_INET, addr.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET;
  } else if (inet_pton(AF_INET6, addr.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET6;
  } else {
    return absl::InvalidArgumentError(fmt::format("IP address \"{}\" is not valid", text));
  }
  int max = ip.Size() * 8;
  if (len > max) {
    return absl::InvalidArgumentError(
        fmt::format("IP address \"{}\": prefix length {} exceeds {}", text, len, max));
  }
  ip.prefix_len = len < 0 ? max : len;
  return ip;
}

absl::StatusOr<IpAddress> ParseCidr(const std::string& text) {
  if (text.find('/') == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("CIDR \"{}\" has no prefix length", text));
  }
  return ParseIp(text);
}

}  // namespace rdmashare::cni::net
