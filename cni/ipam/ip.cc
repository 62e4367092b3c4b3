#include "cni/ipam/ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "fmt/format.h"

namespace rdmashare::cni::ipam {
namespace {

unsigned __int128 Mask(int family, int prefix) {
  int bits = family == 4 ? 32 : 128;
  unsigned __int128 all = family == 4 ? static_cast<unsigned __int128>(0xffffffffu)
                                      : ~static_cast<unsigned __int128>(0);
  if (prefix <= 0) return 0;
  if (prefix >= bits) return all;
  return all & ~((static_cast<unsigned __int128>(1) << (bits - prefix)) - 1);
}

}  // namespace

absl::StatusOr<IpAddr> IpAddr::Parse(const std::string& text) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    unsigned __int128 v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | buf[i];
    return FromValue(4, v);
  }
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    unsigned __int128 v = 0;
    for (int i = 0; i < 16; ++i) v = (v << 8) | buf[i];
    return FromValue(6, v);
  }
  return absl::InvalidArgumentError(fmt::format("'{}' is not an IP address", text));
}

IpAddr IpAddr::FromValue(int family, unsigned __int128 value) {
  IpAddr ip;
  ip.family_ = family;
  ip.value_ = family == 4 ? (value & 0xffffffffu) : value;
  return ip;
}

std::string IpAddr::ToString() const {
  char out[INET6_ADDRSTRLEN];
  unsigned char buf[16];
  if (family_ == 4) {
    for (int i = 0; i < 4; ++i) buf[i] = static_cast<unsigned char>(value_ >> (8 * (3 - i)));
    inet_ntop(AF_INET, buf, out, sizeof(out));
  } else if (family_ == 6) {
    for (int i = 0; i < 16; ++i) buf[i] = static_cast<unsigned char>(value_ >> (8 * (15 - i)));
    inet_ntop(AF_INET6, buf, out, sizeof(out));
  } else {
    return "<invalid>";
  }
  return out;
}

IpAddr IpAddr::Next() const { return FromValue(family_, value_ + 1); }
IpAddr IpAddr::Prev() const { return FromValue(family_, value_ - 1); }

absl::StatusOr<IpNet> IpNet::Parse(const std::string& text, bool strict) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a CIDR (addr/prefix)", text));
  }
  auto addr = IpAddr::Parse(text.substr(0, slash));
  if (!addr.ok()) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a CIDR: bad address", text));
  }
  std::string prefix_text = text.substr(slash + 1);
  char* end = nullptr;
  long prefix = std::strtol(prefix_text.c_str(), &end, 10);
  if (prefix_text.empty() || *end != '\0' ||
      !std::isdigit(static_cast<unsigned char>(prefix_text[0])) || prefix < 0 ||
      prefix > addr->bits()) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a CIDR: bad prefix length", text));
  }
  IpNet net;
  net.prefix_ = static_cast<int>(prefix);
  unsigned __int128 mask = Mask(addr->family(), net.prefix_);
  if (strict && (addr->value() & ~mask) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("subnet '{}' has host bits set (did you mean {}/{}?)", text,
                    IpAddr::FromValue(addr->family(), addr->value() & mask).ToString(), prefix));
  }
  net.network_ = IpAddr::FromValue(addr->family(), addr->value() & mask);
  return net;
}

IpNet IpNet::Containing(const IpAddr& ip, int prefix) {
  IpNet net;
  net.prefix_ = std::clamp(prefix, 0, ip.bits());
  net.network_ = IpAddr::FromValue(ip.family(), ip.value() & Mask(ip.family(), net.prefix_));
  return net;
}

IpAddr IpNet::Last() const {
  unsigned __int128 mask = Mask(family(), prefix_);
  return IpAddr::FromValue(family(), network_.value() | ~mask);
}

bool IpNet::Contains(const IpAddr& ip) const {
  return ip.family() == family() && (ip.value() & Mask(family(), prefix_)) == network_.value();
}

std::string IpNet::ToString() const { return fmt::format("{}/{}", network_.ToString(), prefix_); }

std::string IpNet::Cidr(const IpAddr& ip) const {
  return fmt::format("{}/{}", ip.ToString(), prefix_);
}

}  // namespace rdmashare::cni::ipam
