// Name lookup for the etcd client's endpoints: which host strings are acceptable (an IP address
// or an RFC 1123 host name) and which socket addresses a host resolves to.
//
// A host name is resolved from a hosts file first (EtcdOptions::hosts_file, default /etc/hosts;
// no NSS surprises in a static binary), else with getaddrinfo(3) (DNS), "localhost" falling back
// to 127.0.0.1 and ::1. Every address found is returned, in order and without duplicates, so the
// caller can try each before giving up on the endpoint.
//
// Plain functions and values; no state. ResolveHost blocks (file read, getaddrinfo); the rest is
// pure. Thread-safe.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rdmashare::cni::ipam {

// True when `host` is a numeric IPv4 or IPv6 address (no brackets).
bool IsNumericHost(const std::string& host);

// True when `host` is an RFC 1123 host name: labels of [A-Za-z0-9-] (not starting or ending with
// '-'), at most 63 characters each, 253 in all.
bool IsHostName(const std::string& host);

// The addresses `name` maps to in hosts-file text (hosts(5): "address name [aliases...]", '#'
// comments; names compared case-insensitively), in file order.
std::vector<std::string> HostsFileAddresses(const std::string& hosts_text, const std::string& name);

// One resolved address of an endpoint.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string text;  // "127.0.0.1" / "::1"
};

// The socket address of numeric `host` and `port`; nullopt when `host` is not numeric.
std::optional<SockAddr> NumericSockAddr(const std::string& host, int port);

// Addresses of `host`: numeric as is; names from `hosts_file` (skipped when empty or unreadable),
// else getaddrinfo, else (for localhost) the loopback addresses. Unavailable naming the host, the
// hosts file and getaddrinfo's answer when nothing resolves.
absl::StatusOr<std::vector<SockAddr>> ResolveHost(const std::string& host, int port,
                                                  const std::string& hosts_file);

}  // namespace rdmashare::cni::ipam
