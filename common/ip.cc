#include "common/ip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "fmt/format.h"

namespace rdmashare {
namespace {

unsigned __int128 Mask(int family, int length) {
  int bits = family == 4 ? 32 : 128;
  unsigned __int128 all = family == 4 ? static_cast<unsigned __int128>(0xffffffffu)
                                      : ~static_cast<unsigned __int128>(0);
  if (length <= 0) return 0;
  if (length >= bits) return all;
  return all & ~((static_cast<unsigned __int128>(1) << (bits - length)) - 1);
}

// "addr/len" split and checked; the address keeps its host bits.
absl::StatusOr<IpPrefix> ParsePrefixText(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a CIDR (addr/prefix): no prefix length", text));
  }
  auto addr = IpAddr::Parse(text.substr(0, slash));
  if (!addr.ok()) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a CIDR: bad address", text));
  }
  std::string length_text = text.substr(slash + 1);
  char* end = nullptr;
  long length = std::strtol(length_text.c_str(), &end, 10);
  if (length_text.empty() || *end != '\0' ||
      !std::isdigit(static_cast<unsigned char>(length_text[0])) || length < 0 ||
      length > addr->bits()) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a CIDR: bad prefix length", text));
  }
  return IpPrefix(*addr, static_cast<int>(length));
}

}  // namespace

absl::StatusOr<IpAddr> IpAddr::Parse(const std::string& text) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return FromBytes(4, buf);
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return FromBytes(6, buf);
  return absl::InvalidArgumentError(fmt::format("'{}' is not an IP address", text));
}

IpAddr IpAddr::FromValue(int family, unsigned __int128 value) {
  IpAddr ip;
  ip.family_ = family;
  ip.value_ = family == 4 ? (value & 0xffffffffu) : value;
  return ip;
}

IpAddr IpAddr::FromBytes(int family, const uint8_t* bytes) {
  int n = family == 4 ? 4 : 16;
  unsigned __int128 v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | bytes[i];
  return FromValue(family, v);
}

int IpAddr::af() const { return family_ == 4 ? AF_INET : family_ == 6 ? AF_INET6 : AF_UNSPEC; }

std::array<uint8_t, 16> IpAddr::bytes() const {
  std::array<uint8_t, 16> out{};
  if (!valid()) return out;
  const int n = size();
  for (int i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(value_ >> (8 * (n - 1 - i)));
  return out;
}

bool IpAddr::IsLinkLocalUnicast() const {
  if (family_ == 4) return (value_ >> 16) == 0xa9fe;
  return family_ == 6 && (value_ >> 118) == (0xfe80 >> 6);
}

std::string IpAddr::ToString() const {
  if (!valid()) return "<invalid>";
  char out[INET6_ADDRSTRLEN] = {};
  std::array<uint8_t, 16> buf = bytes();
  inet_ntop(af(), buf.data(), out, sizeof(out));
  return out;
}

IpAddr IpAddr::Next() const { return FromValue(family_, value_ + 1); }
IpAddr IpAddr::Prev() const { return FromValue(family_, value_ - 1); }

IpPrefix::IpPrefix(const IpAddr& addr, int length)
    : addr_(addr), length_(std::clamp(length, 0, addr.bits())) {}

absl::StatusOr<IpPrefix> IpPrefix::Parse(const std::string& text) { return ParsePrefixText(text); }

absl::StatusOr<IpPrefix> IpPrefix::ParseNetwork(const std::string& text, bool strict) {
  auto prefix = ParsePrefixText(text);
  if (!prefix.ok()) return prefix.status();
  if (strict && !prefix->IsNetwork()) {
    return absl::InvalidArgumentError(fmt::format(
        "subnet '{}' has host bits set (did you mean {}?)", text, prefix->Masked().ToString()));
  }
  return prefix->Masked();
}

IpPrefix IpPrefix::Containing(const IpAddr& ip, int length) {
  return IpPrefix(ip, length).Masked();
}

IpAddr IpPrefix::network() const {
  return IpAddr::FromValue(family(), addr_.value() & Mask(family(), length_));
}

IpAddr IpPrefix::Last() const {
  return IpAddr::FromValue(family(), addr_.value() | ~Mask(family(), length_));
}

bool IpPrefix::Contains(const IpAddr& ip) const {
  return ip.family() == family() &&
         (ip.value() & Mask(family(), length_)) == (addr_.value() & Mask(family(), length_));
}

std::string IpPrefix::ToString() const { return fmt::format("{}/{}", addr_.ToString(), length_); }

}  // namespace rdmashare
