// IpAddr and IpPrefix: the one model of IPv4/IPv6 addresses and prefixes in rdmashare, shared by
// the CNI protocol (results), rdmashare-ipam (ranges, allocation arithmetic, stores), the data
// path (netlink, ARP) and the CLI.
//
// It lives in common/ because every one of those sits above common/ and none may depend on
// another for it: cni/protocol is below cni/ipam and cni/net, cni/net brings libnl, and the CNI
// binaries and the CLI are static (no gRPC). Only libc (inet_pton/inet_ntop) is used.
//
// One family convention: family() is 4 or 6 (as CNI writes it, "version": "4"); af() gives
// AF_INET/AF_INET6 for sockets and netlink. Text forms are canonical (inet_ntop: IPv6 compressed,
// lower case), so equal values print equal text.
//
// Plain copyable values; no shared state; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rdmashare {

// An IPv4 or IPv6 address (no prefix). Default-constructed: invalid (family 0).
class IpAddr {
 public:
  IpAddr() = default;
  // Parses a bare IPv4 or IPv6 address ("10.0.0.1", "fd00::1"; no prefix). InvalidArgument
  // ("'<text>' is not an IP address") otherwise.
  static absl::StatusOr<IpAddr> Parse(const std::string& text);
  // An address of `family` (4 or 6) with the given numeric value (truncated to 32 bits for 4).
  static IpAddr FromValue(int family, unsigned __int128 value);
  // An address of `family` (4 or 6) from its network-order bytes (4 or 16 of them).
  static IpAddr FromBytes(int family, const uint8_t* bytes);

  // 4 or 6; 0 when invalid.
  int family() const { return family_; }
  // AF_INET, AF_INET6, or AF_UNSPEC when invalid.
  int af() const;
  bool valid() const { return family_ != 0; }
  bool is_v4() const { return family_ == 4; }
  unsigned __int128 value() const { return value_; }
  // Number of address bits (32 or 128).
  int bits() const { return family_ == 4 ? 32 : 128; }
  // Number of address bytes (4 or 16).
  int size() const { return bits() / 8; }
  // Network-order bytes; the first size() are the address, the rest zero.
  std::array<uint8_t, 16> bytes() const;
  // True for link-local unicast: 169.254.0.0/16 and fe80::/10.
  bool IsLinkLocalUnicast() const;
  // Canonical text ("172.16.11.10", "fd00::a"); "<invalid>" for an invalid address.
  std::string ToString() const;
  // The next / previous address (wraps within the family).
  IpAddr Next() const;
  IpAddr Prev() const;

  bool operator==(const IpAddr& o) const { return family_ == o.family_ && value_ == o.value_; }
  bool operator!=(const IpAddr& o) const { return !(*this == o); }
  bool operator<(const IpAddr& o) const {
    return family_ != o.family_ ? family_ < o.family_ : value_ < o.value_;
  }
  bool operator<=(const IpAddr& o) const { return !(o < *this); }

 private:
  int family_ = 0;
  unsigned __int128 value_ = 0;
};

// An address with a prefix length, "addr/len". Two uses, one type:
//  - a network (subnet, route destination): host bits clear, e.g. from ParseNetwork/Containing;
//  - an interface address with its subnet's length ("172.16.11.10/24"), host bits kept, from
//    Parse or the constructor.
// Default-constructed: invalid.
class IpPrefix {
 public:
  IpPrefix() = default;
  // `addr` with `length` clamped to 0..addr.bits(); host bits are kept.
  IpPrefix(const IpAddr& addr, int length);
  // Parses "addr/len", keeping host bits ("172.16.11.10/24"). InvalidArgument naming the text:
  // "'<text>' is not a CIDR (addr/prefix)" without a slash, "...: bad address",
  // "...: bad prefix length".
  static absl::StatusOr<IpPrefix> Parse(const std::string& text);
  // Parses a network "addr/len" (errors as Parse). With `strict`, host bits set is
  // InvalidArgument ("subnet '10.0.0.1/24' has host bits set (did you mean 10.0.0.0/24?)");
  // without, they are cleared.
  static absl::StatusOr<IpPrefix> ParseNetwork(const std::string& text, bool strict = true);
  // The network of `length` bits (clamped to 0..ip.bits()) holding `ip`.
  static IpPrefix Containing(const IpAddr& ip, int length);
  // `ip`/32 or `ip`/128.
  static IpPrefix Host(const IpAddr& ip) { return IpPrefix(ip, ip.bits()); }
  // 0.0.0.0/0 or ::/0 for `family` (4 or 6).
  static IpPrefix Default(int family) { return IpPrefix(IpAddr::FromValue(family, 0), 0); }

  // The address as given (with host bits for an interface address).
  const IpAddr& addr() const { return addr_; }
  int length() const { return length_; }
  int family() const { return addr_.family(); }
  bool valid() const { return addr_.valid(); }
  // The address with the host bits cleared.
  IpAddr network() const;
  // The same prefix with the host bits cleared ("172.16.11.10/24" -> "172.16.11.0/24").
  IpPrefix Masked() const { return IpPrefix(network(), length_); }
  // True when the host bits are clear.
  bool IsNetwork() const { return network() == addr_; }
  // The last address of the network (the IPv4 broadcast).
  IpAddr Last() const;
  // True when `ip` (same family) lies in the network.
  bool Contains(const IpAddr& ip) const;
  // True for a zero-length prefix (0.0.0.0/0, ::/0: the default route).
  bool IsDefault() const { return valid() && length_ == 0; }
  // True when the length covers the whole address (/32, /128).
  bool IsHost() const { return valid() && length_ == addr_.bits(); }
  // "addr/len" with the address as given.
  std::string ToString() const;

  bool operator==(const IpPrefix& o) const { return addr_ == o.addr_ && length_ == o.length_; }
  bool operator!=(const IpPrefix& o) const { return !(*this == o); }
  bool operator<(const IpPrefix& o) const {
    return addr_ != o.addr_ ? addr_ < o.addr_ : length_ < o.length_;
  }

 private:
  IpAddr addr_;
  int length_ = 0;
};

}  // namespace rdmashare
