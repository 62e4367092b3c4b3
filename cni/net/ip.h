// IP address and prefix values for the CNI data path (IPv4 and IPv6), parsed without libnl so the
// plugin can validate IPAM output before touching the kernel.
//
// Plain value types with operator==; free functions are pure and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rdmashare::cni::net {

// An address (AF_INET or AF_INET6) with an optional prefix length.
struct IpAddress {
  int family = 0;  // AF_INET or AF_INET6; 0 = unset.
  std::array<uint8_t, 16> bytes{};
  // Prefix length; for a plain address the full length (32 or 128).
  int prefix_len = 0;

  // Number of address bytes for the family (4 or 16).
  int Size() const;
  bool IsV4() const;
  // The address alone ("172.16.11.10").
  std::string AddrString() const;
  // "addr/len" ("172.16.11.10/24").
  std::string CidrString() const;
  // The same prefix with the host bits cleared ("172.16.11.0/24").
  IpAddress Network() const;
  // True when the address lies in `prefix`.
  bool InPrefix(const IpAddress& prefix) const;
  // True for 0.0.0.0/0 and ::/0.
  bool IsDefaultRoute() const;

  bool operator==(const IpAddress& o) const {
    return family == o.family && bytes == o.bytes && prefix_len == o.prefix_len;
  }
  bool operator!=(const IpAddress& o) const { return !(*this == o); }
};

// Parses "a.b.c.d", "a.b.c.d/n", "x::y" or "x::y/n". InvalidArgument names the text.
absl::StatusOr<IpAddress> ParseIp(const std::string& text);

// Parses a CIDR; the prefix length is mandatory.
absl::StatusOr<IpAddress> ParseCidr(const std::string& text);

}  // namespace rdmashare::cni::net
