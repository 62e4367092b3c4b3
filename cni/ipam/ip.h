// IpAddr / IpNet: small value types for IPv4 and IPv6 address arithmetic used by the allocator.
//
// Plain copyable values; no shared state; thread-safe. Parsing uses inet_pton/inet_ntop, so text
// forms are canonical (IPv6 compressed, lower case), matching host-local's file names.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rdmashare::cni::ipam {

class IpAddr {
 public:
  IpAddr() = default;
  // Parses a bare IPv4 or IPv6 address (no prefix). InvalidArgument otherwise.
  static absl::StatusOr<IpAddr> Parse(const std::string& text);
  // An address of `family` (4 or 6) with the given numeric value.
  static IpAddr FromValue(int family, unsigned __int128 value);

  int family() const { return family_; }
  bool valid() const { return family_ != 0; }
  unsigned __int128 value() const { return value_; }
  // Number of address bits (32 or 128).
  int bits() const { return family_ == 4 ? 32 : 128; }
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

class IpNet {
 public:
  IpNet() = default;
  // Parses "addr/prefix". With `strict`, host bits set is InvalidArgument ("10.0.0.1/24").
  static absl::StatusOr<IpNet> Parse(const std::string& text, bool strict = true);
  // The subnet of `prefix` bits (0..ip.bits()) holding `ip`.
  static IpNet Containing(const IpAddr& ip, int prefix);

  const IpAddr& network() const { return network_; }
  int prefix() const { return prefix_; }
  int family() const { return network_.family(); }
  // The last address of the subnet (the IPv4 broadcast).
  IpAddr Last() const;
  bool Contains(const IpAddr& ip) const;
  // "network/prefix".
  std::string ToString() const;
  // "ip/prefix" for an address of this subnet.
  std::string Cidr(const IpAddr& ip) const;

  bool operator==(const IpNet& o) const { return network_ == o.network_ && prefix_ == o.prefix_; }
  bool operator<(const IpNet& o) const {
    return network_ != o.network_ ? network_ < o.network_ : prefix_ < o.prefix_;
  }

 private:
  IpAddr network_;
  int prefix_ = 0;
};

}  // namespace rdmashare::cni::ipam
