// IPv4 ARP probes and announcements (RFC 5227) over an AF_PACKET socket bound to one interface.
//
// Each call opens its own socket (O_CLOEXEC) in the calling thread's network namespace, so call
// inside the pod namespace. Every wait is bounded: count × interval. Thread-safe (no shared
// state). IPv6 (DAD/NDP) is not probed: the kernel's own DAD is disabled for our addresses
// (IFA_F_NODAD) and v6 conflict/gateway detection is documented as not supported.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "cni/net/ip.h"

namespace rdmashare::cni::net {

struct ProbeOptions {
  // Requests sent; the wait after each is `interval`.
  int count = 3;
  std::chrono::milliseconds interval{100};
};

// RFC 5227 probe (sender IP 0.0.0.0, target `addr`) from `own_mac` on `ifindex`. Returns the MAC
// of another host that claims the address (answers, or probes for it at the same time), nullopt
// when nobody did within the bounded time.
absl::StatusOr<std::optional<std::string>> ProbeAddressConflict(int ifindex,
                                                                const std::string& own_mac,
                                                                const IpAddress& addr,
                                                                const ProbeOptions& options);

// ARP request for `gateway` from (`own_mac`, `own`); returns the gateway's MAC when it answers,
// nullopt when silent for the whole bounded time.
absl::StatusOr<std::optional<std::string>> ProbeGateway(int ifindex, const std::string& own_mac,
                                                        const IpAddress& own,
                                                        const IpAddress& gateway,
                                                        const ProbeOptions& options);

// RFC 5227 announcement (gratuitous ARP request, sender = target = `addr`), `count` times.
absl::Status AnnounceAddress(int ifindex, const std::string& own_mac, const IpAddress& addr,
                             int count = 1);

}  // namespace rdmashare::cni::net
